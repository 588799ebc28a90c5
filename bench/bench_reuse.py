"""Re-deciding a run with a changed recipe: `ccpipe run --reuse` against the from-scratch run, on one core.

    .venv/bin/python bench/bench_reuse.py                                   # ../shared/corpus/warc/bench, core 0
    .venv/bin/python bench/bench_reuse.py --change 'langid: {threshold: 0.8}' --repeat 3 --json out/reuse.json

First the source run (default config) writes its reuse store (`work/reuse/`); then, `--repeat` times, in
turn, the changed config from scratch and the changed config with `--reuse SOURCE`, each `ccpipe run
--workers 1` in its own process pinned to the same core (`taskset -c CORE`); wall time from process start
to exit, and CPU seconds (user + sys, workers included: the figure to compare on a shared core). Prints the
best of each, their ratio (target <= 0.15), whether the two outputs are byte-identical,
the size of the source's reuse store against its parquet output (target <= 1.5x), and each run's seconds per
stage (summary.json), which show where a reuse run's time goes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
# the quality stage re-decides: FineWeb's quality filter off (no English quality threshold is a config key yet)
DEFAULT_CHANGE = "quality: {fineweb: false}"


def ccpipe(core: int, *args: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + sys of it and its workers) of one `ccpipe run` pinned to `core`; fails
    loudly if the run fails. CPU seconds are the figure to compare on a core other processes share."""
    started, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(["taskset", "-c", str(core), sys.executable, "-m", "pipeline.cli", "run", "--workers", "1",
                           "--no-progress", *args], capture_output=True, text=True, cwd=ROOT)
    seconds, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"ccpipe run {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def digest(run: Path) -> str:
    h = hashlib.sha256()
    for folder in ("parquet", "bin", "ledger"):
        for p in sorted((run / folder).rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(run)).encode() + p.read_bytes())
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", default=str(CORPUS / "warc" / "bench"))
    ap.add_argument("--change", default=DEFAULT_CHANGE, help=f"the new config, YAML (default: {DEFAULT_CHANGE!r})")
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_reuse."))
    try:
        source = tmp / "source"
        source_seconds, _ = ccpipe(args.core, "--input", args.input, "--output", str(source))
        config = tmp / "new.yaml"
        config.write_text(yaml.safe_dump(yaml.safe_load(args.change)))
        scratch, reused = [], []  # (wall, cpu) seconds
        for i in range(args.repeat):  # in turn, so that a change in machine load hits both sides
            scratch.append(ccpipe(args.core, "--input", args.input, "--config", str(config),
                                  "--output", str(tmp / f"scratch{i}")))
            reused.append(ccpipe(args.core, "--reuse", str(source), "--config", str(config),
                                 "--output", str(tmp / f"reused{i}")))
        same = digest(tmp / "scratch0") == digest(tmp / "reused0")
        stages = {name: json.loads((tmp / f"{name}0" / "summary.json").read_text())["seconds_per_stage"]
                  for name in ("scratch", "reused")}
        store, parquet = size(source / "work" / "reuse"), size(source / "parquet")
        figures = {
            "input": args.input, "change": args.change, "core": args.core, "repeat": args.repeat,
            "source_run_seconds": round(source_seconds, 2),
            "scratch_seconds": round(min(w for w, _ in scratch), 2), "reuse_seconds": round(min(w for w, _ in reused), 2),
            "ratio": round(min(w for w, _ in reused) / min(w for w, _ in scratch), 3),
            "scratch_cpu_seconds": round(min(c for _, c in scratch), 2),
            "reuse_cpu_seconds": round(min(c for _, c in reused), 2),
            "cpu_ratio": round(min(c for _, c in reused) / min(c for _, c in scratch), 3), "byte_identical": same,
            "store_bytes": store, "parquet_bytes": parquet, "store_over_parquet": round(store / parquet, 2),
            "seconds_per_stage": stages,
            "mode": yaml.safe_load((tmp / "reused0" / "config.resolved.yaml").read_text())["reused"].get("mode"),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"change: {args.change} (reuse mode: {figures['mode']})")
    print(f"from scratch   {figures['scratch_seconds']:7.2f} s wall, {figures['scratch_cpu_seconds']:7.2f} s CPU "
          f"(best of {args.repeat}, core {args.core})")
    print(f"with --reuse   {figures['reuse_seconds']:7.2f} s wall, {figures['reuse_cpu_seconds']:7.2f} s CPU")
    print(f"ratio          {figures['ratio']:7.3f}   (target <= 0.15), CPU {figures['cpu_ratio']:.3f}; "
          f"byte-identical outputs: {same}")
    print(f"reuse store    {store / 1e6:7.2f} MB = {figures['store_over_parquet']:.2f}x the parquet output "
          f"({parquet / 1e6:.2f} MB; target <= 1.5x)")
    print("seconds per stage (first repeat; reuse replays up to extraction, recomputes the rest):")
    for stage in sorted(set(stages["scratch"]) | set(stages["reused"])):
        print(f"  {stage:<10} {stages['scratch'].get(stage, 0):7.2f} -> {stages['reused'].get(stage, 0):7.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
