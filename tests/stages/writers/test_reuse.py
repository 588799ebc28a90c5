"""The reuse store is written a row group at a time while its task runs, and replays what it was given."""

import json

import pyarrow.parquet as pq
import pytest

from stages.filters.langid import LanguageID
from stages.writers.reuse import ReuseReader, ReuseStore, store_path
from tests.fixtures import make_doc

EN = "The harbour was quiet in the early morning, and the fishing boats rocked gently against the pier. "
DE = "Der Hafen war am frühen Morgen still, und die Fischerboote schaukelten sanft gegen den Steg. "


def folders(tmp_path):
    for name in ("reuse", "ledger/reader", "report"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "ledger/reader/00000.jsonl").write_text('{"id": "gone", "reason": "not_html"}\n')
    (tmp_path / "report/00000.json").write_text('{"files": 1}')
    return str(tmp_path / "reuse"), str(tmp_path / "ledger"), str(tmp_path / "report")


def pages():
    return [make_doc((EN if i % 2 else DE) * 10, doc_id=f"d{i}", offset=i) for i in range(5)]


def test_the_store_is_written_a_group_at_a_time_with_each_language(tmp_path):
    # issue 18: the store held every text of its task until the task ended (~70 MB for a 1 GB WARC)
    reuse, ledger, report = folders(tmp_path)
    store = ReuseStore(reuse, ledger, report, ["reader/"], group_chars=2_000)  # ~2 pages a group
    out = list(LanguageID(languages=("en",)).run(store.run(iter(pages()))))
    assert [d.id for d in out] == ["d1", "d3"]
    assert pq.ParquetFile(store_path(reuse, 0)).metadata.num_row_groups == 3
    rows = pq.read_table(store_path(reuse, 0)).to_pylist()
    assert [(r["kind"], r["id"], r["language"]) for r in rows] == [
        ("doc", "d0", "de"), ("doc", "d1", "en"), ("doc", "d2", "de"), ("doc", "d3", "en"), ("doc", "d4", "de"),
        ("reader/", None, None)]
    replay = ReuseReader(reuse, str(tmp_path / "again"), str(tmp_path / "ledger2"), str(tmp_path / "report2"), [])
    docs = list(replay.run())
    assert [(d.id, d.text, d.metadata["offset"]) for d in docs] == [(d.id, d.text, i) for i, d in enumerate(pages())]
    assert (tmp_path / "ledger2/reader/00000.jsonl").read_text() == '{"id": "gone", "reason": "not_html"}\n'
    assert json.loads((tmp_path / "report2/00000.json").read_text()) == {"files": 1}


def test_a_task_that_fails_leaves_no_store(tmp_path):
    reuse, ledger, report = folders(tmp_path)

    def failing():
        yield from pages()[:3]
        raise OSError("the WARC file went away")

    with pytest.raises(OSError, match="went away"):
        list(ReuseStore(reuse, ledger, report, ["reader/"], group_chars=2_000).run(failing()))
    assert list((tmp_path / "reuse").iterdir()) == []
