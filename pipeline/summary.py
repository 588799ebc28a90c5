"""What a run produced, and the numbers that must add up.

`summary.json` is counted from the decision ledger (`ledger/part-*.parquet`, one row per record), and
checked against two independent per-task records:
- the reader's per-file reports (`work/files/{rank}.json`): response records read, per-file errors;
- the tallies of the final phase (`work/kept/{rank}.json`): documents kept, tokens, PII found.

The conservation law `records read == ledger rows == kept + sum(dropped)`, with kept and tokens equal to
what the final phase wrote and to the tokens in the `.bin` shards, is checked on every run.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
from datatrove.data import DocumentsPipeline
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep

from pipeline.ledger import STAGES

# FineWeb's parquet schema, column for column
FINEWEB_SCHEMA = pa.schema([
    ("text", pa.string()),
    ("id", pa.string()),
    ("dump", pa.string()),
    ("url", pa.string()),
    ("date", pa.string()),
    ("file_path", pa.string()),
    ("language", pa.string()),
    ("language_score", pa.float64()),
    ("token_count", pa.int64()),
])


def fineweb_row(writer, doc) -> dict:
    meta = doc.metadata
    return {
        "text": doc.text,
        "id": doc.id,
        "dump": meta.get("dump"),
        "url": meta.get("url"),
        "date": meta.get("date"),
        "file_path": meta.get("file_path"),
        "language": meta.get("language"),
        "language_score": float(meta["language_score"]),
        "token_count": int(meta["token_count"]),
    }


def write_json_atomic(path: str | Path, data) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


class TaskTally(PipelineStep):
    """Last step of the final phase: counts what this task kept, by language, and the PII it replaced."""

    name = "🧮 Tally"
    type = "🧮 - STATS"

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
        folder = get_datafolder(self.output_folder)
        with folder.open(f"{rank:05d}.json", "wt") as f:
            json.dump({"kept": dict(docs), "tokens": dict(tokens), "pii": dict(pii)}, f, sort_keys=True)


def _read_json_files(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def ledger_counts(ledger: Path) -> dict:
    """The funnel, counted from the ledger's rows: what `summary.json` and `ccpipe audit summary` report.

    `tokens` counts, like the `.bin` shards, one `<|endoftext|>` before each kept document.
    """
    import duckdb

    dropped: dict[str, Counter] = defaultdict(Counter)
    kept_by_lang, tokens_by_lang, pii = Counter(), Counter(), Counter()
    # after language ID, per kept language: {lang: {stage: {reason: n}}} (each language has its own filters)
    by_lang: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    if any(Path(ledger).glob("part-*.parquet")):
        # aggregated in DuckDB: a dump's ledger has billions of rows, far too many to bring into Python
        con = duckdb.connect()
        con.execute(f"CREATE VIEW ledger AS SELECT * FROM read_parquet('{Path(ledger) / 'part-*.parquet'}')")
        for stage, reason, n in con.execute(
                "SELECT stage, reason, count(*) FROM ledger WHERE decision = 'dropped' GROUP BY ALL").fetchall():
            dropped[stage][reason] = n
        for lang, n, tokens in con.execute("SELECT language, count(*), sum(coalesce(token_count, 0) + 1) "
                                           "FROM ledger WHERE decision = 'kept' GROUP BY ALL").fetchall():
            kept_by_lang[lang], tokens_by_lang[lang] = n, int(tokens)
        for lang, stage, reason, n in con.execute(
                "SELECT language, stage, reason, count(*) FROM ledger WHERE decision = 'dropped' AND stage IN "
                "('quality', 'dedup', 'pii', 'tokenize') GROUP BY ALL").fetchall():
            by_lang[lang][stage][reason] = n
        for kind, n in con.execute("SELECT e.key, sum(e.value) FROM (SELECT unnest(map_entries(pii)) AS e "
                                   "FROM ledger WHERE decision = 'kept' AND pii IS NOT NULL) GROUP BY ALL").fetchall():
            pii[kind] = int(n)
    records = sum(kept_by_lang.values()) + sum(sum(r.values()) for r in dropped.values())
    order = {s: i for i, s in enumerate(STAGES)}
    dropped_sorted = {stage: dict(sorted(dropped[stage].items())) for stage in sorted(dropped, key=order.get)}
    funnel, remaining = [], records
    for stage in STAGES:
        n = sum(dropped[stage].values())
        funnel.append({"stage": stage, "in": remaining, "dropped": n, "out": remaining - n})
        remaining -= n
    return {
        "records_total": records,
        "kept": sum(kept_by_lang.values()),
        "dropped": dropped_sorted,
        "dropped_total": sum(sum(r.values()) for r in dropped.values()),
        "kept_by_language": dict(sorted(kept_by_lang.items())),
        "tokens": sum(tokens_by_lang.values()),
        "tokens_by_language": dict(sorted(tokens_by_lang.items())),
        "dropped_by_language": {lang: {st: dict(sorted(by_lang[lang][st].items()))
                                       for st in sorted(by_lang[lang], key=order.get)} for lang in sorted(by_lang)},
        "pii": dict(sorted(pii.items())),
        "funnel": funnel,
    }


def build_summary(root: Path, shards: list[dict], elapsed: float, stage_seconds: dict[str, float]) -> dict:
    """The ledger's counts, checked against what the reader read and what the final phase wrote."""
    from pipeline.build import RunLayout

    layout = RunLayout(root)
    files = [f for report in _read_json_files(layout.files_report) for f in report["files"]]
    counts = ledger_counts(layout.ledger)
    tallies = _read_json_files(layout.tally)
    tally_kept = sum(n for t in tallies for n in t["kept"].values())
    tally_tokens = sum(n for t in tallies for n in t["tokens"].values())
    records_read = sum(f["responses"] for f in files)
    shard_tokens = sum(s["tokens"] for s in shards)
    return {
        **counts,
        # every record read has exactly one ledger row; the rows' kept/tokens are what was written
        "conservation_ok": (records_read == counts["records_total"] == counts["kept"] + counts["dropped_total"]
                            and tally_kept == counts["kept"] and tally_tokens == counts["tokens"] == shard_tokens),
        "records_read": records_read,
        "files": len(files),
        "errors": [{"path": f["path"], "error": f["error"]} for f in files if f.get("error")],
        "shards": shards,
        "elapsed_seconds": round(elapsed, 3),
        "seconds_per_stage": stage_seconds,
    }


def funnel_table(summary: dict) -> str:
    """The short table printed at the end of a run: records in, kept and dropped per stage."""
    lines = [f"{'stage':<10} {'in':>9} {'dropped':>9}  top reasons"]
    remaining = summary["records_total"]
    for stage in STAGES:
        reasons = summary["dropped"].get(stage, {})
        n = sum(reasons.values())
        top = ", ".join(f"{r} {c}" for r, c in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
        lines.append(f"{stage:<10} {remaining:>9} {n:>9}  {top}")
        remaining -= n
    lines.append(f"{'kept':<10} {summary['kept']:>9}            {summary['tokens']:,} tokens")
    if summary["errors"]:
        lines.append(f"{len(summary['errors'])} file(s) had errors: see summary.json")
    return "\n".join(lines)
