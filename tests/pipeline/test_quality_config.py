"""`quality.<filter>` as a mapping of datatrove thresholds, and `quality.classifier`: checked before any work."""

from __future__ import annotations

import pytest

from pipeline.plan.checks import check_config
from pipeline.plan.config import ConfigError, config_from_dict
from pipeline.plan.phases import build_phases
from stages.filters.classifier import QualityClassifier
from stages.filters.quality import QualityFilters


def steps(config, tmp_path):
    return [s for phase in build_phases(config, ["a.warc.gz"], tmp_path / "run") for s in phase.steps]


def test_a_filter_mapping_changes_datatrove_thresholds_and_keeps_it_on(tmp_path):
    config = config_from_dict({"quality": {"gopher_quality": {"min_doc_words": 100}, "fineweb": {}, "c4": False}})
    check_config(config)
    quality = next(s for s in steps(config, tmp_path) if isinstance(s, QualityFilters))
    assert quality.gq.min_doc_words == 100 and quality.gq.max_doc_words == 100_000
    assert quality.fw is not None and quality.fw.new_line_ratio == 0.3 and quality.c4 is None


@pytest.mark.parametrize("quality, message", [
    ({"gopher_quality": {"min_words": 100}}, "quality.gopher_quality: unknown threshold 'min_words' (allowed: "
                                             "min_doc_words, max_doc_words,"),
    ({"c4": {"filter_lorem_ipsum": 0}}, "quality.c4: unknown threshold 'filter_lorem_ipsum'"),
    ({"classifier": {"model": "/nonexistent/q.bin"}}, "quality.classifier.model: /nonexistent/q.bin: no such file"),
])
def test_bad_thresholds_and_models_name_the_key(quality, message):
    with pytest.raises(ConfigError) as err:
        check_config(config_from_dict({"quality": quality}))
    assert message in str(err.value)


@pytest.mark.parametrize("quality, key", [
    ({"gopher_quality": {"min_doc_words": "many"}}, "quality.gopher_quality"),
    ({"classifier": {"top_fraction": 0.0}}, "quality.classifier.top_fraction"),
    ({"classifier": {"threshold": 1.5}}, "quality.classifier.threshold"),
])
def test_bad_values_fail_when_read(quality, key):
    with pytest.raises(ConfigError) as err:
        config_from_dict({"quality": quality})
    assert str(err.value).startswith(key)


def test_no_model_no_classifier_step(tmp_path):
    assert not [s for s in steps(config_from_dict({}), tmp_path) if isinstance(s, QualityClassifier)]
