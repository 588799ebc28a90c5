"""Finalize as tasks on the run's own engine (local, Slurm, Ray), each in memory bounded by one task's share.

    finalize_index  (1 task)  the kept document of every MinHash cluster, as a parquet sorted by cluster
                              (DuckDB, spilling to disk past its memory limit; a small run's in memory,
                              `IN_MEMORY_KEPT_BYTES`); the shards, each with the token-file ranges it
                              copies (from the files' sizes); the decision files' names:
                              `work/finalize/representatives.parquet`, `plan.json`, `shards/*.json`
    finalize_parts  (N tasks) task r: the ledger parts p with p % N == r (one base task's rows at a time,
                              duplicates resolved by lookups in the index), and the `.bin` shards k
                              with k % N == r, each copied from the byte ranges of the token files it spans

Every output file is written atomically and skipped when it exists, and each task leaves datatrove's
completion marker: a rerun redoes only what is missing. `summary.json` is then counted from the ledger
(`pipeline.finalize.summary`, DuckDB aggregates, pyarrow's for a small ledger) by one small step.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from pipeline.core.layout import RunLayout
from pipeline.finalize.consolidate import sort_rows, write_ledger_part
from pipeline.finalize.public import public_folder, read_resolved, write_public_part
from pipeline.finalize.shards import HEADER_BYTES, shard_name, validation_tokens
from stages.tokens import binformat
from stages.utils.io import atomic_path, write_json_atomic
from stages.writers.ledger import LEDGER_SCHEMA

DUCKDB_MEMORY = "1GB"  # DuckDB spills sorts past it (to work/finalize/duckdb.tmp)
# a small run's index is built and looked up in memory, without DuckDB, whose import (~55 ms) and connection per
# process (15-30 ms) were most of its finalize (bench: 230 KB of kept decisions, an index of 64 KB): under
# these many bytes of kept decisions (~25,000 rows with their excerpts), of index (~100,000 clusters: a
# ~25 MB dict per process); the same rows either way
IN_MEMORY_KEPT_BYTES = 32 << 20
IN_MEMORY_INDEX_BYTES = 4 << 20
COPY_TOKENS = 1 << 24  # tokens copied per read while assembling a shard: 32 MB, whatever the shard size
LOOKUP_BATCH = 1000  # clusters per lookup query
INDEX_BATCH = 1000  # kept files per DuckDB scan of the index task
_RANK = re.compile(r"^(.*?)(\d{5,})\.jsonl$")  # `[{part}-]{rank}.jsonl`, rank zero-padded to 5 digits or more


def finalize_dir(layout: RunLayout) -> Path:
    return layout.work / "finalize"


def representatives_file(layout: RunLayout) -> Path:
    return finalize_dir(layout) / "representatives.parquet"


def plan_file(layout: RunLayout) -> Path:
    return finalize_dir(layout) / "plan.json"


def _duckdb(layout: RunLayout, threads: int = 1):
    import duckdb  # for a run too large to finalize in memory (`IN_MEMORY_KEPT_BYTES`)

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
    con.execute(f"SET threads = {threads}")
    con.execute(f"SET temp_directory = '{finalize_dir(layout) / 'duckdb.tmp'}'")
    con.execute("SET preserve_insertion_order = false")
    return con


@functools.cache
def _process_duckdb(root: str, pid: int):
    """One connection per process (`pid`: never one a forked process inherited), for every finalize task it
    runs, the index's included: opening one takes ~30 ms, and a worker ran bench's 8 finalize tasks and the
    index task, each opening its own."""
    return _duckdb(RunLayout(Path(root)))


def build_index(layout: RunLayout, shard_tokens: int, val_tokens: int | None = None, val_fraction: float = 0.1) -> None:
    """`representatives.parquet` and `plan.json`; each written once (a rerun keeps them)."""
    finalize_dir(layout).mkdir(parents=True, exist_ok=True)
    reps = representatives_file(layout)
    if not reps.exists():
        _write_representatives(layout, reps)
    if not plan_file(layout).exists():
        shards = _plan_shards(layout, shard_tokens, val_tokens or shard_tokens, val_fraction)
        write_json_atomic(plan_file(layout), {"decision_files": _decision_prefixes(layout.decisions),
                                               "languages": sorted({s["language"] for s in shards}),
                                               "shards": shards})


def _write_representatives(layout: RunLayout, reps: Path) -> None:
    """(dup_cluster, id, url) of every kept row with a cluster, sorted by cluster. Read `INDEX_BATCH` kept
    files at a time into chunks (DuckDB holds per-file state for every file of a scan: ~4.5 KB each), then
    sorted from the chunks; only the three fields are parsed: a kept row's excerpt is never held. Under
    `IN_MEMORY_KEPT_BYTES` of kept decisions, read and sorted here instead."""
    kept = sorted(str(p) for p in (layout.decisions / "kept").glob("*.jsonl"))
    if sum(os.path.getsize(p) for p in kept) <= IN_MEMORY_KEPT_BYTES:
        return _index_in_memory(kept, reps)
    con = _process_duckdb(str(layout.root), os.getpid())
    # every CPU this task was given (Slurm's cpuset: run.slurm.finalize_cpus): ~110 MB/s of JSON per thread;
    # then one again, for the lookups of the parts' tasks this process may run next
    con.execute(f"SET threads = {len(os.sched_getaffinity(0))}")
    try:
        _index_chunks(con, layout, reps)
    finally:
        con.execute("SET threads = 1")


REPRESENTATIVES = pa.schema([("dup_cluster", pa.int64()), ("id", pa.string()), ("url", pa.string())])


def _index_in_memory(kept: list[str], reps: Path) -> None:
    rows = []
    for path in kept:
        with open(path, "rb") as f:
            for line in f:
                if line.strip() and (row := orjson.loads(line)).get("dup_cluster") is not None:
                    rows.append((row["dup_cluster"], row.get("id"), row.get("url")))
    rows.sort(key=lambda row: row[0])
    table = pa.Table.from_pylist([dict(zip(REPRESENTATIVES.names, row)) for row in rows], schema=REPRESENTATIVES)
    with atomic_path(reps) as tmp:
        pq.write_table(table, tmp, row_group_size=2048)


def _index_chunks(con, layout: RunLayout, reps: Path) -> None:
    chunks = finalize_dir(layout) / "representatives.chunks"
    shutil.rmtree(chunks, ignore_errors=True)
    chunks.mkdir(parents=True)
    kept = sorted(str(p) for p in (layout.decisions / "kept").glob("*.jsonl"))
    for i in range(0, len(kept), INDEX_BATCH):
        con.execute(f"COPY (SELECT dup_cluster, id, url FROM read_json({kept[i:i + INDEX_BATCH]!r}, "
                    "format='newline_delimited', columns={'dup_cluster': 'BIGINT', 'id': 'VARCHAR', 'url': 'VARCHAR'}) "
                    f"WHERE dup_cluster IS NOT NULL) TO '{chunks / f'{i // INDEX_BATCH:06d}.parquet'}' (FORMAT parquet)")
    source = (f"read_parquet('{chunks}/*.parquet')" if kept else
              "(SELECT NULL::BIGINT AS dup_cluster, NULL::VARCHAR AS id, NULL::VARCHAR AS url WHERE false)")
    with atomic_path(reps) as tmp:
        # small row groups: a task's lookups read one group per cluster it asks for (DuckDB prunes by min/max)
        con.execute(f"COPY (SELECT dup_cluster, id, url FROM {source} ORDER BY dup_cluster) TO '{tmp}' "
                    "(FORMAT parquet, ROW_GROUP_SIZE 2048)")
    shutil.rmtree(chunks)


def _decision_prefixes(decisions: Path) -> list[str]:
    """`{stage}/[{part}-]` of the decision files (`quality/gopher-`, `langid/precheck-`, `kept/`): a task
    then opens its own files by name instead of listing directories of one file per task."""
    prefixes = set()
    for path in decisions.glob("*/*.jsonl"):
        if m := _RANK.match(path.name):
            prefixes.add(f"{path.parent.name}/{m.group(1)}")
    return sorted(prefixes)


def _plan_shards(layout: RunLayout, shard_tokens: int, val_tokens: int, val_fraction: float) -> list[dict]:
    """Every shard in order ({"language", "file", "tokens"}) and, in `shards/{file}.json`, the ranges it
    copies [[token file, first token, count], ...]: the validation shard 0 holds the language's first
    `shards.validation_tokens` tokens, then each training shard the next `shard_tokens` of the language's token
    files concatenated in rank order, as `shards.write_shards` fills them."""
    shards = []
    for lang_dir in sorted(p for p in layout.tokens.glob("*") if p.is_dir()):
        ranges, filled = [], 0
        # `{rank}.tokens` (16 bits) or `{rank}.u32.tokens` (32 bits: stages/tokens/binformat.py), in rank order
        files = sorted(lang_dir.glob("*.tokens"), key=lambda p: int(p.name.split(".")[0]))
        size = validation_tokens(files, val_tokens, val_fraction)

        def close() -> None:
            name = shard_name(lang_dir.name, sum(s["language"] == lang_dir.name for s in shards))
            write_json_atomic(finalize_dir(layout) / "shards" / f"{name}.json", ranges)
            shards.append({"language": lang_dir.name, "file": name, "tokens": filled})

        for path in files:
            n, pos = binformat.token_file_length(path), 0
            while pos < n:
                take = min(size - filled, n - pos)
                ranges.append([f"{lang_dir.name}/{path.name}", pos, take])
                filled, pos = filled + take, pos + take
                if filled == size:
                    close()
                    ranges, filled, size = [], 0, shard_tokens
        if ranges:
            close()
    return shards


def shard_plan(layout: RunLayout) -> list[dict]:
    return json.loads(plan_file(layout).read_text())["shards"]


def write_shard(layout: RunLayout, name: str) -> None:
    """One `.bin` shard from its token-file ranges, 32 MB at a time; byte-identical to `write_shards`."""
    path = layout.bin / name
    if path.exists():
        return
    ranges = json.loads((finalize_dir(layout) / "shards" / f"{name}.json").read_text())
    total = sum(count for _, _, count in ranges)
    fmt = binformat.token_file_format(ranges[0][0]) if ranges else binformat.GPT2  # one width per language
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        out.write(fmt.header(total))
        for token_file, first, count in ranges:
            for pos in range(first, first + count, COPY_TOKENS):
                chunk = np.fromfile(layout.tokens / token_file, dtype=fmt.dtype, offset=pos * fmt.itemsize,
                                    count=min(COPY_TOKENS, first + count - pos))
                out.write(chunk.tobytes())
    if path.stat().st_size != HEADER_BYTES + fmt.itemsize * total:
        raise OSError(f"{path}: {path.stat().st_size} bytes, expected {HEADER_BYTES + fmt.itemsize * total}")


def _lookup_representatives(layout: RunLayout, clusters: list[int], connect) -> dict[int, tuple[str, str]]:
    """cluster -> (id, url) of its kept document. Constant IN lists: DuckDB then reads only the row groups
    whose min/max hold one (a 1,000-cluster lookup in a 20 M-row index: ~0.1 s, not a scan). An index under
    `IN_MEMORY_INDEX_BYTES` is read whole instead, once per process."""
    path = representatives_file(layout)
    stat = path.stat()
    if stat.st_size <= IN_MEMORY_INDEX_BYTES:
        index = _index_read(str(path), stat.st_mtime_ns, stat.st_size)
        return {c: index[c] for c in clusters if c in index}
    con = connect()
    reps = {}
    for i in range(0, len(clusters), LOOKUP_BATCH):
        batch = ",".join(str(int(c)) for c in clusters[i:i + LOOKUP_BATCH])
        reps.update((c, (d, u)) for c, d, u in con.execute(
            f"SELECT dup_cluster, id, url FROM read_parquet('{representatives_file(layout)}') "
            f"WHERE dup_cluster IN ({batch})").fetchall())
    return reps


@functools.lru_cache(maxsize=1)
def _index_read(path: str, mtime_ns: int, size: int) -> dict[int, tuple[str, str]]:
    table = pq.read_table(path)
    return {c: (d, u) for c, d, u in zip(*(table.column(n).to_pylist() for n in REPRESENTATIVES.names))}


def consolidate_part(layout: RunLayout, rank: int, prefixes: list[str], connect) -> pa.Table | None:
    """`ledger/part-{rank}.parquet` from the decision rows task `rank` wrote, and its rows (the public copy is
    made from them); nothing, and None, when it wrote none or the part exists."""
    path = layout.ledger / f"part-{rank:05d}.parquet"
    paths = [p for prefix in prefixes if (p := layout.decisions / f"{prefix}{rank:05d}.jsonl").exists()]
    if path.exists() or not paths:
        return None
    rows = []
    for p in paths:
        with open(p, "rb") as f:
            rows += [orjson.loads(line) for line in f if line.strip()]
    clusters = sorted({r["dup_cluster"] for r in rows if r["stage"] == "dedup" and r.get("dup_cluster") is not None})
    reps = _lookup_representatives(layout, clusters, connect) if clusters else {}
    for row in rows:
        if row["stage"] == "dedup" and row.get("dup_cluster") in reps:
            row["duplicate_of"], row["duplicate_of_url"] = reps[row["dup_cluster"]]
        else:
            row.setdefault("duplicate_of", None)
            row.setdefault("duplicate_of_url", None)
    table = pa.Table.from_pylist(sort_rows(rows), schema=LEDGER_SCHEMA)
    write_ledger_part(table, path)
    return table


class FinalizeIndex(PipelineStep):
    """The one-task phase before `FinalizeParts`: the cluster index and the plan."""

    name = "🗂 Finalize index"
    type = "📒 - LEDGER"
    stage = "ledger"

    def __init__(self, root: str, shard_tokens: int, val_tokens: int | None = None, val_fraction: float = 0.1):
        super().__init__()
        self.root, self.shard_tokens, self.val_tokens, self.val_fraction = root, shard_tokens, val_tokens, val_fraction

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.track_time():
            build_index(RunLayout(Path(self.root)), self.shard_tokens, self.val_tokens, self.val_fraction)
        yield from data or ()


class FinalizeParts(PipelineStep):
    """Task r of N: ledger parts r, r + N, ... of the `parts` base tasks, and shards r, r + N, ..."""

    name = "📦 Finalize parts"
    type = "📒 - LEDGER"
    stage = "ledger"

    def __init__(self, root: str, parts: int):
        super().__init__()
        self.root, self.parts = root, parts

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        layout = RunLayout(Path(self.root))
        plan = json.loads(plan_file(layout).read_text())
        with self.track_time():
            layout.ledger.mkdir(parents=True, exist_ok=True)
            # opened at the first lookup (30 ms): a part without duplicates needs none
            connect = functools.partial(_process_duckdb, str(layout.root), os.getpid())
            resolved = read_resolved(layout)
            for part in range(rank, self.parts, world_size):
                table = consolidate_part(layout, part, plan["decision_files"], connect)
                path = layout.ledger / f"part-{part:05d}.parquet"
                if path.exists() and not (public_folder(layout) / "ledger" / path.name).exists():
                    # what publishing uploads, PII scrubbed; from the rows just written (not read back) unless a
                    # rerun finds the part written before
                    write_public_part(layout, path, resolved, table)
                self.stat_update("ledger_parts")
            if plan["languages"]:
                layout.bin.mkdir(parents=True, exist_ok=True)
            for shard in plan["shards"][rank::world_size]:
                write_shard(layout, shard["file"])
                self.stat_update("shards")
        yield from data or ()
