"""The PII scrubber's memo: findings replayed on a text scrubbed before give what analyzing gives."""

from stages.pii.scrub import PIIScrubber
from stages.utils.memo import read_memo_file, write_memo_file
from tests.fixtures import make_doc

TEXTS = ["Mail jane.doe@uni-bonn.de or call +49 30 2019433 today.", "Nothing to see here.",
         "Server 8.8.8.8 and card 4111 1111 1111 1111, IBAN DE89370400440532013000."]


def _run(**settings) -> list:
    docs = [make_doc(text, doc_id=f"doc-{i}") for i, text in enumerate(TEXTS)]
    return [(doc.text, doc.metadata) for doc in PIIScrubber(**settings).run(iter(docs), rank=0)]


def test_replayed_findings_equal_analyzed_ones(tmp_path):
    measured = _run(memo_folder=str(tmp_path / "a"))
    assert _run(memo_source=str(tmp_path / "a")) == measured == _run()
    assert any(meta["pii"] for _, meta in measured)


def test_a_replayed_finding_is_not_looked_for_again(tmp_path):
    _run(memo_folder=str(tmp_path / "a"))
    memo, _ = read_memo_file(str(tmp_path / "a"), 0)
    assert len(memo) == len(TEXTS)
    for findings in memo.values():  # what the replay shows comes from the memo
        for f in findings:
            f[3] = "<GONE>"
    write_memo_file(str(tmp_path / "b"), 0, memo)
    texts = [text for text, _ in _run(memo_source=str(tmp_path / "b"))]
    assert texts[0] == "Mail <GONE> or call <GONE> today."


URLS = ["https://example.com/contact?email=jane.roe@example.org&tel=+1-212-555-0123", "https://example.com/2024/10/post",
        "https://example.com/page"]


def _urls(**settings) -> list:
    docs = [make_doc("Nothing to see here.", url=url, doc_id=f"doc-{i}") for i, url in enumerate(URLS)]
    return [doc.metadata for doc in PIIScrubber(**settings).run(iter(docs), rank=0)]


def test_urls_are_replayed_too(tmp_path):
    """A URL scrubbed before is not analyzed again: a reuse run that keeps no new text builds no presidio engine."""
    measured = _urls(memo_folder=str(tmp_path / "a"))
    assert measured[0]["url"] != URLS[0] == measured[0]["raw_url"] and "raw_url" not in measured[1]
    memo, _ = read_memo_file(str(tmp_path / "a"), 0)
    # the one text, and the two URLs with a digit or an `@` (the others never reach presidio)
    assert sorted(v for v in memo.values() if v and isinstance(v[0], int)) == [[0], [2, measured[0]["url"]]]
    scrubber = PIIScrubber(memo_source=str(tmp_path / "a"))
    assert [doc.metadata for doc in scrubber.run(iter(make_doc("Nothing to see here.", url=url, doc_id=f"doc-{i}")
                                               for i, url in enumerate(URLS)), rank=0)] == measured == _urls()
    assert "analyzer" not in scrubber.__dict__  # replayed: presidio's engine never built
