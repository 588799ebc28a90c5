"""What a Common Crawl dump costs on a cluster, extrapolated from a measured run (README, "Running on a cluster").

Runs `ccpipe run` on the bench corpus with one worker process and measures:
  - CPU seconds of the whole run (every process, sampled every 0.2 s with psutil),
  - wall seconds of each task, from its datatrove log (first and last timestamp), per phase,
  - peak RSS of all task processes together (one worker: one task at a time, with its extraction child),
then scales by response records: seconds per record x records per CC WARC file x files per dump.

    .venv/bin/python bench/cluster_cost.py --tokenizer ../shared/corpus/tokenizers/gpt2/gpt2.tiktoken
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
# CC-MAIN-2024-22 (Common Crawl's announcement): 2.71 billion pages in 90,000 WARC files
DUMP_FILES = 90_000
RECORDS_PER_FILE = 2_710_000_000 // DUMP_FILES  # ~30,100 response records per ~1 GB WARC
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})")


def sample(pid: int, seen: dict, stop: threading.Event) -> None:
    """Every 0.2 s: each process's RSS and CPU time (last seen: the final <0.2 s of a process are missed),
    and the RSS of all processes but the driver together (one worker: that is one task's memory)."""
    root = psutil.Process(pid)
    while not stop.wait(0.2):
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        together = 0
        for p in procs:
            try:
                rss, cpu = p.memory_info().rss, sum(p.cpu_times()[:2])
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            peak = max(rss, seen.get(p.pid, {}).get("rss", 0))
            seen[p.pid] = {"rss": peak, "cpu": cpu, "driver": p.pid == pid}
            together += rss if p.pid != pid else 0
        seen["task_rss"] = max(together, seen.get("task_rss", 0))


def task_seconds(log: Path) -> float:
    stamps = [STAMP.match(line) for line in log.read_text(errors="replace").splitlines()]
    stamps = [datetime.fromisoformat(m.group(1)) for m in stamps if m]
    return (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=str(ROOT.parent / "shared" / "corpus" / "warc" / "bench"))
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--output", default=None, help="run directory (default: a temporary one)")
    args = parser.parse_args()
    out = Path(args.output or tempfile.mkdtemp(prefix="ccpipe-cost-")) / "run"

    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", "--input", args.input, "--output", str(out),
                             "--tokenizer", args.tokenizer, "--workers", "1", "--no-progress"], cwd=ROOT,
                            stdout=subprocess.DEVNULL)
    seen: dict = {}
    stop = threading.Event()
    sampler = threading.Thread(target=sample, args=(proc.pid, seen, stop), daemon=True)
    sampler.start()
    code = proc.wait()
    stop.set()
    sampler.join()
    wall = time.monotonic() - started
    if code != 0:
        print(f"ccpipe run failed ({code})", file=sys.stderr)
        return 1
    task_rss = seen.pop("task_rss", 0)
    cpu = sum(p["cpu"] for p in seen.values())
    driver = next(p for p in seen.values() if p["driver"])
    summary = json.loads((out / "summary.json").read_text())
    files, records = summary["files"], summary["records_total"]

    print(f"run: {files} files, {records} response records, {summary['kept']} kept; wall {wall:.1f} s, "
          f"CPU {cpu:.1f} s ({cpu / records * 1000:.1f} ms per record); load average {os.getloadavg()[0]:.1f}")
    phase_seconds = {}
    for phase_dir in sorted(p for p in (out / "logs").iterdir() if (p / "logs").is_dir()):
        times = [task_seconds(log) for log in sorted((phase_dir / "logs").glob("task_*.log"))]
        phase_seconds[phase_dir.name] = times
        print(f"  {phase_dir.name:<14} {len(times):>3} tasks, wall per task: mean {sum(times) / len(times):6.2f} s, "
              f"max {max(times):6.2f} s, total {sum(times):7.1f} s")
    print(f"memory: one task (every process but the driver, at its peak) {task_rss / 2**20:.0f} MB; "
          f"driver (phases, then shards and summary) {driver['rss'] / 2**20:.0f} MB; "
          f"largest process {max(p['rss'] for p in seen.values()) / 2**20:.0f} MB")
    per_record = cpu / records
    per_file_cpu = per_record * RECORDS_PER_FILE
    print(f"\nextrapolation, CC dump = {DUMP_FILES:,} WARC files x {RECORDS_PER_FILE:,} response records:")
    print(f"  CPU per CC file: {per_file_cpu / 60:.1f} min ({per_record * 1000:.1f} ms/record x {RECORDS_PER_FILE:,})")
    print(f"  CPU for the dump: {per_file_cpu * DUMP_FILES / 3600:,.0f} CPU-hours; tasks: {DUMP_FILES:,} base + "
          f"{DUMP_FILES:,} final + 14 dedup buckets + 1 dedup cluster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
