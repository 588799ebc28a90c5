"""The decision ledger: one row per input record saying what became of it and why.

While a run works, each stage that removes documents hands them to a `DropLedger` (a datatrove
`JsonlWriter`), and the last step of the final phase, `KeptLedger`, writes a row for every document kept.
Both write the same row (`ledger_row`) under `work/decisions/{stage}/...jsonl`. When the run finishes,
`pipeline.finalize.consolidate`
turns them into parquet, one file per task, `DIR/ledger/part-{rank:05d}.parquet`:

    id, url, warc, offset         the record (WARC-Record-ID, target URI, file, byte offset of the record)
    decision, stage, reason       "kept", or "dropped" with the stage and reason of the drop
    detail                        what the decision rested on: "ut1-adult-v0.3.0:domain=example.com",
                                  "dup_line_frac 0.42 > 0.30", "score 0.41 < 0.65", ...
    text_length, language, language_score, token_count
    quality, quality_thresholds   the quality filters' measured values (map name -> value), and what would
                                  have dropped the document for each (map name -> "> 0.3")
    dup_cluster, duplicate_of, duplicate_of_url   MinHash cluster, and the document kept for it
    blocklist_list, blocklist_rule, blocklist_allowed
    pii (map type -> count), pii_spans (JSON [[type, start, end, value], ...], offsets in the extracted text)
    excerpt                       the first 1,000 characters of the text at the point of the decision

The ledger holds the original values of the PII that was scrubbed from the output, for audits: keep it
with the run, do not publish it. Rows are sorted by (warc, offset, id), so the ledger of a run is
byte-identical whatever the number of workers. `summary.json` is counted from these files.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter

import pyarrow as pa
from datatrove.data import Document, DocumentsPipeline
from datatrove.io import DataFolderLike, get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.jsonl import JsonlWriter

from stages.utils.io import make_private, write_text_atomic

# steps that keep the books rather than decide (`stage` of KeptLedger, TaskTally and the writers): not in the funnel
BOOKKEEPING = ("ledger", "write")
EXCERPT_CHARS = 1000  # enough for a reviewer to judge a page; ~0.3 KB a row compressed
# before extraction `doc.text` is the raw payload: no excerpt
NO_TEXT_STAGES = ("reader", "blocklist")
PRECHECK_REASON = "language_precheck"  # stages/filters/langid.py LanguagePrecheck

LEDGER_SCHEMA = pa.schema([
    ("id", pa.string()),
    ("url", pa.string()),
    ("warc", pa.string()),
    ("offset", pa.int64()),
    ("decision", pa.string()),
    ("stage", pa.string()),
    ("reason", pa.string()),
    ("detail", pa.string()),
    ("text_length", pa.int64()),
    ("language", pa.string()),
    ("language_score", pa.float64()),
    ("quality", pa.map_(pa.string(), pa.float64())),
    ("quality_thresholds", pa.map_(pa.string(), pa.string())),
    ("token_count", pa.int64()),
    ("dup_cluster", pa.int64()),
    ("duplicate_of", pa.string()),
    ("duplicate_of_url", pa.string()),
    ("blocklist_list", pa.string()),
    ("blocklist_rule", pa.string()),
    ("blocklist_allowed", pa.string()),
    ("pii", pa.map_(pa.string(), pa.int64())),
    ("pii_spans", pa.string()),
    ("excerpt", pa.string()),
])

_LIST_RULE = re.compile(r"^([^:]+):(.*)$", re.S)


def ledger_row(doc: Document, stage: str | None, reason: str | None = None) -> dict:
    """The row for `doc`, dropped at `stage` for `reason`, or kept (stage None)."""
    meta = doc.metadata
    reason = (meta.get("filter_reason") or reason) if stage else None
    # the language pre-check drops a page before trafilatura: its text is still the HTML
    extracted = stage not in NO_TEXT_STAGES and reason != PRECHECK_REASON
    # a kept row's detail says where its text came from when not from our extraction (`text_source=wet`)
    detail = meta.get("drop_detail") if stage else (f"text_source={meta['text_source']}" if meta.get("text_source") else None)
    blocklist_list = blocklist_rule = None
    if stage == "blocklist" and detail and (m := _LIST_RULE.match(detail)):
        blocklist_list, blocklist_rule = m.groups()
    cluster = meta.get("minhash_cluster_id")
    return {
        "id": doc.id,
        "url": meta.get("raw_url", meta.get("url")),  # as read: the PII stage scrubs `url` for the parquet
        "warc": meta.get("file_path"),
        "offset": meta.get("offset"),
        "decision": "dropped" if stage else "kept",
        "stage": stage,
        "reason": reason,
        "detail": detail,
        "text_length": len(doc.text) if extracted and doc.text is not None else None,
        "language": meta.get("language"),
        "language_score": meta.get("language_score"),
        "quality": meta.get("quality_signals") or None,
        "quality_thresholds": meta.get("quality_thresholds") or None,
        "token_count": meta.get("token_count"),
        "dup_cluster": cluster if cluster is not None and cluster >= 0 else None,
        "blocklist_list": blocklist_list,
        "blocklist_rule": blocklist_rule,
        "blocklist_allowed": meta.get("blocklist_allowed"),
        "pii": meta.get("pii") or None,
        "pii_spans": json.dumps(meta["pii_spans"], ensure_ascii=False) if meta.get("pii_spans") else None,
        "excerpt": doc.text[:EXCERPT_CHARS] if extracted and doc.text else None,
    }


class PrivateJsonl(JsonlWriter):
    """A JsonlWriter whose files (ledger rows: raw URLs, PII values, unscrubbed excerpts) end 0600 in 0700
    folders on a local filesystem; a folder is made private before its first file is opened."""

    def write(self, document: Document, rank: int = 0, **kwargs):
        if not self.output_mg.get_open_files():
            self._private([], rank)
        super().write(document, rank, **kwargs)

    def close(self):
        names = list(self.output_mg.get_open_files())
        super().close()
        self._private(names)

    def _private(self, names: list[str], rank: int | None = None) -> None:
        folder = self.output_folder
        if "file" not in (folder.fs.protocol if isinstance(folder.fs.protocol, tuple) else (folder.fs.protocol,)):
            return
        if rank is not None:  # before the first file: its folder and the folders above it up to ours
            name = self.output_filename.substitute(rank=str(rank).zfill(5))
            parts = os.path.dirname(name).split("/") if os.path.dirname(name) else []
            make_private([], [folder.path] + [os.path.join(folder.path, *parts[:i + 1]) for i in range(len(parts))])
            return
        make_private([os.path.join(folder.path, n) for n in names], [])


class DropLedger(PrivateJsonl):
    """Records the documents a stage drops under `{stage}/[{part}-]{rank}.jsonl`.

    Pass it as the `exclusion_writer` of a datatrove filter (the filter stamps `filter_reason` on the
    document), or call `drop(ledger, doc, rank, reason)`. `reason` is the fallback for steps that drop for
    one reason only (e.g. dedup).
    """

    name = "📒 Drop ledger"

    def __init__(self, output_folder: DataFolderLike, stage: str, reason: str | None = None, part: str = ""):
        # `part` separates the files of several steps of one stage (the four quality filters)
        self.prefix = f"{stage}/{part + '-' if part else ''}"  # the reuse store names a task's file by it
        filename = f"{self.prefix}${{rank}}.jsonl"
        # uncompressed: gzip stamps the time and file name into its header, and outputs must be byte-identical
        super().__init__(output_folder, output_filename=filename, adapter=self._row, compression=None)
        self.stage = stage
        self.reason = reason

    def _row(self, _writer, doc: Document) -> dict:
        return ledger_row(doc, self.stage, self.reason)


def drop(ledger: DropLedger, doc: Document, rank: int, reason: str, detail: str | None = None) -> None:
    """Stamp `reason` (and an optional `detail`, e.g. the rule that matched) on `doc` and record it."""
    doc.metadata["filter_reason"] = reason
    if detail is not None:
        doc.metadata["drop_detail"] = detail
    ledger.write(doc, rank)


class KeptLedger(PipelineStep):
    """Last-but-one step of the final phase: a ledger row for every document kept, under `kept/{rank}.jsonl`."""

    name = "📒 Kept ledger"
    type = "📒 - LEDGER"
    stage = "ledger"

    def __init__(self, output_folder: DataFolderLike):
        super().__init__()
        self.output_folder = output_folder

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with PrivateJsonl(self.output_folder, output_filename="kept/${rank}.jsonl", compression=None,
                         adapter=lambda _w, doc: ledger_row(doc, None)) as writer:
            for doc in data:
                with self.track_time():
                    writer.write(doc, rank)
                yield doc


class TaskTally(PipelineStep):
    """Last step of the final phase: counts what this task kept, by language, and the PII it replaced."""

    name = "🧮 Tally"
    type = "🧮 - STATS"
    stage = "ledger"

    def __init__(self, output_folder: str):
        super().__init__()
        self.output_folder = output_folder

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        docs, tokens, pii = Counter(), Counter(), Counter()
        for doc in data:
            lang = doc.metadata.get("language")
            docs[lang] += 1
            tokens[lang] += doc.metadata.get("token_count", 0) + 1  # + the <|endoftext|> before each document
            pii.update(doc.metadata.get("pii", {}))
            yield doc
        # conservation checks the summary against it: a task killed while writing must leave no half of it
        write_text_atomic(get_datafolder(self.output_folder).resolve_paths(f"{rank:05d}.json"),
                          json.dumps({"kept": dict(docs), "tokens": dict(tokens), "pii": dict(pii)}, sort_keys=True))
