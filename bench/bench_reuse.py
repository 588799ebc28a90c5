"""Re-deciding a run with a changed recipe: `ccpipe run --reuse` against the from-scratch run, on one core.

    .venv/bin/python bench/bench_reuse.py                                   # ../shared/corpus/warc/bench, core 0
    .venv/bin/python bench/bench_reuse.py --change 'langid: {threshold: 0.8}' --repeat 3 --json out/reuse.json

First the source run (default config) writes its reuse store (`work/reuse/`); then, for each `--change`
(default: a quality threshold tightened, the same loosened, FineWeb's quality filter off), `--repeat` times, in
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline_measure import compile_checkout  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
# the quality stage re-decides. Gopher's min_doc_words is FineWeb's 50: at 100 documents only leave (no new text
# is analysed for PII nor split into words for MinHash); its alpha-words threshold at 0.7 instead of 0.8 lets 21 in
# on bench, FineWeb's filter off 10
DEFAULT_CHANGES = ("quality: {gopher_quality: {min_doc_words: 100}}",
                   "quality: {gopher_quality: {max_non_alpha_words_ratio: 0.7}}", "quality: {fineweb: false}")


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


def measure(args, tmp: Path, source: Path, change: str, n: int) -> dict:
    """The figures of one change: its from-scratch and `--reuse` runs, `--repeat` times in turn."""
    config = tmp / f"new{n}.yaml"
    config.write_text(yaml.safe_dump(yaml.safe_load(change)))
    scratch, reused = [], []  # (wall, cpu) seconds
    for i in range(args.repeat):  # in turn, so that a change in machine load hits both sides
        scratch.append(ccpipe(args.core, "--input", args.input, "--config", str(config),
                              "--output", str(tmp / f"scratch{n}.{i}")))
        reused.append(ccpipe(args.core, "--reuse", str(source), "--config", str(config),
                             "--output", str(tmp / f"reused{n}.{i}")))
    same = digest(tmp / f"scratch{n}.0") == digest(tmp / f"reused{n}.0")
    stages = {name: json.loads((tmp / f"{name}{n}.0" / "summary.json").read_text())["seconds_per_stage"]
              for name in ("scratch", "reused")}
    kept = {name: json.loads((tmp / f"{name}{n}.0" / "summary.json").read_text()).get("kept")
            for name in ("scratch", "reused")}
    best_wall = {side: min(w for w, _ in runs) for side, runs in (("scratch", scratch), ("reuse", reused))}
    best_cpu = {side: min(c for _, c in runs) for side, runs in (("scratch", scratch), ("reuse", reused))}
    return {
        "change": change, "kept": kept["reused"],
        "scratch_seconds": round(best_wall["scratch"], 2), "reuse_seconds": round(best_wall["reuse"], 2),
        "ratio": round(best_wall["reuse"] / best_wall["scratch"], 3),
        "scratch_cpu_seconds": round(best_cpu["scratch"], 2), "reuse_cpu_seconds": round(best_cpu["reuse"], 2),
        "cpu_ratio": round(best_cpu["reuse"] / best_cpu["scratch"], 3), "byte_identical": same,
        "seconds_per_stage": stages,
        "mode": yaml.safe_load((tmp / f"reused{n}.0" / "config.resolved.yaml").read_text())["reused"].get("mode"),
    }


def report(f: dict, repeat: int, core: int) -> None:
    print(f"change: {f['change']} (reuse mode: {f['mode']}; {f['kept']} documents kept)")
    print(f"  from scratch   {f['scratch_seconds']:7.2f} s wall, {f['scratch_cpu_seconds']:7.2f} s CPU "
          f"(best of {repeat}, core {core})")
    print(f"  with --reuse   {f['reuse_seconds']:7.2f} s wall, {f['reuse_cpu_seconds']:7.2f} s CPU")
    print(f"  ratio          {f['ratio']:7.3f}   (target <= 0.15), CPU {f['cpu_ratio']:.3f}; "
          f"byte-identical outputs: {f['byte_identical']}")
    print("  seconds per stage (first repeat; reuse replays up to extraction, recomputes the rest):")
    stages = f["seconds_per_stage"]
    for stage in sorted(set(stages["scratch"]) | set(stages["reused"])):
        print(f"    {stage:<10} {stages['scratch'].get(stage, 0):7.2f} -> {stages['reused'].get(stage, 0):7.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", default=str(CORPUS / "warc" / "bench"))
    ap.add_argument("--change", action="append",
                    help=f"a new config, YAML; repeat for several (default: {'; '.join(DEFAULT_CHANGES)})")
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    compile_checkout()
    tmp = Path(tempfile.mkdtemp(prefix="bench_reuse."))
    try:
        source = tmp / "source"
        source_seconds, _ = ccpipe(args.core, "--input", args.input, "--output", str(source))
        store, parquet = size(source / "work" / "reuse"), size(source / "parquet")
        changes = [measure(args, tmp, source, change, n) for n, change in enumerate(args.change or DEFAULT_CHANGES)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for figures in changes:
        report(figures, args.repeat, args.core)
    print(f"reuse store    {store / 1e6:7.2f} MB = {store / parquet:.2f}x the parquet output "
          f"({parquet / 1e6:.2f} MB; target <= 1.5x)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "input": args.input, "core": args.core, "repeat": args.repeat, "source_run_seconds": round(source_seconds, 2),
            "store_bytes": store, "parquet_bytes": parquet, "store_over_parquet": round(store / parquet, 2),
            "changes": changes}, indent=2) + "\n")


if __name__ == "__main__":
    main()
