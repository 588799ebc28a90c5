"""`ccpipe classifier train` and `quality.classifier` in a run: a small model trained here from the extraction
corpus (no download), reproducibly; its score in the ledger for every document that reaches it."""

from __future__ import annotations

import math
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from pipeline.audit.queries import AuditError, run_config, run_stages
from pipeline.audit.whatif import parse_changes
from stages.filters.classifier import REASON, SIGNAL, TOP_FRACTION_REASON
from tests.fixtures import classifier_examples
from tests.pipeline.conftest import classified_run


def ccpipe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def examples(corpus, tmp_path_factory):
    return classifier_examples(corpus, tmp_path_factory.mktemp("examples"))


def test_train_is_reproducible_and_prints_held_out_precision_recall(examples, tmp_path):
    positive, negative = examples
    outputs = []
    for name in ("a.bin", "b.bin"):
        proc = ccpipe("classifier", "train", "--positive", str(positive), "--negative", str(negative),
                      "-o", str(tmp_path / name), "--epoch", "20", "--lr", "0.5", "--dim", "32", "--bucket", "100000")
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout)
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes()
    assert outputs[0].splitlines()[0] == outputs[1].splitlines()[0]
    assert "held out 38: precision" in outputs[0] and "recall" in outputs[0]
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*.txt"))


def test_train_errors_name_the_input(examples, tmp_path):
    positive, _ = examples
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\nnot json\n')
    model = str(tmp_path / "m")
    proc = ccpipe("classifier", "train", "--positive", str(positive), "--negative", str(bad), "-o", model)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"ccpipe: {bad}: line 2: expected a JSON object with a 'text' field"
    proc = ccpipe("classifier", "train", "--positive", str(positive), "--negative", str(tmp_path), "-o", model)
    assert proc.returncode == 2 and "not a finished ccpipe run" in proc.stderr
    assert not (tmp_path / "m").exists()


def test_run_scores_every_document_reaching_it_and_trains_on_a_run(examples, classifier_run, tmp_path):
    positive, _ = examples
    rows = pq.read_table(classifier_run / "ledger").to_pylist()
    reached = [r for r in rows if r["decision"] == "kept" or r["stage"] == "dedup" or r["reason"] == REASON]
    assert reached and any(r["reason"] == REASON for r in rows) and any(r["decision"] == "kept" for r in rows)
    for r in reached:
        score = dict(r["quality"])[SIGNAL]
        assert (score < 0.93) == (r["reason"] == REASON), r["id"]
        assert dict(r["quality_thresholds"])[SIGNAL] == "< 0.93"
    unreached = [r for r in rows if r["stage"] == "quality" and r["reason"] != REASON]
    assert unreached and all(SIGNAL not in dict(r["quality"] or {}) for r in unreached)
    # a run's kept documents as the negatives
    proc = ccpipe("classifier", "train", "--positive", str(positive), "--negative", str(classifier_run),
                  "-o", str(tmp_path / "m2"), "--dim", "16", "--bucket", "10000")
    assert proc.returncode == 0, proc.stderr
    assert "negative in all" in proc.stdout


def test_top_fraction_keeps_the_best_half_of_each_language_after_dedup(quality_model, bench_dir, gpt2_tiktoken,
                                                                      tmp_path):
    run = classified_run(bench_dir, gpt2_tiktoken, quality_model, tmp_path / "top",
                         quality={"classifier": {"model": str(quality_model), "top_fraction": 0.5}})
    stages = run_stages(run)
    assert stages.index("quality") < stages.index("dedup") < stages.index("classifier") < stages.index("pii")
    rows = pq.read_table(run / "ledger").to_pylist()
    scored = [r for r in rows if SIGNAL in dict(r["quality"] or {})]
    assert scored and not [r for r in rows if r["reason"] == REASON]
    for language in {r["language"] for r in scored}:
        scores = sorted((dict(r["quality"])[SIGNAL] for r in scored if r["language"] == language), reverse=True)
        cutoff = scores[math.ceil(0.5 * len(scores)) - 1]
        for r in (r for r in scored if r["language"] == language and r["stage"] != "dedup"):
            assert (dict(r["quality"])[SIGNAL] < cutoff) == (r["reason"] == TOP_FRACTION_REASON), r["id"]
    assert any(r["reason"] == TOP_FRACTION_REASON and r["stage"] == "classifier" for r in rows)
    with pytest.raises(AuditError, match="top fraction"):
        parse_changes(run_config(run), ["langid.threshold=0.8"])
