"""The base phase's task files: what `TaskFileWriter` writes, `TaskFileReader` reads back as it was."""

from stages.writers.output import TaskFileReader, TaskFileWriter
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
