"""Finalize as tasks on the run's own engine (local, Slurm, Ray), each in memory bounded by one task's share.

    finalize_index  (1 task)  the kept document of every MinHash cluster, as a parquet sorted by cluster
                              (DuckDB, spilling to disk past its memory limit), and the length of every
                              task's token file: `work/finalize/representatives.parquet`, `tokens.json`
    finalize        (N tasks) task r: the ledger parts p with p % N == r (one base task's rows at a time,
                              duplicates resolved by DuckDB lookups in the index), and the `.bin` shards k
                              with k % N == r, each copied from the byte ranges of the token files it spans

Every output file is written atomically and skipped when it exists, and each task leaves datatrove's
completion marker: a rerun redoes only what is missing. `summary.json` is then counted from the ledger
(`pipeline.finalize.summary`, DuckDB aggregates) by one small step.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import numpy as np
import orjson
import pyarrow as pa
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from pipeline.core.layout import RunLayout
from pipeline.finalize.consolidate import sort_rows, write_ledger_part
from pipeline.finalize.shards import HEADER_BYTES, HEADER_INTS, MAGIC, VERSION, shard_name
from stages.io import atomic_path, write_json_atomic
from stages.ledger import LEDGER_SCHEMA

DUCKDB_MEMORY = "1GB"  # DuckDB spills past it (to work/finalize/duckdb.tmp): the index task's peak stays ~1.3 GB
COPY_TOKENS = 1 << 24  # tokens copied per read while assembling a shard: 32 MB, whatever the shard size
_RANK = re.compile(r"(\d{5})\.jsonl$")


def finalize_dir(layout: RunLayout) -> Path:
    return layout.work / "finalize"


def representatives_file(layout: RunLayout) -> Path:
    return finalize_dir(layout) / "representatives.parquet"


def token_lengths_file(layout: RunLayout) -> Path:
    return finalize_dir(layout) / "tokens.json"


def _duckdb(layout: RunLayout, threads: int = 1):
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
    con.execute(f"SET threads = {threads}")
    con.execute(f"SET temp_directory = '{finalize_dir(layout) / 'duckdb.tmp'}'")
    con.execute("SET preserve_insertion_order = false")
    return con


def build_index(layout: RunLayout) -> None:
    """`representatives.parquet` (dup_cluster, id, url of the document each cluster kept) and `tokens.json`
    ({language: [[token file, tokens], ...]} in rank order)."""
    out = finalize_dir(layout)
    out.mkdir(parents=True, exist_ok=True)
    reps = representatives_file(layout)
    if not reps.exists():
        kept = sorted((layout.decisions / "kept").glob("*.jsonl"))
        with atomic_path(reps) as tmp:
            con = _duckdb(layout, threads=2)
            # only the three fields are parsed into columns: a kept row's excerpt is never held
            source = (f"read_json({[str(p) for p in kept]}, format='newline_delimited', "
                      "columns={'dup_cluster': 'BIGINT', 'id': 'VARCHAR', 'url': 'VARCHAR'})") if kept else \
                "(SELECT NULL::BIGINT AS dup_cluster, NULL::VARCHAR AS id, NULL::VARCHAR AS url WHERE false)"
            con.execute(f"COPY (SELECT dup_cluster, id, url FROM {source} WHERE dup_cluster IS NOT NULL "
                        f"ORDER BY dup_cluster) TO '{tmp}' (FORMAT parquet, ROW_GROUP_SIZE 16384)")
    lengths = token_lengths_file(layout)
    if not lengths.exists():
        by_lang = {}
        for lang_dir in sorted(p for p in layout.tokens.glob("*") if p.is_dir()):
            by_lang[lang_dir.name] = [[p.name, p.stat().st_size // 2] for p in sorted(lang_dir.glob("*.tokens"))]
        write_json_atomic(lengths, by_lang)


def shard_plan(layout: RunLayout, shard_tokens: int) -> list[dict]:
    """Every shard the run has, in order: {"language", "file", "tokens"}; from `tokens.json` alone."""
    shards = []
    for lang, files in json.loads(token_lengths_file(layout).read_text()).items():
        total = sum(n for _, n in files)
        for k in range(-(-total // shard_tokens)):
            shards.append({"language": lang, "file": shard_name(lang, k),
                           "tokens": min(shard_tokens, total - k * shard_tokens)})
    return shards


def write_shard_from_ranges(layout: RunLayout, lang: str, files: list, index: int, shard_tokens: int) -> None:
    """Shard `index` of `lang`: tokens [index * shard_tokens, ...) of the concatenated token files, copied
    by ranges; byte-identical to `shards.write_shards` over the same files."""
    path = layout.bin / shard_name(lang, index)
    if path.exists():
        return
    start = index * shard_tokens
    end = min(start + shard_tokens, sum(n for _, n in files))
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:3] = (MAGIC, VERSION, end - start)
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        out.write(header.tobytes())
        offset = 0  # first token of the current file in the concatenation
        for name, n in files:
            lo, hi = max(start, offset), min(end, offset + n)
            for pos in range(lo, hi, COPY_TOKENS):
                count = min(COPY_TOKENS, hi - pos)
                chunk = np.fromfile(layout.tokens / lang / name, dtype="<u2", count=count,
                                    offset=(pos - offset) * 2)
                out.write(chunk.tobytes())
            offset += n
            if offset >= end:
                break
    assert path.stat().st_size == HEADER_BYTES + 2 * (end - start), path


def _rank_decision_files(decisions: Path, rank: int) -> list[Path]:
    return [p for p in sorted(decisions.glob(f"*/*{rank:05d}.jsonl"))
            if (m := _RANK.search(p.name)) and int(m.group(1)) == rank]


def consolidate_part(layout: RunLayout, rank: int, con) -> None:
    """`ledger/part-{rank}.parquet` from the decision rows task `rank` wrote; nothing when it wrote none."""
    path = layout.ledger / f"part-{rank:05d}.parquet"
    paths = _rank_decision_files(layout.decisions, rank)
    if path.exists() or not paths:
        return
    rows = []
    for p in paths:
        with open(p, "rb") as f:
            rows += [orjson.loads(line) for line in f if line.strip()]
    clusters = sorted({r["dup_cluster"] for r in rows if r["stage"] == "dedup" and r.get("dup_cluster") is not None})
    reps = {}
    if clusters:
        # the index is sorted by cluster in row groups of 16 Ki: DuckDB reads the groups whose range holds one
        reps = {c: (i, u) for c, i, u in con.execute(
            f"SELECT dup_cluster, id, url FROM read_parquet('{representatives_file(layout)}') "
            "WHERE dup_cluster IN (SELECT unnest(?::BIGINT[]))", [clusters]).fetchall()}
    for row in rows:
        if row["stage"] == "dedup" and row.get("dup_cluster") in reps:
            row["duplicate_of"], row["duplicate_of_url"] = reps[row["dup_cluster"]]
        else:
            row.setdefault("duplicate_of", None)
            row.setdefault("duplicate_of_url", None)
    write_ledger_part(pa.Table.from_pylist(sort_rows(rows), schema=LEDGER_SCHEMA), path)


class FinalizeIndex(PipelineStep):
    """The one-task phase before `FinalizeParts`: the cluster index and the token files' lengths."""

    name = "🗂 Finalize index"
    type = "📒 - LEDGER"
    stage = "ledger"

    def __init__(self, root: str):
        super().__init__()
        self.root = root

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.track_time():
            build_index(RunLayout(Path(self.root)))
        yield from data or ()


class FinalizeParts(PipelineStep):
    """Task r of N: ledger parts r, r + N, ... of the `parts` base tasks, and shards r, r + N, ..."""

    name = "📦 Finalize parts"
    type = "📒 - LEDGER"
    stage = "ledger"

    def __init__(self, root: str, parts: int, shard_tokens: int):
        super().__init__()
        self.root, self.parts, self.shard_tokens = root, parts, shard_tokens

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        layout = RunLayout(Path(self.root))
        with self.track_time():
            layout.ledger.mkdir(parents=True, exist_ok=True)
            con = _duckdb(layout)
            for part in range(rank, self.parts, world_size):
                consolidate_part(layout, part, con)
                self.stat_update("ledger_parts")
            lengths = json.loads(token_lengths_file(layout).read_text())
            if lengths:
                layout.bin.mkdir(parents=True, exist_ok=True)
            for k, shard in enumerate(shard_plan(layout, self.shard_tokens)):
                if k % world_size == rank:
                    index = int(shard["file"].rsplit("_", 1)[1].split(".")[0])
                    write_shard_from_ranges(layout, shard["language"], lengths[shard["language"]], index,
                                            self.shard_tokens)
                    self.stat_update("shards")
        yield from data or ()
