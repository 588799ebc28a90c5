"""Ledger consolidation: the rows the tasks wrote (`work/decisions/{stage}/*.jsonl`) become
`ledger/part-{rank}.parquet`, sorted by (warc, offset, id), each dropped duplicate pointing at the document
its MinHash cluster kept. The row format is `stages.ledger`'s."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from stages.io import atomic_path
from stages.ledger import LEDGER_SCHEMA

_RANK = re.compile(r"(?:^|-)(\d+)\.jsonl$")  # `00042.jsonl`, `precheck-00042.jsonl`, `100000.jsonl`: any rank


def _decision_files(decisions: Path) -> dict[int, list[Path]]:
    by_rank: dict[int, list[Path]] = defaultdict(list)
    for path in sorted(decisions.glob("*/*.jsonl")):
        if m := _RANK.search(path.name):
            by_rank[int(m.group(1))].append(path)
    return by_rank


def _read_rows(paths: list[Path]) -> list[dict]:
    rows = []
    for path in paths:
        with open(path, "rb") as f:
            rows += [orjson.loads(line) for line in f if line.strip()]
    return rows


def _representatives(decisions: Path) -> dict[int, tuple[str, str]]:
    """MinHash cluster -> (id, url) of the document that survived deduplication."""
    reps = {}
    for row in _read_rows(sorted((decisions / "kept").glob("*.jsonl"))):
        if row.get("dup_cluster") is not None:
            reps[row["dup_cluster"]] = (row["id"], row["url"])
    return reps


def _sort_key(row: dict):
    return (row["warc"] or "", row["offset"] if row["offset"] is not None else -1, row["id"] or "")


def consolidate(decisions: Path, ledger: Path) -> list[Path]:
    """`work/decisions/**.jsonl` -> `ledger/part-{rank}.parquet`, sorted, with duplicates resolved to the
    document kept in their place. Rebuilt whole on every call: a rerun gives the same bytes."""
    reps = _representatives(decisions)
    ledger.mkdir(parents=True, exist_ok=True)
    for old in ledger.glob("part-*.parquet"):
        old.unlink()
    written = []
    for rank, paths in sorted(_decision_files(decisions).items()):
        rows = _read_rows(paths)
        for row in rows:
            if row["stage"] == "dedup" and row.get("dup_cluster") in reps:
                row["duplicate_of"], row["duplicate_of_url"] = reps[row["dup_cluster"]]
            else:
                row.setdefault("duplicate_of", None)
                row.setdefault("duplicate_of_url", None)
        rows.sort(key=_sort_key)
        path = ledger / f"part-{rank:05d}.parquet"
        write_ledger_part(pa.Table.from_pylist(rows, schema=LEDGER_SCHEMA), path)
        written.append(path)
    return written


def write_ledger_part(table: pa.Table, path: Path) -> None:
    """One ledger file, atomically; fixed settings, so the same rows give the same bytes."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=100_000)
