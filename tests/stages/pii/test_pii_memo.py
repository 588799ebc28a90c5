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
