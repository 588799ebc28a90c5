"""The HTML report's charts on tiny ledgers built here: counted in DuckDB, sane axes when every value is equal,
a plain sentence when nothing was kept, a count scale, the language threshold drawn, examples that show their
language, score and kept twin."""

from __future__ import annotations

import re

import pyarrow as pa
import yaml

from pipeline.audit.report import build_report
from pipeline.finalize.consolidate import write_ledger_part
from stages.writers.ledger import LEDGER_SCHEMA

STAGES = ["reader", "blocklist", "extract", "langid", "quality", "dedup", "pii", "tokenize"]


def _run(tmp_path, rows: list[dict]):
    run = tmp_path / "run"
    write_ledger_part(pa.Table.from_pylist(rows, schema=LEDGER_SCHEMA), run / "ledger" / "part-00000.parquet")
    (run / "config.resolved.yaml").write_text(yaml.safe_dump({"config": {"langid": {"threshold": 0.65}},
                                                              "stages": STAGES}))
    return run


def _row(i: int, stage: str | None, reason: str | None = None, **fields) -> dict:
    return {"id": f"id-{i}", "url": f"https://example.com/{i}", "warc": "a.warc.gz", "offset": i,
            "decision": "dropped" if stage else "kept", "stage": stage, "reason": reason, **fields}


def _axis(page: str, name: str) -> list[str]:
    svg = re.search(f'<svg class="hist" id="hist-{name}".*?</svg>', page, re.S).group(0)
    return re.findall(r'class="num"[^>]*>([^<]+)</text>', svg)


def test_equal_values_give_a_narrow_axis_and_zero_kept_says_so(tmp_path):
    rows = [_row(i, "quality", "gopher_short_doc", text_length=398, language="en", language_score=0.9)
            for i in range(5)]
    page = build_report(_run(tmp_path, rows))
    labels = _axis(page, "document-length")
    low, high = (float(x.replace(",", "")) for x in labels[-2:])
    assert low < 398 < high and high / low < 2, labels  # not "398 … 39,799,999,999,999,976,931,328"
    assert "0 documents kept: no tokens" in page and not _axis(page, "tokens")[:-1]


def test_histograms_have_a_count_scale_a_threshold_and_examples_their_context(tmp_path):
    rows = [_row(0, "langid", "language_not_kept", text_length=900, language="de", language_score=0.97),
            _row(1, "langid", "low_score", text_length=800, language="en", language_score=0.41),
            _row(2, "dedup", "near_duplicate", text_length=700, language="en", language_score=0.93,
                 dup_cluster=3, duplicate_of="id-3", duplicate_of_url="https://example.com/3"),
            _row(3, None, text_length=700, language="en", language_score=0.95, token_count=180, dup_cluster=3)]
    page = build_report(_run(tmp_path, rows))
    assert _axis(page, "language-score")[:3] == ["0", "1", "2"]  # 0, half, top: the tallest bin holds 2 (0.93, 0.95)
    assert 'class="threshold"' in page and "threshold per kept language: en 0.65" in page
    assert "language de, score 0.970" in page and "language en, score 0.410" in page
    assert 'kept instead: <span class="url">https://example.com/3</span>' in page
