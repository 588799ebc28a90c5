"""Keeping Chinese with FineWeb-2's profile, end to end on the zh corpus (real Chinese pages, truth.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.plan.config import config_from_dict
from pipeline.run import run_pipeline
from stages.tokens import binformat
from stages.tokens.binformat import read_header, read_tokens
from stages.tokens.tokenize import BPETokenizer

pytestmark = pytest.mark.slow

# FineWeb-2's recipe on datatrove (lid.176 in place of GlotLID) keeps 89 of the 123 Chinese full articles
FINEWEB2_KEEPS = 89


def ledger_rows(out: Path) -> list[dict]:
    return [r for p in sorted((out / "ledger").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


def output_bytes(out: Path) -> dict:
    return {str(p.relative_to(out)): p.read_bytes()
            for d in ("parquet", "bin", "ledger") for p in sorted((out / d).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def zh_run(corpus, tmp_path_factory):
    """The issue's run: Chinese kept, GPT-4's cl100k_base vocabulary (ids above 65,535: 32-bit shards)."""
    files = sorted(str(p) for p in (corpus / "warc" / "zh").glob("*.warc.gz"))
    truth = [json.loads(line) for line in (corpus / "warc" / "zh" / "truth.jsonl").open()]
    cl100k = corpus / "tokenizers" / "cl100k_base" / "cl100k_base.tiktoken"
    config = {"tokenizer": {"name": str(cl100k)}, "langid": {"languages": ["zh"]}}
    out = tmp_path_factory.mktemp("zh") / "out"
    summary = run_pipeline(config_from_dict(config), files, out)
    return files, truth, config, out, summary


def test_chinese_articles_are_kept_as_fineweb2_keeps_them(zh_run):
    _, truth, _, out, summary = zh_run
    assert summary["conservation_ok"] and summary["records_total"] == summary["kept"] + summary["dropped_total"]
    assert set(summary["kept_by_language"]) == {"zh"}
    kept = {r["id"] for r in ledger_rows(out) if r["decision"] == "kept"}
    copies: dict[str, list[str]] = {}
    for t in truth:
        if t.get("dup_of"):
            copies.setdefault(t["dup_of"], []).append(t["record_id"])
    articles = [t for t in truth if t.get("expect_keep_hint") is True and (t.get("lang") or "").startswith("zh")]
    assert len(articles) == 123
    survived = [t for t in articles if t["record_id"] in kept or any(c in kept for c in copies.get(t["url"], []))]
    print(f"kept {len(survived)} of {len(articles)} Chinese articles (FineWeb-2 on datatrove: {FINEWEB2_KEEPS})")
    assert len(survived) >= FINEWEB2_KEEPS


def test_duplicates_and_blocklisted_pages_go(zh_run):
    _, truth, _, out, _ = zh_run
    kept = {r["id"] for r in ledger_rows(out) if r["decision"] == "kept"}
    ids = {t["url"]: t["record_id"] for t in truth}
    for kind, share in (("exact_dup", 1.0), ("near_dup", 0.9)):
        pairs = [(t["record_id"], ids[t["dup_of"]]) for t in truth if t["kind"] == kind]
        assert pairs
        single = sum(not (a in kept and b in kept) for a, b in pairs)
        assert single >= share * len(pairs), (kind, single, len(pairs))
    assert not [t for t in truth if t["kind"].startswith("blocklisted") and t["record_id"] in kept]


def test_no_planted_pii_and_32_bit_shards_that_decode_to_the_text(zh_run):
    _, truth, config, out, _ = zh_run
    rows = [r for p in sorted((out / "parquet" / "zh").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    text = "\n".join(r["text"] for r in rows)
    planted = [p["value"] for t in truth for p in t.get("pii", [])]
    assert len(planted) == 52 and not [v for v in planted if v in text]
    tokenizer = BPETokenizer(config["tokenizer"]["name"])
    shards = sorted((out / "bin").glob("zh_*.bin"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))  # in shard order
    assert shards and all(read_header(s)[0] is binformat.LLAMA3 for s in shards)
    stream = np.concatenate([np.asarray(read_tokens(s)) for s in shards])
    assert int(stream.max()) > 65_535  # ids a uint16 shard could not hold
    docs = np.split(stream, np.flatnonzero(stream == tokenizer.eot))[1:]  # each document starts with <|endoftext|>
    assert [tokenizer.decode(d[1:].tolist()) for d in docs] == [r["text"] for r in rows]


def test_the_ledger_names_each_documents_profile(zh_run):
    _, _, _, out, _ = zh_run
    rows = [r for r in ledger_rows(out) if r["stage"] == "quality" or r["decision"] == "kept"]
    assert rows and all(dict(r["quality_thresholds"])["profile"] == "fineweb-2:cmn_Hani" for r in rows)
    dropped = [r for r in rows if r["decision"] == "dropped"]
    assert dropped and all(r["detail"].endswith("(fineweb-2:cmn_Hani)") for r in dropped)


def test_two_workers_give_the_same_bytes(zh_run, tmp_path):
    files, _, config, out, _ = zh_run
    again = tmp_path / "two"
    run_pipeline(config_from_dict({**config, "run": {"workers": 2}}), files, again)
    assert output_bytes(again) == output_bytes(out)


def test_english_and_chinese_in_one_run(corpus, gpt2_tiktoken, tmp_path):
    files = sorted(str(p) for p in (corpus / "warc" / "zh").glob("*.warc.gz"))
    config = config_from_dict({"tokenizer": {"name": str(gpt2_tiktoken)}, "langid": {"languages": ["en", "zh"]}})
    summary = run_pipeline(config, files, tmp_path / "out")
    assert summary["kept_by_language"].get("en", 0) >= 1 and summary["kept_by_language"]["zh"] >= FINEWEB2_KEEPS
    for lang in ("en", "zh"):
        rows = [r for p in (tmp_path / "out" / "parquet" / lang).glob("*.parquet") for r in pq.read_table(p).to_pylist()]
        assert len(rows) == summary["kept_by_language"][lang] and all(r["language"] == lang for r in rows)
        assert (tmp_path / "out" / "bin" / f"{lang}_val_000000.bin").is_file()
