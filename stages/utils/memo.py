"""Per-text memos: what a step computed from a text, kept per task so that a later run replays it.

One parquet file per task (`{folder}/{rank:05d}.parquet`, zstd), read and written whole:

    text   blake2b-64 of the text (with whatever else the result depends on), ~400 texts a task: no collision
    value  the result, as JSON

and the step's own key-value metadata. The step's settings are not in the file: a run uses another run's memo
only when those settings are equal (pipeline/plan/reuse.py). Users: the quality filters
(stages/filters/quality_memo.py) and the PII scrubber (stages/pii/scrub.py).
"""

from __future__ import annotations

import hashlib
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

from stages.utils.io import atomic_path, read_parquet

MEMO_SCHEMA = pa.schema([("text", pa.binary(8)), ("value", pa.string())])


def text_key(text: str, size: int = 8) -> bytes:
    """blake2b of the text, `size` bytes: 8 for a task's memo (~400 texts: no collision), 16 where a collision
    would put another text's result in an output (MinHash signatures, token ids: odds ~3e-39 a pair)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=size).digest()


def memo_path(folder: str, rank: int) -> str:
    return os.path.join(folder, f"{rank:05d}.parquet")


def read_memo_file(folder: str, rank: int) -> tuple[dict[bytes, object], dict[bytes, bytes]]:
    """({text digest: value}, the file's key-value metadata); both empty when the file is missing or unreadable
    (a partly deleted work/): the step then computes."""
    try:
        table = read_parquet(memo_path(folder, rank))
        values = dict(zip(table.column("text").to_pylist(), map(json.loads, table.column("value").to_pylist())))
    except (OSError, pa.ArrowInvalid, KeyError, ValueError):
        return {}, {}
    return values, dict(table.schema.metadata or {})


def write_memo_file(folder: str, rank: int, values: dict[bytes, object], metadata: dict[bytes, bytes] | None = None):
    rows = sorted(values.items())
    table = pa.table({"text": [k for k, _ in rows],
                      "value": [json.dumps(v, ensure_ascii=False, separators=(",", ":")) for _, v in rows]},
                     schema=MEMO_SCHEMA).replace_schema_metadata(metadata)
    with atomic_path(memo_path(folder, rank)) as tmp:
        # no min/max statistics: two whole values a file, never read. zstd level 9: bench's eight quality memos
        # 48.0 KB in 9 ms of CPU; level 15 took 26 ms for 47.1 KB
        pq.write_table(table, tmp, compression="zstd", compression_level=9, use_dictionary=False,
                       write_statistics=False)
