"""Shared by the engine tests (Ray, Slurm, failure, S3): a small run of the bench corpus, the local
executor's output as the reference, and byte-level comparison of run outputs.

Two of the eight bench WARCs, 40 response records each: every phase runs (dedup, PII, tokenization), in
~15 s locally. The reference run is made once per session (module-level cache) and reused.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH_FILES = ("bench-00000.warc.gz", "bench-00001.warc.gz")
MAX_RECORDS = 40
COMPARED = ("parquet", "bin", "ledger")  # summary.json differs in its timings only

_reference: dict[str, Path] = {}


def bench_inputs(corpus: Path) -> list[str]:
    return [str(corpus / "warc" / "bench" / name) for name in BENCH_FILES]


def run_args(inputs: list[str], output: str | Path, tokenizer: Path, *extra: str) -> list[str]:
    return ["run", "--input", *inputs, "--output", str(output), "--tokenizer", str(tokenizer),
            "--max-records", str(MAX_RECORDS), "--no-progress", *extra]


def ccpipe(*args: str, env: dict | None = None, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=ROOT, **kwargs)


def reference_run(corpus: Path, tokenizer: Path, base: Path) -> Path:
    """The local executor's output for the small bench run (made once per session)."""
    if "local" not in _reference:
        out = base / "reference"
        proc = ccpipe(*run_args(bench_inputs(corpus), out, tokenizer, "--workers", "2"))
        assert proc.returncode == 0, proc.stderr[-3000:]
        _reference["local"] = out
    return _reference["local"]


REUSE_CONFIG = "pii:\n  entities: [EMAIL_ADDRESS]\nquality:\n  c4: false\n"  # a later stage, and one it replays into


def reuse_args(corpus: Path, tokenizer: Path, base: Path, output: str | Path, *extra: str) -> list[str]:
    """`ccpipe run --reuse` of the reference run with another PII entity list and quality switch."""
    config = base / "reuse.yaml"
    config.write_text(REUSE_CONFIG)
    return ["run", "--reuse", str(reference_run(corpus, tokenizer, base)), "--config", str(config), "--output",
            str(output), "--tokenizer", str(tokenizer), "--max-records", str(MAX_RECORDS), "--no-progress", *extra]


def reuse_reference(corpus: Path, tokenizer: Path, base: Path) -> Path:
    """The local executor's output for `reuse_args` (made once per session)."""
    if "reuse" not in _reference:
        out = base / "reuse-local"
        proc = ccpipe(*reuse_args(corpus, tokenizer, base, out))
        assert proc.returncode == 0, proc.stderr[-3000:]
        _reference["reuse"] = out
    return _reference["reuse"]


def output_digests(root: Path) -> dict[str, str]:
    """sha256 of every file under parquet/, bin/, ledger/, by path relative to the run."""
    digests = {}
    for sub in COMPARED:
        for path in sorted((root / sub).rglob("*")):
            if path.is_file():
                digests[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    assert any(k.startswith("parquet/") for k in digests) and any(k.startswith("bin/") for k in digests), digests
    return digests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
