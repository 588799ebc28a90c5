"""The time bound per record outside extraction (`run.record_timeout`): a record over it is dropped under its
stage as `timeout`, counted, and the stage goes on with the next record."""

from __future__ import annotations

import contextlib
import json
import time

import pytest

from pipeline.plan.config import ConfigError, config_from_dict
from stages.filters.langid import LanguagePrecheck
from stages.pii.scrub import PIIScrubber
from stages.tokens.tokenize import BPETokenizer, Tokenize
from stages.utils.deadline import RecordTimeout, bounded, record_deadline
from stages.writers.ledger import DropLedger
from tests.fixtures import html_page, make_doc, write_warc
from tests.stages.readers.test_warc import assert_conserved, read

pytestmark = pytest.mark.timeout(60)

SLOW = 0.0001  # seconds: any real work on a large page outlasts it
BIG_PAGE = html_page("Big", *["Balconies grow tomatoes, basil and beans in summer. " * 40] * 400)


def test_the_deadline_interrupts_python_code():
    with pytest.raises(RecordTimeout, match="over 0.05 s"):
        with record_deadline(0.05):
            while True:
                pass
    with record_deadline(None):
        pass


def test_a_bound_that_expires_as_it_starts_leaves_the_next_one_armed():
    # the alarm of a bound due at once went off before the block was entered: the bound stayed marked as
    # running, and every later record of the process ran unbounded (`a bound inside a bound`)
    for _ in range(50):
        with contextlib.suppress(RecordTimeout), record_deadline(1e-6):
            sum(range(1000))
    with pytest.raises(RecordTimeout, match="over 0.05 s"):
        with record_deadline(0.05):
            end = time.monotonic() + 1
            while time.monotonic() < end:
                pass


def test_a_record_over_the_bound_in_the_reader_is_a_counted_timeout(tmp_path):
    path = write_warc(tmp_path / "a.warc.gz", [{"url": "https://example.com/big", "body": BIG_PAGE.encode(),
                                                "content_type": "text/html"}])  # no charset: detection
    docs, files, rows = read(tmp_path, [path], record_timeout=SLOW)
    assert docs == [] and [(r["reason"], r["detail"]) for r in rows] == [("timeout", f"over {SLOW:g} s")]
    assert_conserved(files)


def test_a_filter_over_the_bound_drops_the_document_as_timeout():
    precheck = LanguagePrecheck()
    precheck.record_timeout = SLOW
    doc = make_doc(BIG_PAGE)
    assert precheck.filter(doc) == (False, "timeout") and doc.metadata["drop_detail"] == f"over {SLOW:g} s"


def test_a_page_over_the_bound_in_a_batch_of_the_precheck_is_a_timeout():
    # the pre-check reads a batch's pages, then scores them: a page's two parts share its bound
    precheck = LanguagePrecheck()
    precheck.record_timeout = SLOW
    docs = [make_doc(BIG_PAGE, doc_id=str(i)) for i in range(3)]
    assert precheck.filter_batch(docs) == [(False, "timeout")] * 3
    assert {d.metadata["drop_detail"] for d in docs} == {f"over {SLOW:g} s"}
    doc = make_doc("x")  # a part that starts with the whole bound spent: over it, in the record's own terms
    assert bounded(doc, 60, sum, range(1000), spent=60) == (False, "timeout")
    assert doc.metadata["drop_detail"] == "over 60 s" and bounded(doc, 60, sum, range(1000), spent=59) == 499500


def test_a_document_over_the_bound_in_pii_is_dropped_never_kept_unscrubbed(tmp_path):
    text = "Mail jane.roe@example.org or call +1 212 555 0143.\n" * 3000
    scrubber = PIIScrubber(exclusion_writer=DropLedger(str(tmp_path), "pii"), record_timeout=SLOW, max_candidates=None)
    assert list(scrubber.run(iter([make_doc(text)]))) == []
    rows = [json.loads(line) for line in (tmp_path / "pii" / "00000.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["reason"]) for r in rows] == [("pii", "timeout")]


def test_a_document_over_the_bound_in_tokenize_is_a_counted_timeout(tmp_path):
    big = make_doc("Balconies grow tomatoes. " * 40_000, doc_id="big", language="en")  # 1 MB: ~0.1 s
    small = make_doc("Hi.", doc_id="small", language="en")
    step = Tokenize(BPETokenizer("gpt2"), str(tmp_path / "tokens"), exclusion_writer=DropLedger(str(tmp_path), "tokenize"),
                    record_timeout=0.01)
    assert [d.id for d in step.run(iter([big, small]))] == ["small"]
    rows = [json.loads(line) for line in (tmp_path / "tokenize" / "00000.jsonl").read_text().splitlines()]
    assert [(r["id"], r["stage"], r["reason"]) for r in rows] == [("big", "tokenize", "timeout")]
    assert step.stats["dropped_timeout"].total == 1


def test_record_timeout_is_validated():
    assert config_from_dict({"run": {"record_timeout": 5}}).run.record_timeout == 5
    with pytest.raises(ConfigError, match="run.record_timeout"):
        config_from_dict({"run": {"record_timeout": 0}})
