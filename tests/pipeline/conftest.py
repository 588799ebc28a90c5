"""Runs of the whole pipeline on ../shared/corpus/warc/bench, made once per session and shared by the tests
that check them (truth, audit, determinism)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.plan.config import config_from_dict
from pipeline.run import run_pipeline


@pytest.fixture(scope="session")
def bench_dir(corpus) -> Path:
    path = corpus / "warc" / "bench"
    if not (path / "truth.jsonl").is_file():
        pytest.skip(f"bench corpus not found at {path}")
    return path


@pytest.fixture(scope="session")
def truth(bench_dir) -> list[dict]:
    return [json.loads(line) for line in (bench_dir / "truth.jsonl").read_text().splitlines()]


def bench_run(bench_dir, gpt2_tiktoken, out: Path, workers: int, **sections) -> Path:
    # small shards so that the train/val split and shard boundaries are exercised
    config = config_from_dict({"run": {"workers": workers}, "tokenizer": {"name": str(gpt2_tiktoken)},
                               "output": {"shard_tokens": 100_000}, **sections})
    run_pipeline(config, [str(bench_dir)], out)
    return out


@pytest.fixture(scope="session")
def run1(bench_dir, gpt2_tiktoken, tmp_path_factory) -> Path:
    return bench_run(bench_dir, gpt2_tiktoken, tmp_path_factory.mktemp("bench") / "w1", workers=1)


@pytest.fixture(scope="session")
def run2(bench_dir, gpt2_tiktoken, tmp_path_factory) -> Path:
    return bench_run(bench_dir, gpt2_tiktoken, tmp_path_factory.mktemp("bench") / "w2", workers=2)


@pytest.fixture(scope="session")
def bad_run(corpus, gpt2_tiktoken, tmp_path_factory):
    bad = corpus / "warc" / "bad"
    if not bad.is_dir():
        pytest.skip(f"{bad} not found")
    out = tmp_path_factory.mktemp("bad") / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", "--input", str(bad), "--output", str(out),
         "--tokenizer", str(gpt2_tiktoken), "--no-progress"],
        capture_output=True, text=True, timeout=900,
    )
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # largest process of the run, in KiB
    assert proc.returncode == 0, proc.stderr[-3000:]
    return bad, out, proc, peak_kib
