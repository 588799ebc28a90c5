"""`ccpipe train-smoke`: a tiny GPT trained on the bench release must learn."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from pipeline.finalize.shards import write_shard
from tests.pipeline.test_release import bench_release


@pytest.fixture(scope="module")
def bench(tmp_path_factory, corpus, gpt2_tiktoken):
    return bench_release(tmp_path_factory, corpus, gpt2_tiktoken)


def test_compact_vocabulary_keeps_the_most_frequent_tokens(tmp_path):
    from pipeline.train.smoke import compact_vocab

    write_shard(tmp_path / "a.bin", np.array([7, 7, 7, 3, 3, 50256, 9], dtype=np.uint16))
    table, coverage = compact_vocab([tmp_path / "a.bin"], size=3)
    assert table[7] == 0 and table[3] == 1  # by frequency
    assert table[50256] == table[9] == table[12345] == 2  # the rest: "other"
    assert coverage == pytest.approx(5 / 7)


def test_tiny_gpt_has_a_few_hundred_thousand_parameters():
    torch = pytest.importorskip("torch")
    from pipeline.train.smoke import tiny_gpt

    model = tiny_gpt(vocab=2048, context=64)
    assert 100_000 < sum(p.numel() for p in model.parameters()) < 500_000
    torch.manual_seed(0)
    x, y = torch.randint(0, 2048, (2, 64)), torch.randint(0, 2048, (2, 64))
    loss = model(x, y)
    assert abs(loss.item() - np.log(2048)) < 0.5  # GPT-2's init: about uniform at first


@pytest.mark.slow
def test_train_smoke_loss_falls_on_the_bench_release(bench):
    pytest.importorskip("torch")
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "train-smoke", str(bench[1]), "--steps", "150",
                           "--device", "auto"], capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    val = [float(v) for v in re.findall(r"val loss ([\d.]+)", proc.stdout)]
    train = [float(v) for v in re.findall(r"train loss ([\d.]+)", proc.stdout)]
    assert len(val) == 11 and len(train) == 10
    assert val[0] > 7.0  # ~ln(2048) before training
    assert val[-1] < val[0] - 1.5 and train[-1] < val[0] - 1.5, proc.stdout


def test_train_smoke_refuses_a_directory_that_is_no_release(tmp_path):
    pytest.importorskip("torch")
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "train-smoke", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2 and "MANIFEST.json" in proc.stderr
