"""Dump scale, by hand: finalize and every `ccpipe audit` command on fabricated runs, and datatrove's MinHash
cluster step, each reported as wall time and peak RSS per process.

    .venv/bin/python bench/scale.py finalize [--tasks 1000,4000,16000] [--workers 2]
    .venv/bin/python bench/scale.py audit [--rows 100000000]     # the ledger is built once under --work
    .venv/bin/python bench/scale.py minhash [--docs 1000000,2000000,4000000]

finalize: a dump-shaped run directory of T tasks whose phases are "done" (completion markers) with each task's
    intermediate outputs as the pipeline writes them: decision JSONL (rows of every stage, 1,000-character
    excerpts after extraction, MinHash clusters whose kept document is in another task), token files, tallies,
    file reports; then `ccpipe finalize DIR` (the finalize phases on the local engine, then summary.json).
    Peak RSS: of the `ccpipe finalize` process, and the largest of its task processes.
audit: a ledger of --rows rows written straight to parquet by DuckDB (1 M-row parts, as 25 WARCs of 40,000
    records), a second run sharing all but 5 parts (fates changed), then summary, explain, sample, diff, report,
    whatif (langid.threshold 0.65 -> 0.8 and min_doc_words 50 -> 100: a fifth of the records re-decided).
minhash: datatrove's MinhashDedupCluster on fabricated `.dups` files (14 buckets; clusters of 4 documents, each
    duplicate pair found in 1 or in 4 buckets), peak RSS per document and per pair.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import orjson
import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.core.layout import RunLayout  # noqa: E402
from pipeline.plan.config import config_from_dict, config_to_dict  # noqa: E402
from pipeline.plan.phases import build_phases, stage_order  # noqa: E402

CORPUS = Path(os.environ.get("CCPIPE_CORPUS", ROOT.parent / "shared" / "corpus"))
TOKENIZER = CORPUS / "tokenizers" / "gpt2" / "gpt2.tiktoken"
WORDS = ("the of and to in is was for on that with as by at from this which be are it an or have not "
         "data crawl page web text model city river market school music history science water energy").split()


def measured(cmd: list[str], env: dict | None = None) -> dict:
    """Wall seconds of `python -m cmd...`, and the peak RSS of its own process and of the largest other
    process of its tree (datatrove's task processes are children of a forkserver, which getrusage does not
    see): psutil, sampled every 0.1 s."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", *cmd], env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    top, peaks, born = psutil.Process(proc.pid), {}, {}
    while proc.poll() is None:
        try:
            for p in top.children(recursive=True) + [top]:
                peaks[p.pid] = max(peaks.get(p.pid, 0), p.memory_info().rss)
                born.setdefault(p.pid, (p.create_time(), p.ppid()))
        except psutil.Error:
            pass  # a process ended while we looked
        time.sleep(0.1)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.read()[-3000:]}")
    own = peaks.pop(proc.pid, 0)
    # task processes are the forkserver's children; the first one born ran the one-task finalize_index phase
    workers = sorted((t, pid) for pid, (t, ppid) in born.items() if ppid != proc.pid and pid != proc.pid)
    first = workers[0][1] if workers else None
    return {"wall_s": round(wall, 2), "rss_mb": round(own / 2**20),
            "child_rss_mb": round(max(peaks.values(), default=0) / 2**20),
            "first_child_mb": round(peaks.get(first, 0) / 2**20),
            "other_children_mb": round(max((v for k, v in peaks.items() if k != first), default=0) / 2**20)}


# ---- finalize ------------------------------------------------------------------------------------------------

def _excerpts(rng: random.Random, n: int = 400) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(220))[:1000] for _ in range(n)]


def _task_rows(rank: int, tasks: int, rng: random.Random, excerpts: list[str], repeat: int = 1) -> dict[str, list[dict]]:
    """One WARC's worth of decisions, 40 records `repeat` times: every stage drops some, 7 in 40 are kept, two
    of them (per 40) the survivors of MinHash clusters whose duplicates other tasks drop."""
    warc = f"crawl-data/CC-MAIN-2024-22/segments/1715971057216.39/warc/CC-MAIN-20240517233122-{rank:05d}.warc.gz"
    out: dict[str, list[dict]] = {}
    plan = ([("reader/", "reader", "http_status")] * 3 + [("blocklist/", "blocklist", "ut1_domain")] * 4
            + [("langid/precheck-", "langid", "language_precheck")] * 16 + [("langid/", "langid", "language_not_kept")] * 4
            + [("quality/gopher-", "quality", "gopher_below_alpha_threshold")] * 2
            + [("quality/c4-", "quality", "c4_too_few_sentences")] * 2 + [("dedup/", "dedup", "near_duplicate")] * 2
            + [("kept/", None, None)] * 7) * repeat
    survivors = 0
    for i, (prefix, stage, reason) in enumerate(plan):
        extracted = stage not in ("reader", "blocklist") and reason != "language_precheck"
        row = {"id": f"<urn:uuid:{rank:08x}-{i:04x}-4000-8000-{rng.getrandbits(48):012x}>",
               "url": f"https://site{rng.randrange(10**6)}.example/{rank}/{i}", "warc": warc, "offset": i * 31_000,
               "decision": "dropped" if stage else "kept", "stage": stage, "reason": reason,
               "detail": f"score {rng.random():.2f} < 0.65" if stage == "langid" else None,
               "text_length": 2_000 + rng.randrange(20_000) if extracted else None,
               "language": "en" if extracted else None, "language_score": rng.random() if extracted else None,
               "quality": {"gopher_alpha_ratio": rng.random(), "c4_sentences": float(rng.randrange(9))} if extracted else None,
               "token_count": 500 + rng.randrange(1_000) if stage is None else None,
               "excerpt": excerpts[rng.randrange(len(excerpts))] if extracted else None}
        if stage == "dedup":
            row["dup_cluster"] = 2 * repeat * rng.randrange(tasks) + rng.randrange(2 * repeat)  # kept in another task
        elif stage is None and survivors < 2 * repeat:
            row["dup_cluster"], survivors = 2 * repeat * rank + survivors, survivors + 1
        out.setdefault(prefix, []).append(row)
    return out


def fabricate_run(root: Path, tasks: int, workers: int, parts_per_task: int, repeat: int = 1) -> None:
    cfg = config_from_dict({"tokenizer": {"name": str(TOKENIZER)}, "output": {"shard_tokens": 1_000_000},
                            "run": {"workers": workers, "finalize_tasks": -(-tasks // parts_per_task)}})
    files = [f"s3://commoncrawl/crawl-data/CC-MAIN-2024-22/{i:05d}.warc.gz" for i in range(tasks)]
    phases = build_phases(cfg, files, root)
    layout = RunLayout(root)
    root.mkdir(parents=True)
    layout.resolved_config.write_text(yaml.safe_dump({"config": config_to_dict(cfg), "inputs": files, "tasks": tasks,
                                                      "stages": stage_order(phases)}, sort_keys=False))
    for phase in phases:
        done = layout.completions(phase.name)
        done.mkdir(parents=True)
        for rank in range(phase.tasks):
            (done / f"{rank:05d}").touch()
    rng = random.Random(tasks)
    (layout.tokens / "en").mkdir(parents=True)
    excerpts = _excerpts(rng)
    for folder in (layout.files_report, layout.tally):
        folder.mkdir(parents=True)
    for rank in range(tasks):
        rows = _task_rows(rank, tasks, rng, excerpts, repeat)
        for prefix, found in rows.items():
            path = layout.decisions / f"{prefix}{rank:05d}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in found))
        kept = rows["kept/"]
        tokens = sum(r["token_count"] + 1 for r in kept)
        np.random.default_rng(rank).integers(0, 50257, tokens, dtype="<u2").tofile(layout.tokens / "en" / f"{rank:05d}.tokens")
        (layout.tally / f"{rank:05d}.json").write_text(json.dumps({"kept": {"en": len(kept)}, "tokens": {"en": tokens},
                                                                   "pii": {}}))
        n = sum(len(r) for r in rows.values())
        (layout.files_report / f"{rank:05d}.json").write_text(json.dumps({"files": [{
            "path": files[rank], "responses": n, "kept": len(kept), "dropped": n - len(kept), "other_records": 2 * n,
            "error": None}]}))


def bench_finalize(work: Path, task_counts: list[int], workers: int, parts_per_task: int, repeat: int = 1) -> None:
    print(f"{parts_per_task} ledger parts per finalize task (run.finalize_tasks = tasks / {parts_per_task}), "
          f"{workers} local workers")
    print(f"{'tasks':>6} {'ledger rows':>11} {'wall s':>8} {'s/1k tasks':>10} {'driver MB':>9} {'index MB':>8} "
          f"{'parts MB':>8}")
    for tasks in task_counts:
        root = work / f"run-{tasks}"
        shutil.rmtree(root, ignore_errors=True)
        fabricate_run(root, tasks, workers, parts_per_task, repeat)
        m = measured(["pipeline.cli", "finalize", str(root)])
        summary = json.loads((root / "summary.json").read_text())
        assert summary["conservation_ok"], summary
        print(f"{tasks:>6} {summary['records_total']:>11,} {m['wall_s']:>8.1f} {1000 * m['wall_s'] / tasks:>10.2f} "
              f"{m['rss_mb']:>9} {m['first_child_mb']:>8} {m['other_children_mb']:>8}", flush=True)
        shutil.rmtree(root, ignore_errors=True)


# ---- audit ---------------------------------------------------------------------------------------------------

PART_ROWS = 1_000_000
# fates per 1,000 records, in the shape of the bench run (reader 3 %, blocklist 6 %, langid 66 %, ...)
FATES = [(30, "reader", "http_status"), (90, "blocklist", "ut1_domain"), (700, "langid", "language_precheck"),
         (740, "langid", "language_not_kept"), (750, "langid", "low_score"), (800, "quality", "gopher_below_alpha_threshold"),
         (820, "dedup", "near_duplicate"), (1000, None, None)]


def _ledger_sql(first: int, rows: int, changed: bool) -> str:
    h = "(hash(i) % 1000)"
    stage = "CASE " + " ".join(f"WHEN {h} < {b} THEN {repr(s) if s else 'NULL'}" for b, s, _ in FATES) + " END"
    reason = "CASE " + " ".join(f"WHEN {h} < {b} THEN {repr(r) if r else 'NULL'}" for b, _, r in FATES) + " END"
    if changed:  # run B: a stricter language threshold drops a tenth of the kept
        stage = f"CASE WHEN {h} >= 820 AND {h} < 840 THEN 'langid' ELSE {stage} END"
        reason = f"CASE WHEN {h} >= 820 AND {h} < 840 THEN 'low_score' ELSE {reason} END"
    extracted = f"{h} >= 700"
    return f"""
        SELECT '<urn:uuid:' || md5(i::VARCHAR) || '>' AS id,
               'https://site' || (i % 7919993) || '.example/p/' || i AS url,
               'crawl-data/CC-MAIN-2024-22/warc/CC-MAIN-' || lpad((i // 40000)::VARCHAR, 5, '0') || '.warc.gz' AS warc,
               (i % 40000) * 31000 AS "offset",
               CASE WHEN {stage} IS NULL THEN 'kept' ELSE 'dropped' END AS decision,
               {stage} AS stage, {reason} AS reason,
               CASE WHEN {stage} = 'langid' THEN 'score ' || ({h} / 1000.0) || ' < 0.65' END AS detail,
               CASE WHEN {extracted} THEN 200 + hash(i + 1) % 50000 END::BIGINT AS text_length,
               CASE WHEN {extracted} THEN 'en' END AS language,
               CASE WHEN {extracted} THEN (hash(i + 2) % 1000) / 1000.0 END::DOUBLE AS language_score,
               CASE WHEN {extracted} THEN MAP {{'gopher_word_count': (50 + hash(i + 4) % 3000)::DOUBLE,
                                                'gopher_below_alpha_threshold': 0.8 + (hash(i + 5) % 200) / 1000.0,
                                                'fineweb_line_punct_ratio': (hash(i + 6) % 1000) / 1000.0}} END AS quality,
               NULL::MAP(VARCHAR, VARCHAR) AS quality_thresholds,
               CASE WHEN {stage} IS NULL THEN 100 + hash(i + 3) % 3000 END::BIGINT AS token_count,
               CASE WHEN {stage} = 'dedup' OR ({stage} IS NULL AND {h} < 860) THEN i // 3 END::BIGINT AS dup_cluster,
               NULL::VARCHAR AS duplicate_of, NULL::VARCHAR AS duplicate_of_url,
               NULL::VARCHAR AS blocklist_list, NULL::VARCHAR AS blocklist_rule, NULL::VARCHAR AS blocklist_allowed,
               CASE WHEN {stage} IS NULL AND {h} % 7 = 0 THEN MAP {{'EMAIL_ADDRESS': 1}} END AS pii,
               NULL::VARCHAR AS pii_spans,
               CASE WHEN {extracted} THEN 'excerpt ' || (hash(i) % 997) || ' ' || repeat('lorem ipsum dolor ', 20) END AS excerpt
        FROM range({first}, {first + rows}) t(i)"""


def fabricate_ledger(root: Path, rows: int, changed_parts: int = 0, shared_with: Path | None = None) -> None:
    ledger = root / "ledger"
    ledger.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute("SET memory_limit = '2GB'")
    for part in range(-(-rows // PART_ROWS)):
        path = ledger / f"part-{part:05d}.parquet"
        if path.exists():
            continue
        if shared_with is not None and part >= changed_parts:
            path.symlink_to(shared_with / "ledger" / path.name)
            continue
        first = part * PART_ROWS
        sql = _ledger_sql(first, min(PART_ROWS, rows - first), changed=shared_with is not None)
        con.execute(f"COPY ({sql} ORDER BY warc, \"offset\", id) TO '{path}.tmp' "
                    "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000)")
        os.replace(f"{path}.tmp", path)


def bench_audit(work: Path, rows: int) -> None:
    a, b = work / f"ledger-{rows}", work / f"ledger-{rows}-b"
    for run in (a, b):
        run.mkdir(parents=True, exist_ok=True)
        cfg = config_from_dict({"tokenizer": {"name": str(TOKENIZER)}})
        stages = ["reader", "blocklist", "extract", "langid", "quality", "dedup", "pii", "tokenize"]
        (run / "config.resolved.yaml").write_text(yaml.safe_dump({"config": config_to_dict(cfg), "inputs": [],
                                                                  "tasks": 0, "stages": stages}, sort_keys=False))
    started = time.monotonic()
    fabricate_ledger(a, rows)
    fabricate_ledger(b, rows, changed_parts=5, shared_with=a)
    size = sum(p.stat().st_size for p in (a / "ledger").glob("*.parquet"))
    print(f"ledger: {rows:,} rows, {size / 1e9:.2f} GB in {len(list((a / 'ledger').glob('*.parquet')))} parts "
          f"(built or found in {time.monotonic() - started:.0f} s)")
    parts = sorted((a / "ledger").glob("*.parquet"))
    key = duckdb.connect().execute(f"SELECT id FROM read_parquet('{parts[len(parts) // 2]}') "
                                   "WHERE stage = 'dedup' LIMIT 1").fetchone()[0]
    commands = {
        "summary": ["summary", str(a)],
        "explain": ["explain", str(a), key],
        "sample": ["sample", str(a), "--stage", "quality", "-n", "20"],
        "diff": ["diff", str(a), str(b)],
        "report": ["report", str(a), "-o", str(work / "report.html")],
        "whatif": ["whatif", str(a), "--set", "langid.threshold=0.8", "--set", "quality.gopher_quality.min_doc_words=100"],
    }
    print(f"{'command':<8} {'wall s':>8} {'peak MB':>8}")
    for name, args in commands.items():
        m = measured(["pipeline.cli", "audit", *args])
        print(f"{name:<8} {m['wall_s']:>8.1f} {max(m['rss_mb'], m['child_rss_mb']):>8}", flush=True)


# ---- MinHash cluster -----------------------------------------------------------------------------------------

def fabricate_dups(folder: Path, docs: int, buckets_per_pair: int, seed: int = 0, files: int = 5_000) -> int:
    """`.dups` files of 14 buckets: clusters of 4 documents (3 pairs each, to the first), documents spread
    over `files` input files, each pair in `buckets_per_pair` buckets; returns the pairs written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    n = docs // 4 * 4
    members = np.stack([rng.integers(0, files, n, dtype=np.uint32), rng.integers(0, 40_000, n, dtype=np.uint32)],
                       axis=1).reshape(-1, 4, 2)
    pairs = np.concatenate([np.concatenate([members[:, 0], members[:, k]], axis=1) for k in (1, 2, 3)])
    written = 0
    for bucket in range(14):
        chosen = pairs[rng.random(len(pairs)) < buckets_per_pair / 14]
        chosen = chosen[np.lexsort((chosen[:, 1], chosen[:, 0]))]
        (folder / f"{bucket:05d}_00000.dups").write_bytes(chosen.astype("<u4").tobytes())
        written += len(chosen)
    return written


CLUSTER_SCRIPT = """
import resource, sys
# datatrove keeps a `.remove` and a `.clusters` file open per input file: 2 descriptors per WARC
resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupCluster
from datatrove.utils.hashing import HashConfig
from loguru import logger
logger.remove()
step = MinhashDedupCluster(sys.argv[1], sys.argv[2], config=MinhashConfig(hash_config=HashConfig(precision=64)),
                           save_cluster_id=True)
step.run(world_size=1)
"""


def bench_minhash(work: Path, doc_counts: list[int]) -> None:
    print(f"{'docs':>10} {'pairs':>10} {'wall s':>7} {'peak MB':>8} {'B/doc':>6}")
    for per_pair in (1, 4):
        for docs in doc_counts:
            folder = work / f"minhash-{docs}-{per_pair}"
            shutil.rmtree(folder, ignore_errors=True)
            pairs = fabricate_dups(folder / "buckets", docs, per_pair)
            script = folder / "cluster.py"
            script.write_text(CLUSTER_SCRIPT)
            m = _run_script(script, folder)
            print(f"{docs:>10,} {pairs:>10,} {m['wall_s']:>7.1f} {m['rss_mb']:>8} "
                  f"{m['rss_mb'] * 2**20 / docs:>6.0f}", flush=True)
            shutil.rmtree(folder, ignore_errors=True)


def _run_script(script: Path, folder: Path) -> dict:
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(script), str(folder / "buckets"), str(folder / "clusters")],
                            env={**os.environ, "TQDM_DISABLE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"cluster step failed: {proc.stderr.read().decode()[-2000:]}")
    return {"wall_s": round(time.monotonic() - started, 1), "rss_mb": round(usage.ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["finalize", "audit", "minhash"])
    parser.add_argument("--work", type=Path, default=Path("/tmp/ccpipe-scale"))
    parser.add_argument("--tasks", default="1000,4000,16000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--parts-per-task", type=int, default=20,
                        help="ledger parts per finalize task: 40-row parts here stand for 30,000-row ones")
    parser.add_argument("--records-per-task", type=int, default=40,
                        help="records per task, a multiple of 40 (a CC WARC: ~30,000)")
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--docs", default="1000000,2000000,4000000")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.what == "finalize":
        bench_finalize(args.work, [int(t) for t in args.tasks.split(",")], args.workers, args.parts_per_task,
                       max(1, args.records_per_task // 40))
    elif args.what == "audit":
        bench_audit(args.work, args.rows)
    else:
        bench_minhash(args.work, [int(d) for d in args.docs.split(",")])


if __name__ == "__main__":
    main()
