"""The reuse store: what a base task computed up to extraction, kept so that a later run can start from it.

`ccpipe run --reuse RUN` re-decides a run with a new recipe without re-reading WARC files or re-running
trafilatura (pipeline/plan/reuse.py decides when it may). Each base task writes `work/reuse/{rank:05d}.parquet`
(zstd), one row per record read, in reading order:

    kind       "doc" for a record that came out of extraction; for a record dropped before (reader, URL blocklist,
               language pre-check, extraction), the ledger file its row went to: "reader/", "langid/precheck-", ...
    id, offset the record (WARC-Record-ID, byte offset)
    text       trafilatura's text, before PII scrubbing and before C4's line removal (docs only)
    metadata   the document's metadata after extraction, as JSON (url, date, dump, file_path, blocklist_allowed, ...)
    language, language_score   lid.176's best label on that text and its score (docs only)
    row        the ledger row written for a dropped record, as the JSON line it was (drops only)

and, in the file's key-value metadata, the reader's report of the task (`work/files/{rank}.json`). Replaying
it (`ReuseReader`) writes those ledger rows and that report again and yields the documents as the extractor
did, so every later stage sees what a from-scratch run shows it. The text is the pre-PII text: the PII
stage of the new run scrubs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from stages.filters.langid import REUSED_LANGUAGE
from stages.utils.io import atomic_path, write_text_atomic
from stages.writers.ledger import DropLedger

DOC = "doc"
REPORT_KEY = b"ccpipe.files_report"
STORE_SCHEMA = pa.schema([
    ("kind", pa.string()),
    ("id", pa.string()),
    ("offset", pa.int64()),
    ("text", pa.string()),
    ("metadata", pa.string()),
    ("language", pa.string()),
    ("language_score", pa.float64()),
    ("row", pa.string()),
])


def store_path(folder: str, rank: int) -> str:
    return os.path.join(folder, f"{rank:05d}.parquet")


def drop_prefixes(steps: list[PipelineStep]) -> list[str]:
    """The ledger files (`{prefix}{rank}.jsonl`) the steps before the store drop records into: the reader's and
    the extractor's own (`{stage}/`), and each filter's exclusion writer's."""
    prefixes = []
    for step in steps:
        writer = getattr(step, "exclusion_writer", None)
        if isinstance(writer, DropLedger):
            prefixes.append(writer.prefix)
        elif hasattr(step, "ledger_folder"):  # WarcReader, Extractor: they open their DropLedger per task
            prefixes.append(f"{step.stage}/")
    return prefixes


class ReuseStore(PipelineStep):
    """Right after extraction in the base phase: writes the task's reuse store, passing documents through.

    Rows go to the file a row group at a time, each of ~`group_chars` characters of text, so that a task
    holds one group, not all its texts (issue 18: a 1 GB WARC is ~70 MB of text, a hostile one 20 pages of
    1 MB, held until the task ended). 1 M characters: writing a group of the hostile corpus's texts peaks at
    +52 MB RSS (zstd 15, then, on megabyte values), 8 M at +107 MB; bench's tasks are under 1 M each, one group as
    before, and bench's texts as one task take 4% more bytes in 1 M groups than in one.
    A document's language is read when its group is written, after this step has been asked for a later
    document: language ID, the next step, takes one document at a time and has stamped it by then. The file
    is written under a temporary name and renamed when the task ends: a task that fails leaves no store,
    and is recomputed by a later `--reuse`."""

    name = "🗄 Reuse store"
    type = "💽 - WRITER"
    stage = "write"

    def __init__(self, folder: str, ledger_folder: str, report_folder: str, prefixes: list[str],
                 group_chars: int = 1_000_000):
        super().__init__()
        self.folder, self.ledger_folder, self.report_folder = folder, ledger_folder, report_folder
        self.prefixes = list(prefixes)
        self.group_chars = group_chars

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        docs: list[tuple[dict, dict]] = []  # (row, the document's metadata): the group being filled
        chars = stored = 0
        with atomic_path(store_path(self.folder, rank)) as tmp, _store_writer(tmp) as writer:
            for doc in data:
                if chars >= self.group_chars:  # language ID has seen every document of the group now
                    with self.track_time():
                        stored += _write_group(writer, docs)
                    docs, chars = [], 0
                meta = {k: v for k, v in doc.metadata.items() if k != REUSED_LANGUAGE}
                row = {"kind": DOC, "id": doc.id, "offset": meta.get("offset"), "text": doc.text,
                       "metadata": json.dumps(meta, ensure_ascii=False)}
                docs.append((row, doc.metadata))
                chars += len(doc.text) + len(row["metadata"])
                yield doc
            with self.track_time():
                drops = []
                for prefix in self.prefixes:  # their steps have ended: the files are closed and whole
                    path = os.path.join(self.ledger_folder, f"{prefix}{rank:05d}.jsonl")
                    if os.path.exists(path):
                        with open(path, encoding="utf-8") as f:
                            drops += [{"kind": prefix, "row": line.rstrip("\n")} for line in f if line.strip()]
                stored += _write_group(writer, docs, drops)
                with open(os.path.join(self.report_folder, f"{rank:05d}.json"), encoding="utf-8") as f:
                    writer.add_key_value_metadata({REPORT_KEY: f.read()})
        self.stat_update("stored", value=stored)


@contextlib.contextmanager
def _store_writer(path) -> Iterator[pq.ParquetWriter]:
    # zstd level 12: bench's eight stores 904,900 B in 0.105 s of CPU (level 9: 909,608 B in 0.061 s, which put
    # the whole store, memos included, at 1.504x the parquet output, over its 1.5x budget; level 13: 895,078 B in
    # 0.20 s; 15: 891,493 B in 0.24 s); without min/max statistics (two whole texts a file, never read)
    writer = pq.ParquetWriter(str(path), STORE_SCHEMA, compression="zstd", compression_level=12,
                              use_dictionary=["kind", "language"], write_statistics=False)
    try:
        yield writer
    finally:
        writer.close()


def _write_group(writer: pq.ParquetWriter, docs: list[tuple[dict, dict]], drops: list[dict] = ()) -> int:
    """One row group: the documents with their language now, then `drops` (the task's last group)."""
    rows = [row | {"language": meta.get("language"), "language_score": meta.get("language_score")}
            for row, meta in docs]
    rows += drops
    if rows:
        writer.write_table(pa.Table.from_pylist(rows, schema=STORE_SCHEMA), row_group_size=len(rows))
    return len(rows)


def read_store(folder: str, rank: int) -> pa.Table | None:
    """The store of task `rank` under `folder`, with the reader's report in its schema's metadata, or None when
    it is missing or unreadable (a partly deleted work/): the task is then recomputed."""
    path = store_path(folder, rank)
    try:
        with pq.ParquetFile(path) as store:
            table = store.read()
            report = (store.metadata.metadata or {}).get(REPORT_KEY)  # the file's, added once its rows were written
    except (OSError, pa.ArrowInvalid):
        return None
    return None if report is None else table.replace_schema_metadata({REPORT_KEY: report})


def extraction_cache(folder: str, rank: int) -> dict[tuple, tuple]:
    """{(id, offset): ("doc", text, language, score) or ("drop", reason)} from a store: trafilatura's results
    for a run whose reader and extraction are unchanged but whose blocklist or pre-check changed."""
    table = read_store(folder, rank)
    cache: dict[tuple, tuple] = {}
    for row in table.to_pylist() if table is not None else []:
        if row["kind"] == DOC:
            cache[(row["id"], row["offset"])] = (DOC, row["text"], row["language"], row["language_score"])
        elif row["kind"] == "extract/":
            dropped = json.loads(row["row"])
            cache[(dropped["id"], dropped["offset"])] = ("drop", dropped["reason"])
    return cache


class ReuseReader(PipelineStep):
    """In place of reader -> blocklist -> pre-check -> extraction: replays a source run's store for this task.

    The ledger rows of the records dropped up to extraction and the reader's report are written as the
    source run wrote them, and the documents yielded with their language scores (`scores`: same model), which
    language ID then uses instead of predicting. A task whose store is missing runs `steps`, the phase's
    own steps up to and including the store writer. `steps` is also what the funnel and the resolved config
    read (`inner_steps`)."""

    name = "♻ Reuse"
    type = "📖 - READER"
    stage = "write"

    def __init__(self, source: str, folder: str, ledger_folder: str, report_folder: str, steps: list[PipelineStep],
                 scores: bool = True):
        super().__init__()
        self.source, self.folder = source, folder
        self.ledger_folder, self.report_folder = ledger_folder, report_folder
        self.inner_steps = list(steps)
        self.scores = scores

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        table = read_store(self.source, rank)
        if table is None:  # recomputed from the WARC files, writing this run's own store
            self.stat_update("tasks_recomputed")
            for step in self.inner_steps:
                data = step(data, rank, world_size)
            yield from data
            return
        self.stat_update("tasks_reused")
        with self.track_time():
            if os.path.abspath(self.source) != os.path.abspath(self.folder):  # this run's store: the same rows
                with atomic_path(store_path(self.folder, rank)) as tmp:
                    shutil.copyfile(store_path(self.source, rank), tmp)
            write_text_atomic(os.path.join(self.report_folder, f"{rank:05d}.json"),
                              table.schema.metadata[REPORT_KEY].decode("utf-8"))
            rows = table.to_pylist()
            drops: dict[str, list[str]] = {}
            for row in rows:
                if row["kind"] != DOC:
                    drops.setdefault(row["kind"], []).append(row["row"])
            for prefix, lines in drops.items():
                write_text_atomic(os.path.join(self.ledger_folder, f"{prefix}{rank:05d}.jsonl"),
                                  "".join(line + "\n" for line in lines))
                self.stat_update("dropped_replayed", value=len(lines))
        for row in rows:
            if row["kind"] != DOC:
                continue
            meta = json.loads(row["metadata"])
            if self.scores and row["language"] is not None:
                meta[REUSED_LANGUAGE] = (row["language"], row["language_score"])
            self.stat_update("documents")
            yield Document(text=row["text"], id=row["id"], metadata=meta)
