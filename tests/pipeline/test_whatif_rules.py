"""`whatif`'s rules on a tiny ledger built here: what is computed and what is unknown (no pipeline run)."""

from __future__ import annotations

import pyarrow as pa
import yaml

from pipeline.audit.whatif import predicted_fates
from pipeline.finalize.consolidate import write_ledger_part
from pipeline.plan.config import config_from_dict, config_to_dict
from stages.writers.ledger import LEDGER_SCHEMA

STAGES = ["reader", "blocklist", "extract", "langid", "quality", "dedup", "pii", "tokenize"]
# the English checks a kept document passed, all measured
PASSED = {"gopher_rep_dup_para_frac": 0.0, "gopher_word_count": 300.0, "gopher_mean_word_length": 5.0,
          "c4_too_few_sentences": 9.0, "fineweb_line_punct_ratio": 0.9, "fineweb_short_line_ratio": 0.1,
          "fineweb_char_dup_ratio": 0.0, "fineweb_list_ratio": 0.05, "classifier_score": 0.8}


def run(tmp_path, rows: list[dict], **config) -> str:
    root = tmp_path / "run"
    full = [{"id": f"id-{i}", "url": f"https://example.com/{i}", "warc": "a.warc.gz", "offset": i,
             "decision": "dropped" if r.get("stage") else "kept", "language": "en", "language_score": 0.9, **r}
            for i, r in enumerate(rows)]
    write_ledger_part(pa.Table.from_pylist(full, schema=LEDGER_SCHEMA), root / "ledger" / "part-00000.parquet")
    resolved = config_to_dict(config_from_dict({"quality": {"classifier": {"model": "q.bin", "threshold": 0.5,
                                                                           "thresholds": {"de": 0.9}}}, **config}))
    (root / "config.resolved.yaml").write_text(yaml.safe_dump({"config": resolved, "stages": STAGES}))
    return str(root)


def test_what_is_computed_and_what_is_unknown(tmp_path):
    rows = [
        {"quality": PASSED, "token_count": 10},  # 0: kept, short under 400 words -> computed
        {"quality": {**PASSED, "gopher_word_count": 800.0}, "token_count": 10},  # 1: kept, stays
        # 2: dropped by the C4 sentence count, measured before; fewer words now fail first -> computed
        {"stage": "quality", "reason": "c4_too_few_sentences", "quality": {"gopher_word_count": 90.0,
                                                                        "c4_too_few_sentences": 2.0}},
        # 3: dropped at the last check, the classifier; passes 0.4 -> past every filter: dedup never saw it
        {"stage": "quality", "reason": "classifier_low_score", "quality": {**PASSED, "gopher_word_count": 900.0,
                                                                         "classifier_score": 0.45}},
        # 4: dropped by a middle check now passing: the checks after it never measured it
        {"stage": "quality", "reason": "gopher_too_many_bullets", "quality": {"gopher_word_count": 900.0,
                                                                            "gopher_too_many_bullets": 0.95}},
        # 5, 6: a cluster of two whose kept document goes: its duplicate is kept
        {"quality": PASSED, "token_count": 10, "dup_cluster": 1},
        {"stage": "dedup", "reason": "near_duplicate", "quality": {**PASSED, "gopher_word_count": 700.0},
         "dup_cluster": 1},
        # 7, 8, 9: a cluster of three losing its kept document: which survive is not in the ledger
        {"quality": PASSED, "token_count": 10, "dup_cluster": 2},
        {"stage": "dedup", "reason": "near_duplicate", "quality": {**PASSED, "gopher_word_count": 700.0},
         "dup_cluster": 2},
        {"stage": "dedup", "reason": "near_duplicate", "quality": {**PASSED, "gopher_word_count": 700.0},
         "dup_cluster": 2},
        # 10: German, with its own classifier threshold 0.9: 0.8 stays dropped whatever the default
        {"stage": "quality", "reason": "classifier_low_score", "language": "de",
         "quality": {**PASSED, "gopher_word_count": 900.0}},
    ]
    changes = {"quality.gopher_quality.min_doc_words": 400, "quality.gopher_quality.max_bullet_lines_ratio": 1.0,
               "quality.classifier.threshold": 0.4}
    fates = predicted_fates(run(tmp_path, rows), changes)
    assert fates == {
        "id-0": "quality:gopher_short_doc", "id-1": "kept", "id-2": "quality:gopher_short_doc",
        "id-3": "unknown:dedup", "id-4": "unknown:quality",
        "id-5": "quality:gopher_short_doc", "id-6": "kept",
        "id-7": "quality:gopher_short_doc", "id-8": "unknown:dedup", "id-9": "unknown:dedup",
        "id-10": "quality:classifier_low_score",
    }


def test_without_dedup_a_document_past_every_filter_is_kept(tmp_path):
    rows = [{"stage": "quality", "reason": "classifier_low_score", "quality": {**PASSED, "classifier_score": 0.45}},
            {"stage": "langid", "reason": "low_score", "language_score": 0.6}]
    fates = predicted_fates(run(tmp_path, rows, dedup={"enabled": False}),
                            {"quality.classifier.threshold": 0.4, "langid.threshold": 0.5})
    assert fates == {"id-0": "kept", "id-1": "unknown:quality"}
