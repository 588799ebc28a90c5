"""Finalize as tasks (pipeline/finalize/steps.py): shards copied from byte ranges equal the streamed ones,
duplicates point at their cluster's kept document, and a rerun redoes only the files that are missing."""

from __future__ import annotations

import json
import os

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.core.layout import RunLayout
from pipeline.finalize import steps, summary
from pipeline.finalize.public import public_folder
from pipeline.finalize.shards import validation_tokens, write_shards
from pipeline.finalize.steps import FinalizeIndex, FinalizeParts, plan_file

EOT = 50256


def _row(doc_id: str, stage: str | None, offset: int, **fields) -> dict:
    return {"id": doc_id, "url": f"https://example.com/{doc_id}", "warc": "a.warc.gz", "offset": offset,
            "decision": "dropped" if stage else "kept", "stage": stage, **fields}


def _write_jsonl(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))


def _fabricate(root, token_counts: list[int]) -> RunLayout:
    layout = RunLayout(root)
    # what a run's start writes and the parts' public copies read: its funnel, inputs and PII settings
    layout.resolved_config.parent.mkdir(parents=True, exist_ok=True)
    layout.resolved_config.write_text(yaml.safe_dump({
        "config": {"pii": {"enabled": False}}, "inputs": [str(root / "a.warc.gz")],
        "stages": ["reader", "blocklist", "extract", "langid", "quality", "dedup", "pii", "tokenize"]}))
    d = layout.decisions
    # rank 0 keeps the survivor of cluster 7; rank 2 drops its duplicate; rank 1 wrote only a quality drop
    _write_jsonl(d / "kept" / "00000.jsonl", [_row("keep-7", None, 10, dup_cluster=7), _row("solo", None, 20)])
    _write_jsonl(d / "quality" / "c4-00001.jsonl", [_row("short", "quality", 5, reason="c4_too_few_sentences")])
    _write_jsonl(d / "dedup" / "00002.jsonl", [_row("dup-7", "dedup", 30, reason="near_duplicate", dup_cluster=7),
                                               _row("dup-9", "dedup", 3, reason="near_duplicate", dup_cluster=9)])
    for rank, n in enumerate(token_counts):
        path = layout.tokens / "en" / f"{rank:05d}.tokens"
        path.parent.mkdir(parents=True, exist_ok=True)
        tokens = np.arange(1000 * rank, 1000 * rank + n, dtype="<u2")
        tokens[::4] = EOT  # a document every 4 tokens, from the start of each file
        tokens.tofile(path)
    return layout


def _finalize(layout: RunLayout, tasks: int, shard_tokens: int) -> None:
    list(FinalizeIndex(str(layout.root), shard_tokens).run())
    for rank in range(tasks):
        list(FinalizeParts(str(layout.root), parts=3).run(rank=rank, world_size=tasks))


def test_shards_from_ranges_equal_streamed_shards(tmp_path):
    counts = [7, 0, 5, 13]
    layout = _fabricate(tmp_path / "run", counts)
    _finalize(layout, tasks=2, shard_tokens=5)
    files = sorted((layout.tokens / "en").glob("*.tokens"))
    # 25 tokens, 10 % of them: under the first document's 4 tokens, so the validation shard holds that one
    assert validation_tokens(files, 5, 0.1) == 4
    expected = write_shards(files, tmp_path / "streamed", "en", 5, first_shard=4)
    assert [s["tokens"] for s in expected] == [4, 5, 5, 5, 5, 1]
    plan = json.loads(plan_file(layout).read_text())
    assert [(s["file"], s["tokens"]) for s in plan["shards"]] == [(s["file"], s["tokens"]) for s in expected]
    for shard in expected:
        assert (layout.bin / shard["file"]).read_bytes() == (tmp_path / "streamed" / shard["file"]).read_bytes()


@pytest.fixture(params=["in memory", "duckdb"])
def index_path(request, monkeypatch):
    """A small run's index is built and read in memory; a large one's by DuckDB (forced here): the same rows."""
    if request.param == "duckdb":
        monkeypatch.setattr(steps, "IN_MEMORY_KEPT_BYTES", -1)
        monkeypatch.setattr(steps, "IN_MEMORY_INDEX_BYTES", -1)
        monkeypatch.setattr(summary, "IN_MEMORY_LEDGER_BYTES", -1)
    return request.param


def test_ledger_parts_name_the_kept_twin_and_a_rerun_redoes_only_what_is_missing(tmp_path, index_path):
    layout = _fabricate(tmp_path / "run", [4, 4])
    _finalize(layout, tasks=2, shard_tokens=3)
    parts = sorted(p.name for p in layout.ledger.glob("*.parquet"))
    assert parts == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    dups = pq.read_table(layout.ledger / "part-00002.parquet").to_pylist()
    assert [r["id"] for r in dups] == ["dup-9", "dup-7"]  # sorted by offset
    assert dups[1]["duplicate_of"] == "keep-7" and dups[1]["duplicate_of_url"] == "https://example.com/keep-7"
    assert dups[0]["duplicate_of"] is None  # its survivor is in no kept row: said so, not invented
    public = pq.read_table(public_folder(layout) / "ledger" / "part-00002.parquet").to_pylist()
    assert [r["id"] for r in public] == ["dup-9", "dup-7"]  # the part's public copy, for publishing

    kept_part, first_shard = layout.ledger / "part-00000.parquet", layout.bin / "en_val_000000.bin"
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (kept_part, first_shard)}
    (layout.ledger / "part-00002.parquet").unlink()
    (layout.bin / "en_train_000001.bin").unlink()
    _finalize(layout, tasks=2, shard_tokens=3)
    assert pq.read_table(layout.ledger / "part-00002.parquet").to_pylist() == dups
    assert (layout.bin / "en_train_000001.bin").exists()
    for path, (data, mtime) in before.items():  # untouched: not rewritten
        assert path.read_bytes() == data and path.stat().st_mtime_ns == mtime
    assert not [p for p in os.listdir(layout.bin) if p.endswith(".tmp")]
    counts = summary.ledger_counts(layout.ledger, ["reader", "quality", "dedup"])
    assert (counts["records_total"], counts["kept"], counts["dropped"]) == (
        5, 2, {"quality": {"c4_too_few_sentences": 1}, "dedup": {"near_duplicate": 2}})
    assert pq.read_table(steps.representatives_file(layout)).to_pylist() == [
        {"dup_cluster": 7, "id": "keep-7", "url": "https://example.com/keep-7"}]
