"""Ledger consolidation: the rows the tasks wrote (`work/decisions/{stage}/*.jsonl`) become
`ledger/part-{rank}.parquet`, sorted by (warc, offset, id), each dropped duplicate pointing at the document
its MinHash cluster kept. The row format is `stages.writers.ledger`'s; the work is done one part per finalize task
(`pipeline.finalize.steps.consolidate_part`)."""

from __future__ import annotations

import functools
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from stages.utils.io import PRIVATE_FILE, atomic_path, make_private
from stages.writers.ledger import LEDGER_SCHEMA


def _sort_key(row: dict):
    return (row["warc"] or "", row["offset"] if row["offset"] is not None else -1, row["id"] or "")


def sort_rows(rows: list[dict]) -> list[dict]:
    """A part's rows in ledger order (warc, offset, id): the same bytes whatever the number of workers."""
    rows.sort(key=_sort_key)
    return rows


def write_ledger_part(table: pa.Table, path: Path, private: bool = True) -> None:
    """One ledger file, atomically; fixed settings, so the same rows give the same bytes. The run's own ledger
    holds raw values: `private` makes it 0600 in a 0700 folder."""
    if private:
        make_private([], [path.parent])
    with atomic_path(path, PRIVATE_FILE if private else 0o644) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=100_000)


@functools.cache
def read_back_schema() -> pa.Schema:
    """`LEDGER_SCHEMA` as a ledger file gives it back: parquet names a map's entries after its column
    (`map<string, double ('quality')>`), and a file written from rows read back records that name. The public
    copy of a part, made from the rows read back before, is made from the rows in memory cast to it: same bytes."""
    buffer = pa.BufferOutputStream()
    pq.write_table(LEDGER_SCHEMA.empty_table(), buffer)
    return pq.read_schema(pa.BufferReader(buffer.getvalue()))
