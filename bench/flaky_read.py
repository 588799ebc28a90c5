"""The bench WARCs read over a flaky loopback HTTP server: how many records reach the ledger, and the exit code.

    python bench/flaky_read.py [--rate 0.25] [--seed 0] [--workers 2] [--out /tmp/flaky] [--block-kib 256]
                               [--code /work/main]   (another checkout's ccpipe, e.g. before this change)

The server (tests/pipeline/faults.py) answers about `rate` of its requests with a connection reset, an HTTP
503 or a body cut mid-transfer. Issue 10 measured main before retries: 1 GET in 4 faulty -> 671 of 1,416
records in the ledger, exit 0. With retries and resumption every record must arrive (1,416), with the
same outputs as a local run. Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.pipeline.faults import FaultyFileServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--out", default="/tmp/ccpipe-flaky")
    parser.add_argument("--block-kib", type=int, help="fsspec's HTTP read block (default 5 MiB): smaller, more requests")
    parser.add_argument("--code", default=str(ROOT), help="the ccpipe checkout to run")
    args = parser.parse_args()
    bench = Path(args.corpus) / "warc" / "bench"
    tokenizer = Path(args.corpus) / "tokenizers" / "gpt2" / "gpt2.tiktoken"
    shutil.rmtree(args.out, ignore_errors=True)
    # a cache of its own: main before this change cached every remote file under ~/.cache/ccpipe/warc
    env = {**os.environ, "PYTHONPATH": args.code, "CCPIPE_CACHE": args.out + ".cache"}
    shutil.rmtree(env["CCPIPE_CACHE"], ignore_errors=True)
    if args.block_kib:
        env["FSSPEC_HTTP_BLOCK_SIZE"] = str(args.block_kib * 1024)
    with FaultyFileServer(bench, seed=args.seed, rate=args.rate) as server:
        urls = [f"{server.url}/{p.name}" for p in sorted(bench.glob("*.warc.gz"))]
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--input", *urls, "--output", args.out,
                               "--tokenizer", str(tokenizer), "--workers", str(args.workers), "--no-progress"],
                              cwd=args.code, capture_output=True, text=True, env=env, check=False)
        elapsed = time.monotonic() - started
        faults, requests = dict(server.faults.injected), server.faults.requests
    summary_path = Path(args.out) / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    print(f"requests {requests}, faults injected {sum(faults.values())} {faults}")
    print(f"exit {proc.returncode}; records in the ledger {summary.get('records_total', 'n/a')}, "
          f"kept {summary.get('kept', 'n/a')}, file errors {len(summary.get('errors', []))}; {elapsed:.1f} s")
    if proc.returncode:
        print(proc.stderr.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
