"""`ccpipe audit whatif`: its prediction, record by record, against a from-scratch run of the changed config."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from pipeline.audit.queries import AuditError, run_config
from pipeline.audit.report import write_report
from pipeline.audit.whatif import parse_changes, predicted_fates, whatif, whatif_knobs
from pipeline.plan.config import config_from_dict
from pipeline.run import run_pipeline
from tests.pipeline.conftest import classified_run

pytestmark = pytest.mark.slow


def fates(run) -> dict[str, str]:
    return {r["id"]: "kept" if r["decision"] == "kept" else f"{r['stage']}:{r['reason']}"
            for r in pq.read_table(run / "ledger", columns=["id", "decision", "stage", "reason"]).to_pylist()}


@pytest.fixture(scope="module")
def base(classifier_run):
    return classifier_run


def test_every_threshold_at_its_current_value_reproduces_every_decision(base):
    """The check table (order, signals, reasons) against the quality stage itself: no change, no flip."""
    knobs = whatif_knobs(run_config(base))
    assert predicted_fates(base, knobs) == fates(base)
    old = fates(base)
    assert any(f.startswith("quality:gopher") for f in old.values()) and "kept" in old.values()


def test_tightening_prediction_equals_a_run_of_the_changed_config(base, bench_dir, gpt2_tiktoken, quality_model,
                                                                 tmp_path):
    changes = {"quality.gopher_quality.min_doc_words": 100, "langid.threshold": 0.8,
               "quality.classifier.threshold": 0.95}
    predicted = predicted_fates(base, changes)
    actual = fates(classified_run(bench_dir, gpt2_tiktoken, quality_model, tmp_path / "new", threshold=0.95,
                                  langid={"threshold": 0.8}, quality={"gopher_quality": {"min_doc_words": 100}}))
    assert not [f for f in predicted.values() if f.startswith("unknown")]
    assert predicted == actual
    result = whatif(base, changes)
    old = fates(base)
    flipped = [i for i in old if old[i] == "kept" and actual[i] != "kept"]
    assert result["kept_to_dropped"] == len(flipped) > 0 and result["dropped_to_kept"] == 0
    assert result["tokens_lost"] == sum(r["token_count"] + 1 for r in pq.read_table(base / "ledger").to_pylist()
                                        if r["id"] in flipped)
    assert len(result["examples"]["kept_to_dropped"]) == min(5, len(flipped))


def test_prediction_equals_a_reuse_run_of_the_changed_config(base, gpt2_tiktoken, quality_model, tmp_path):
    """The same check against `ccpipe run --reuse`: the re-decided run whatif stands for."""
    changes = {"quality.gopher_quality.min_doc_words": 80, "quality.classifier.threshold": 0.96}
    config = config_from_dict({"input": {"max_records": 120}, "tokenizer": {"name": str(gpt2_tiktoken)},
                               "quality": {"gopher_quality": {"min_doc_words": 80},
                                           "classifier": {"model": str(quality_model), "threshold": 0.96}}})
    run_pipeline(config, [], tmp_path / "reused", reuse=base)
    predicted, actual = predicted_fates(base, changes), fates(tmp_path / "reused")
    assert not [f for f in predicted.values() if f.startswith("unknown")]
    assert predicted == actual
    assert whatif(base, changes)["kept_to_dropped"] == sum(
        1 for i, f in fates(base).items() if f == "kept" and actual[i] != "kept") > 0


def test_loosening_says_unknown_where_a_later_check_never_measured(base, bench_dir, gpt2_tiktoken, quality_model,
                                                                  tmp_path):
    changes = {"langid.threshold": 0.5, "quality.classifier.threshold": 0.9}
    predicted = predicted_fates(base, changes)
    actual = fates(classified_run(bench_dir, gpt2_tiktoken, quality_model, tmp_path / "new", threshold=0.9,
                                  langid={"threshold": 0.5}))
    unknown = {i for i, f in predicted.items() if f.startswith("unknown")}
    assert unknown
    known = {i: f for i, f in predicted.items() if i not in unknown}
    assert known == {i: f for i, f in actual.items() if i not in unknown}
    assert whatif(base, changes)["unknown"] == len(unknown)


def test_cli_json_and_errors(base):
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "audit", "whatif", str(base), "--set",
                           "quality.classifier.threshold=0.95", "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["changes"] == {"quality.classifier.threshold": {"from": 0.93, "to": 0.95}}
    with pytest.raises(AuditError, match="quality.c4.min_words_per_line: not answerable"):
        parse_changes(run_config(base), ["quality.c4.min_words_per_line=2"])
    with pytest.raises(AuditError, match="expected a number"):
        parse_changes(run_config(base), ["langid.threshold=high"])


def test_report_has_a_curve_per_threshold_with_the_current_value(base, tmp_path):
    out = tmp_path / "report.html"
    write_report(base, out)
    page = out.read_text()
    knobs = whatif_knobs(run_config(base))
    for knob, value in knobs.items():
        assert f'id="curve-{knob}"' in page, knob
    chart = page.split('id="curve-quality.classifier.threshold"')[1].split("</svg>")[0]
    assert "now 0.93" in chart and 'class="threshold"' in chart and 'class="kept-still"' in chart
