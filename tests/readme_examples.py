"""The README's example outputs, generated from a real run of `make run`'s command on the shipped sample.

    .venv/bin/python -m tests.readme_examples           # rewrites the generated blocks of README.md
    .venv/bin/python -m tests.readme_examples --check   # exit 1 when README.md differs from a run

A generated block sits between `<!-- generated: NAME ... -->` and `<!-- /generated -->`; everything else in
README.md is written by hand. `tests/pipeline/test_first_hour.py` runs the same command and fails when a block
differs, so the examples cannot drift from what the code prints. Only the elapsed seconds vary between runs:
compared as `(… s)`.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from pipeline.finalize.shards import read_header

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# `make run` with its defaults (Makefile: INPUT, OUTPUT, MAX_RECORDS, WORKERS), progress bars off
COMMAND = ["run", "--input", str(ROOT / "pipeline" / "sample"), "--output", "out/run", "--max-records", "2000",
           "--workers", "2", "--no-progress"]
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+)[^>]*-->\n)(?P<body>.*?)(<!-- /generated -->)", re.S)
ELAPSED = re.compile(r"\(\d+(\.\d+)? s\)")


def run_sample(workdir: Path) -> tuple[str, Path]:
    """`make run`'s command in `workdir` (so the output is `out/run`, as the README shows): (stdout, run dir)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", *COMMAND], cwd=workdir, env=env,
                          capture_output=True, text=True, check=False, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"ccpipe run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout, workdir / "out" / "run"


def blocks(stdout: str, run: Path) -> dict[str, str]:
    """name -> the text of each generated block."""
    shards = sorted((run / "bin").glob("*.bin"))
    width = max(len(p.name) for p in shards)
    listing = [f"{p.name:<{width}}  {p.stat().st_size:>9,} bytes  {read_header(p):>7,} tokens" for p in shards]
    return {
        "make-run": "```\n$ make run\n...\n" + stdout.rstrip("\n") + "\n```\n",
        "sample-bin": "```\n$ ls out/run/bin\n" + "\n".join(listing) + "\n```\n",
    }


def rewrite(readme: str, generated: dict[str, str]) -> str:
    """`readme` with every generated block replaced; a block of README.md that this script has no text for,
    or a text with no block, is an error (a renamed block must not go stale silently)."""
    names = [m.group("name") for m in BLOCK.finditer(readme)]
    if sorted(names) != sorted(generated):
        raise ValueError(f"README.md's generated blocks {sorted(names)} differ from this script's {sorted(generated)}")
    return BLOCK.sub(lambda m: m.group(1) + generated[m.group("name")] + m.group(4), readme)


def same(a: str, b: str) -> bool:
    return ELAPSED.sub("(… s)", a) == ELAPSED.sub("(… s)", b)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md differs; write nothing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ccpipe-readme-") as tmp:
        stdout, run = run_sample(Path(tmp))
        text = README.read_text()
        new = rewrite(text, blocks(stdout, run))
    if args.check:
        if not same(text, new):
            print("README.md: its generated examples differ from a run: run python -m tests.readme_examples",
                  file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    print("README.md: generated blocks rewritten from a run of the sample")
    return 0


if __name__ == "__main__":
    sys.exit(main())
