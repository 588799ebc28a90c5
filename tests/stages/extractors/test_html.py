import json
import pickle
import time

import pytest

from stages.extractors import html as extract
from stages.extractors.html import Extractor, SandboxStartError
from tests.fixtures import html_page, make_doc

ARTICLE = html_page(
    "A quiet harbour",
    "The harbour was quiet in the early morning, and the fishing boats rocked gently against the pier. " * 3,
    "Later the market opened, and the smell of fresh bread drifted over the water from the bakery. " * 3,
)


def ledger_rows(folder):
    return [json.loads(line) for p in sorted(folder.glob("extract/*.jsonl")) for line in p.read_text().splitlines()]


def test_extracts_main_text(tmp_path):
    docs = list(Extractor(str(tmp_path)).run(iter([make_doc(ARTICLE)])))
    assert len(docs) == 1
    assert "fishing boats rocked gently" in docs[0].text and "<p>" not in docs[0].text


def test_empty_page_is_dropped_with_reason(tmp_path):
    docs = list(Extractor(str(tmp_path)).run(iter([make_doc("<html><body></body></html>", doc_id="e")])))
    assert docs == []
    assert [(r["id"], r["reason"]) for r in ledger_rows(tmp_path)] == [("e", "empty_text")]


class SlowExtractor(Extractor):
    def extract(self, text):
        if "hang" in text:
            time.sleep(30)  # stands in for a hang in C code: the child process is killed
        return super().extract(text)


def test_hang_is_cut_by_the_time_limit(tmp_path):
    step = SlowExtractor(str(tmp_path), timeout=1.0)
    started = time.monotonic()
    docs = list(step.run(iter([make_doc("<p>hang</p>", doc_id="h"), make_doc(ARTICLE, doc_id="ok")])))
    assert time.monotonic() - started < 20
    assert [d.id for d in docs] == ["ok"]
    assert [(r["id"], r["reason"]) for r in ledger_rows(tmp_path)] == [("h", "timeout")]


def test_deterministic_and_picklable(tmp_path):
    step = pickle.loads(pickle.dumps(Extractor(str(tmp_path))))
    a = [d.text for d in step.run(iter([make_doc(ARTICLE), make_doc(ARTICLE)]))]
    assert a[0] == a[1]  # trafilatura's deduplicate=True would blank the second copy


def test_a_child_that_cannot_start_fails_the_task_and_drops_nothing(tmp_path, monkeypatch):
    # an environment fault (here: the child exits at once) is not a property of the page: no `crashed` drops
    monkeypatch.setattr(extract, "_BOOT", "import sys; sys.exit(3)")
    monkeypatch.setattr(extract, "_SANDBOXES", {})
    with pytest.raises(SandboxStartError, match="exited with 3"):
        list(Extractor(str(tmp_path)).run(iter([make_doc(ARTICLE, doc_id="a"), make_doc(ARTICLE, doc_id="b")])))
    assert ledger_rows(tmp_path) == []


def test_a_child_over_the_size_limit_is_replaced_between_pages_and_the_texts_stay(tmp_path, monkeypatch):
    # a huge page leaves the child big (issue 18: 190 MB after the hostile corpus): it is replaced before the
    # next page, here after every page, and extraction is per page: the same texts
    pages = [make_doc(ARTICLE, doc_id="a"), make_doc(ARTICLE.replace("quiet", "busy"), doc_id="b")]
    monkeypatch.setattr(extract, "_SANDBOXES", {})
    kept = [d.text for d in Extractor(str(tmp_path / "kept")).run(iter(pages))]
    assert next(iter(extract._SANDBOXES.values())).recycled == 0
    monkeypatch.setattr(extract, "_SANDBOXES", {})
    monkeypatch.setattr(extract, "RECYCLE_BYTES", 0)
    pages = [make_doc(ARTICLE, doc_id="a"), make_doc(ARTICLE.replace("quiet", "busy"), doc_id="b")]
    assert [d.text for d in Extractor(str(tmp_path / "recycled")).run(iter(pages))] == kept
    assert next(iter(extract._SANDBOXES.values())).recycled == 2
    assert kept[0] != kept[1] and "busy" in kept[1]


def test_a_page_over_the_trim_size_is_extracted_and_the_child_goes_on(tmp_path):
    # the child gives the heap back after a page over TRIM_CHARS (stages/extractors/child.py), then serves on
    big = html_page("A long harbour", *["The harbour was quiet in the early morning, boat number %d rocked." % i
                                         for i in range(8_000)])
    assert len(big) > 500_000
    docs = list(Extractor(str(tmp_path)).run(iter([make_doc(big, doc_id="big"), make_doc(ARTICLE, doc_id="a")])))
    assert [d.id for d in docs] == ["big", "a"] and "boat number 7999" in docs[0].text


def test_a_page_of_too_many_elements_never_reaches_trafilatura(tmp_path):
    soup = "<html><body>" + "<b>x</b>" * 120 + "</body></html>"
    docs = list(Extractor(str(tmp_path), max_elements=100).run(iter([make_doc(soup, doc_id="soup"),
                                                                     make_doc(ARTICLE, doc_id="article")])))
    assert [d.id for d in docs] == ["article"]
    rows = ledger_rows(tmp_path)
    assert [(r["id"], r["reason"]) for r in rows] == [("soup", "too_many_elements")]
    assert "100" in rows[0]["detail"]
    assert extract.start_tags(soup, 100) == 101 and extract.start_tags(ARTICLE, 100) < 100
