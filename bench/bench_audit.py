"""The decision ledger's cost on a run, and `ccpipe audit explain` latency on a ledger of >= 1 M rows.

    .venv/bin/python bench/bench_audit.py [--input ../shared/corpus/warc/bench] [--rows 1000000]
                                          [--baseline-rev REV] [--cores 0]

1. Runs `ccpipe run --workers 1` on --input, pinned to one core, and reports the seconds the ledger took
   (the kept-rows step and the consolidation into parquet, from summary.json's `seconds_per_stage.ledger`)
   against the whole run. With --baseline-rev, also runs the pipeline of that git revision (e.g. the last
   one before the parquet ledger) from a temporary worktree in the same invocation and compares wall time.
2. Synthesizes a ledger of --rows rows by repeating the run's ledger (ids and URLs made unique with a
   `#k` suffix), then times `explain` on it: in-process (warm) and as a fresh `ccpipe audit explain`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.finalize.consolidate import write_ledger_part

ROOT = Path(__file__).resolve().parent.parent
# rows per ledger file: one task per WARC file, and a Common Crawl WARC holds ~40,000 response records
PART_ROWS = 40_000
CORPUS = Path(os.environ.get("CCPIPE_CORPUS", ROOT.parent / "shared" / "corpus"))


def pinned(cores: str) -> None:
    """Re-exec under `taskset -c cores` unless already pinned there."""
    if os.environ.get("CCPIPE_BENCH_PINNED") != cores and shutil.which("taskset"):
        os.environ["CCPIPE_BENCH_PINNED"] = cores
        os.execvp("taskset", ["taskset", "-c", cores, sys.executable, *sys.argv])


def run_ccpipe(source: Path, inputs: str, out: Path) -> float:
    """Wall seconds of one `ccpipe run` of the code in `source`."""
    env = {**os.environ, "PYTHONPATH": str(source), "TQDM_DISABLE": "1"}
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--input", inputs, "--output", str(out),
                    "--workers", "1", "--no-progress",
                    "--tokenizer", str(CORPUS / "tokenizers" / "gpt2" / "gpt2.tiktoken")],
                   cwd=source, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def ledger_overhead(inputs: str, work: Path, baseline_rev: str | None) -> Path:
    run = work / "run"
    wall = run_ccpipe(ROOT, inputs, run)
    summary = json.loads((run / "summary.json").read_text())
    ledger_s = summary["seconds_per_stage"].get("ledger", 0.0)
    rows = pq.read_metadata(next((run / "ledger").glob("*.parquet"))).num_rows
    size = sum(p.stat().st_size for p in (run / "ledger").glob("*.parquet"))
    print(f"run: {summary['records_total']:,} records, {wall:.1f} s wall")
    print(f"ledger: {ledger_s:.2f} s ({100 * ledger_s / wall:.1f} % of the run), "
          f"{summary['records_total']:,} rows, {size / 1e6:.2f} MB parquet (first part {rows} rows)")
    if baseline_rev:
        tree = work / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), baseline_rev],
                       check=True, capture_output=True)
        try:
            b_wall = run_ccpipe(tree, inputs, work / "baseline-run")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
        # everything else that changed between the revisions is in this ratio too
        print(f"baseline {baseline_rev}: {b_wall:.1f} s wall; this tree / baseline {wall / b_wall:.3f}")
    return run


def synthesize(run: Path, rows: int, out: Path) -> tuple[Path, str]:
    """A run directory whose ledger repeats `run`'s until it has `rows` rows; returns it and a URL to explain."""
    table = pq.read_table(run / "ledger")
    copies = -(-rows // table.num_rows)
    (out / "ledger").mkdir(parents=True)
    shutil.copy(run / "config.resolved.yaml", out / "config.resolved.yaml")
    copies_per_part = max(1, PART_ROWS // table.num_rows)
    for first in range(0, copies, copies_per_part):
        parts = []
        for k in range(first, min(first + copies_per_part, copies)):
            suffix = pa.scalar(f"#{k}")
            part = table.set_column(0, "id", pc.binary_join_element_wise(table["id"], suffix, ""))
            parts.append(part.set_column(1, "url", pc.binary_join_element_wise(table["url"], suffix, "")))
        write_ledger_part(pa.concat_tables(parts), out / "ledger" / f"part-{first // copies_per_part:05d}.parquet")
    target = table.filter(pc.equal(table["stage"], "dedup"))["url"][0].as_py() + f"#{copies - 1}"
    print(f"synthetic ledger: {copies * table.num_rows:,} rows in {-(-copies // copies_per_part)} files, "
          f"{sum(p.stat().st_size for p in (out / 'ledger').glob('*')) / 1e6:.1f} MB")
    return out, target


def explain_latency(run: Path, url: str) -> None:
    from pipeline.audit.queries import explain

    explain(run, url)  # warm the page cache
    warm = []
    for _ in range(5):
        started = time.perf_counter()
        found = explain(run, url)
        warm.append(time.perf_counter() - started)
    assert found and found[0]["url"] == url
    cold = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pipeline.cli", "audit", "explain", str(run), url],
                       check=True, stdout=subprocess.DEVNULL)
        cold.append(time.perf_counter() - started)
    print(f"explain on {url}: in-process median {statistics.median(warm) * 1000:.0f} ms "
          f"(max {max(warm) * 1000:.0f}); `ccpipe audit explain` end to end median {statistics.median(cold):.2f} s "
          f"(max {max(cold):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=str(CORPUS / "warc" / "bench"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rev", help="git revision to compare the run's cost with")
    parser.add_argument("--cores", default="0")
    args = parser.parse_args()
    pinned(args.cores)
    with tempfile.TemporaryDirectory(prefix="ccpipe-bench-audit-") as tmp:
        work = Path(tmp)
        run = ledger_overhead(args.input, work, args.baseline_rev)
        big, url = synthesize(run, args.rows, work / "big")
        explain_latency(big, url)


if __name__ == "__main__":
    main()
