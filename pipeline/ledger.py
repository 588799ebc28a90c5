"""The decision ledger: one row per input record saying what became of it and why.

While a run works, each stage that removes documents hands them to a `DropLedger` (a datatrove
`JsonlWriter`), and the last step of the final phase, `KeptLedger`, writes a row for every document kept.
Both write the same row (`ledger_row`) under `work/decisions/{stage}/...jsonl`. When the run finishes,
`consolidate` turns them into parquet, one file per task, `DIR/ledger/part-{rank:05d}.parquet`:

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
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.io import DataFolderLike
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.jsonl import JsonlWriter

# stage names, in pipeline order: summary tables and the ledger use exactly these
STAGES = ("reader", "blocklist", "extract", "langid", "quality", "dedup", "pii", "tokenize")
EXCERPT_CHARS = 1000  # enough for a reviewer to judge a page; ~0.3 KB a row compressed
# before extraction `doc.text` is the raw payload: no excerpt
NO_TEXT_STAGES = ("reader", "blocklist")
PRECHECK_REASON = "language_precheck"  # stages/langid.py LanguagePrecheck

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
        "url": meta.get("url"),
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


class DropLedger(JsonlWriter):
    """Records the documents a stage drops under `{stage}/[{part}-]{rank}.jsonl`.

    Pass it as the `exclusion_writer` of a datatrove filter (the filter stamps `filter_reason` on the
    document), or call `drop(ledger, doc, rank, reason)`. `reason` is the fallback for steps that drop for
    one reason only (e.g. dedup).
    """

    name = "📒 Drop ledger"

    def __init__(self, output_folder: DataFolderLike, stage: str, reason: str | None = None, part: str = ""):
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}: expected one of {', '.join(STAGES)}")
        # `part` separates the files of several steps of one stage (the four quality filters)
        filename = f"{stage}/{part + '-' if part else ''}${{rank}}.jsonl"
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

    def __init__(self, output_folder: DataFolderLike):
        super().__init__()
        self.output_folder = output_folder

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with JsonlWriter(self.output_folder, output_filename="kept/${rank}.jsonl", compression=None,
                         adapter=lambda _w, doc: ledger_row(doc, None)) as writer:
            for doc in data:
                with self.track_time():
                    writer.write(doc, rank)
                yield doc


# ---- consolidation --------------------------------------------------------------------------------------

_RANK = re.compile(r"(?:^|-)(\d+)\.jsonl$")  # `00042.jsonl`, `precheck-00042.jsonl`, `100000.jsonl`: any rank


def _decision_files(decisions: Path) -> dict[int, list[Path]]:
    by_rank: dict[int, list[Path]] = defaultdict(list)
    for path in sorted(decisions.glob("*/*.jsonl")):
        if m := _RANK.search(path.name):
            by_rank[int(m.group(1))].append(path)
    return by_rank


def _read_rows(paths: list[Path]) -> list[dict]:
    import orjson

    rows = []
    for path in paths:
        with open(path, "rb") as f:
            rows += [orjson.loads(line) for line in f if line.strip()]
    return rows


def _representatives(decisions: Path) -> dict[int, tuple[str, str]]:
    """MinHash cluster -> (id, url) of the document that survived deduplication."""
    reps = {}
    for row in _read_rows(sorted((decisions / "kept").glob("*.jsonl"))):
        if row.get("dup_cluster") is not None:
            reps[row["dup_cluster"]] = (row["id"], row["url"])
    return reps


def _sort_key(row: dict):
    return (row["warc"] or "", row["offset"] if row["offset"] is not None else -1, row["id"] or "")


def consolidate(decisions: Path, ledger: Path) -> list[Path]:
    """`work/decisions/**.jsonl` -> `ledger/part-{rank}.parquet`, sorted, with duplicates resolved to the
    document kept in their place. Rebuilt whole on every call: a rerun gives the same bytes."""
    reps = _representatives(decisions)
    ledger.mkdir(parents=True, exist_ok=True)
    for old in ledger.glob("part-*.parquet"):
        old.unlink()
    written = []
    for rank, paths in sorted(_decision_files(decisions).items()):
        rows = _read_rows(paths)
        for row in rows:
            if row["stage"] == "dedup" and row.get("dup_cluster") in reps:
                row["duplicate_of"], row["duplicate_of_url"] = reps[row["dup_cluster"]]
            else:
                row.setdefault("duplicate_of", None)
                row.setdefault("duplicate_of_url", None)
        rows.sort(key=_sort_key)
        path = ledger / f"part-{rank:05d}.parquet"
        write_ledger_part(pa.Table.from_pylist(rows, schema=LEDGER_SCHEMA), path)
        written.append(path)
    return written


def write_ledger_part(table: pa.Table, path: Path) -> None:
    """One ledger file, atomically; fixed settings, so the same rows give the same bytes."""
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd", row_group_size=100_000)
    os.replace(tmp, path)
