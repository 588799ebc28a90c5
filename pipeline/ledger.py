"""Where dropped records go: one row per drop, so that every record read is accounted for.

Each stage that removes documents hands them to a `DropLedger`, a datatrove `JsonlWriter` that keeps only
what an audit needs. Files land in `DIR/ledger/{stage}/[{part}-]{rank:05d}.jsonl`; a row looks like

    {"id": "<urn:uuid:...>", "url": "http://example.com/", "warc": "bench-00001.warc.gz", "offset": 12345,
     "stage": "blocklist", "reason": "ut1_domain", "detail": "ut1-adult:example.com"}

`summary.json` counts these rows by (stage, reason); the conservation law
`records_total == kept + sum(dropped)` is checked against them at the end of every run.
"""

from __future__ import annotations

from datatrove.data import Document
from datatrove.io import DataFolderLike
from datatrove.pipeline.writers.jsonl import JsonlWriter

# stage names, in pipeline order: summary tables and the ledger use exactly these
STAGES = ("reader", "blocklist", "extract", "langid", "quality", "dedup", "pii", "tokenize")


def drop_row(writer: "DropLedger", doc: Document) -> dict:
    meta = doc.metadata
    return {
        "id": doc.id,
        "url": meta.get("url"),
        "warc": meta.get("file_path"),
        "offset": meta.get("offset"),
        "stage": writer.stage,
        "reason": meta.get("filter_reason") or writer.reason,
        "detail": meta.get("drop_detail"),
    }


class DropLedger(JsonlWriter):
    """Records the documents a stage drops under `{stage}/{rank}.jsonl`.

    Pass it as the `exclusion_writer` of a datatrove filter (the filter stamps `filter_reason` on the
    document), or call `write(doc, rank)` yourself after setting `doc.metadata["filter_reason"]`.
    `reason` is the fallback for steps that drop for one reason only (e.g. dedup).
    """

    name = "📒 Drop ledger"

    def __init__(self, output_folder: DataFolderLike, stage: str, reason: str | None = None, part: str = ""):
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}: expected one of {', '.join(STAGES)}")
        # `part` separates the files of several steps of one stage (the four quality filters)
        filename = f"{stage}/{part + '-' if part else ''}${{rank}}.jsonl"
        # uncompressed: gzip stamps the time and file name into its header, and outputs must be byte-identical
        super().__init__(output_folder, output_filename=filename, adapter=drop_row, compression=None)
        self.stage = stage
        self.reason = reason


def drop(ledger: DropLedger, doc: Document, rank: int, reason: str, detail: str | None = None) -> None:
    """Stamp `reason` (and an optional `detail`, e.g. the rule that matched) on `doc` and record it."""
    doc.metadata["filter_reason"] = reason
    if detail is not None:
        doc.metadata["drop_detail"] = detail
    ledger.write(doc, rank)
