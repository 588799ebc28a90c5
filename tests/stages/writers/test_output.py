"""The base phase's task files: what `TaskFileWriter` writes, `TaskFileReader` reads back as it was."""

import orjson
from datatrove.data import Document, Media

from stages.writers.output import TaskFileReader, TaskFileWriter, task_row
from tests.fixtures import make_doc


def test_task_files_come_back_as_written_gzip_at_level_1(tmp_path):
    docs = [make_doc(f"text {i} ünïcode\nsecond line", doc_id=f"d{i}", language="en", language_score=0.5 + i / 7,
                     file_path="crawl.warc.gz")
            for i in range(3)]
    with TaskFileWriter(str(tmp_path)) as writer:
        for doc in docs:
            writer.write(doc, rank=2)
    raw = (tmp_path / "00002.jsonl.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw[8] == 4  # gzip's XFL byte: 4 = fastest (level 1), 2 = level 9
    back = list(TaskFileReader(str(tmp_path)).run(rank=2))
    assert [(d.id, d.text, d.metadata) for d in back] == [(d.id, d.text, d.metadata) for d in docs]
    assert list(TaskFileReader(str(tmp_path)).run(rank=0)) == []


def test_a_task_row_is_datatroves_row_without_the_copy(tmp_path):
    # orjson writes the document's own values as it wrote datatrove's deep copy of them (dataclasses.asdict)
    meta = {"language": "en", "quality_signals": {"a": 0.25, "b": 3}, "pii_spans": [["EMAIL", 1, 4, "x@y.z"]],
            "pair": (1, "two"), "empty": {}, "none": None, "nested": [{"k": [1.5, None, True]}], "size": 2**40}
    docs = [make_doc("text ünïcode", doc_id="d0", **meta), make_doc("", doc_id="d1"),
            Document(text="t", id="", metadata={})]
    writer = TaskFileWriter(str(tmp_path))
    for doc in docs:
        assert task_row(writer, doc) == writer._default_adapter(doc)
        assert orjson.dumps(task_row(writer, doc)) == orjson.dumps(writer._default_adapter(doc))
    media = Document(text="t", id="m", media=[Media(id="i", type=0, url="u", media_bytes=b"raw")])
    assert task_row(writer, media) == writer._default_adapter(media)
