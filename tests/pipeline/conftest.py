"""Runs of the whole pipeline on ../shared/corpus/warc/bench, made once per session and shared by the tests
that check them (truth, audit, determinism)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.classifier.train import TrainSettings, train
from pipeline.plan.config import config_from_dict
from pipeline.run import run_pipeline
from tests.fixtures import classifier_examples


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


@pytest.fixture(scope="session")
def quality_model(corpus, tmp_path_factory) -> Path:
    """A small fastText quality classifier trained here (tests/fixtures.py: gold article texts against whole pages)."""
    folder = tmp_path_factory.mktemp("quality-model")
    positive, negative = classifier_examples(corpus, folder)
    train([str(positive)], [str(negative)], folder / "model.bin", TrainSettings(epoch=20, lr=0.5, dim=32, bucket=100_000))
    return folder / "model.bin"


def classified_run(bench_dir, gpt2_tiktoken, model: Path, out: Path, threshold: float = 0.93, **sections) -> Path:
    """The first 120 records of bench-00000 with the quality classifier: ~40 documents reach the quality stage."""
    config = config_from_dict({"input": {"max_records": 120}, "tokenizer": {"name": str(gpt2_tiktoken)},
                               **sections, "quality": {"classifier": {"model": str(model), "threshold": threshold},
                                                       **sections.get("quality", {})}})
    run_pipeline(config, [str(bench_dir / "bench-00000.warc.gz")], out)
    return out


@pytest.fixture(scope="session")
def classifier_run(bench_dir, gpt2_tiktoken, quality_model, tmp_path_factory) -> Path:
    """`classified_run` at threshold 0.93, shared by the classifier and whatif tests."""
    return classified_run(bench_dir, gpt2_tiktoken, quality_model, tmp_path_factory.mktemp("classified") / "run")
