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
from collections import Counter, defaultdict
from pathlib import Path

import duckdb
from datatrove.pipeline.dedup.minhash import MinhashDedupSignature

from pipeline.core.layout import RunLayout
from pipeline.plan.phases import Phase, stage_of


COUNT_BATCH = 1000  # ledger parts per DuckDB scan


def _read_json_files(folder: Path):
    """Each per-task JSON file of `folder`, one at a time (90,000 of them on a dump)."""
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        yield json.loads(path.read_text())


def funnel(records: int, dropped: dict[str, dict[str, int]], stages: list[str]) -> list[dict]:
    """Per stage, in pipeline order: records in, dropped, out. The one place the funnel is computed."""
    rows, remaining = [], records
    for stage in stages:
        n = sum(dropped.get(stage, {}).values())
        rows.append({"stage": stage, "in": remaining, "dropped": n, "out": remaining - n})
        remaining -= n
    return rows


def ledger_counts(ledger: Path, stages: list[str]) -> dict:
    """The funnel, counted from the ledger's rows: what `summary.json` and `ccpipe audit summary` report.

    `stages` is the run's (`config.resolved.yaml`). `tokens` counts, like the `.bin` shards, one
    `<|endoftext|>` before each kept document.
    """
    dropped: dict[str, Counter] = defaultdict(Counter)
    kept_by_lang, tokens_by_lang, pii = Counter(), Counter(), Counter()
    records = 0
    parts = sorted(str(p) for p in Path(ledger).glob("part-*.parquet"))
    # aggregated in DuckDB: a dump's ledger has billions of rows, far too many to bring into Python; and in
    # batches of parts, since DuckDB holds every file's metadata of a scan (~5 KB a part: 0.45 GB for 90,000)
    con = duckdb.connect()
    con.execute("SET memory_limit = '1GB'")  # group-bys of a few keys: far below it, but never more
    for i in range(0, len(parts), COUNT_BATCH):
        source = f"read_parquet({parts[i:i + COUNT_BATCH]!r})"
        # every row, whatever its decision: conservation then checks kept + dropped against it
        records += con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
        for stage, reason, n in con.execute(
                f"SELECT stage, reason, count(*) FROM {source} WHERE decision = 'dropped' GROUP BY ALL").fetchall():
            dropped[stage][reason] += n
        for lang, n, tokens in con.execute(f"SELECT language, count(*), sum(coalesce(token_count, 0) + 1) "
                                           f"FROM {source} WHERE decision = 'kept' GROUP BY ALL").fetchall():
            kept_by_lang[lang] += n
            tokens_by_lang[lang] += int(tokens)
        for kind, n in con.execute(f"SELECT e.key, sum(e.value) FROM (SELECT unnest(map_entries(pii)) AS e FROM "
                                   f"{source} WHERE decision = 'kept' AND pii IS NOT NULL) GROUP BY ALL").fetchall():
            pii[kind] += int(n)
    order = {s: i for i, s in enumerate(stages)}
    dropped_sorted = {stage: dict(sorted(dropped[stage].items()))
                      for stage in sorted(dropped, key=lambda s: order.get(s, len(order)))}
    return {
        "records_total": records,
        "kept": sum(kept_by_lang.values()),
        "dropped": dropped_sorted,
        "dropped_total": sum(sum(r.values()) for r in dropped.values()),
        "kept_by_language": dict(sorted(kept_by_lang.items())),
        "tokens": sum(tokens_by_lang.values()),
        "tokens_by_language": dict(sorted(tokens_by_lang.items())),
        "pii": dict(sorted(pii.items())),
        "funnel": funnel(records, dropped_sorted, stages),
    }


def build_summary(layout: RunLayout, stages: list[str], shards: list[dict], elapsed: float,
                  stage_seconds: dict[str, float]) -> dict:
    """The ledger's counts, checked against what the reader read and what the final phase wrote."""
    records_read, files, errors = 0, 0, []
    for report in _read_json_files(layout.files_report):
        for f in report["files"]:
            records_read, files = records_read + f["responses"], files + 1
            if f.get("error"):
                errors.append({"path": f["path"], "error": f["error"]})
    counts = ledger_counts(layout.ledger, stages)
    tally_kept = tally_tokens = 0
    for tally in _read_json_files(layout.tally):
        tally_kept += sum(tally["kept"].values())
        tally_tokens += sum(tally["tokens"].values())
    shard_tokens = sum(s["tokens"] for s in shards)
    return {
        **counts,
        # every record read has exactly one ledger row; the rows' kept/tokens are what was written
        "conservation_ok": (records_read == counts["records_total"] == counts["kept"] + counts["dropped_total"]
                            and tally_kept == counts["kept"] and tally_tokens == counts["tokens"] == shard_tokens),
        "records_read": records_read,
        "files": files,
        "errors": errors,
        "shards": shards,
        "elapsed_seconds": round(elapsed, 3),
        "seconds_per_stage": stage_seconds,
    }


def funnel_table(summary: dict) -> str:
    """The short table printed at the end of a run: records in, kept and dropped per stage."""
    lines = [f"{'stage':<10} {'in':>9} {'dropped':>9}  top reasons"]
    for row in summary["funnel"]:
        reasons = summary["dropped"].get(row["stage"], {})
        top = ", ".join(f"{r} {c}" for r, c in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
        lines.append(f"{row['stage']:<10} {row['in']:>9} {row['dropped']:>9}  {top}")
    lines.append(f"{'kept':<10} {summary['kept']:>9}            {summary['tokens']:,} tokens")
    if summary["errors"]:
        lines.append(f"{len(summary['errors'])} file(s) had errors: see summary.json")
    return "\n".join(lines)


def stage_seconds(layout: RunLayout, phases: list[Phase]) -> dict[str, float]:
    """CPU-side seconds per stage, summed over tasks, from datatrove's per-phase stats.

    datatrove times MinhashDedupSignature around its whole input loop, which includes every step before it
    in the phase; its own share is what remains after subtracting theirs.
    """
    seconds: dict[str, float] = {}
    for phase in phases:
        stats_file = layout.logs / phase.name / "stats.json"
        if not stats_file.exists():
            continue
        upstream = 0.0
        for step, stats in zip(phase.steps, json.loads(stats_file.read_text())):
            timing = stats.get("time_stats")
            total = timing.get("total", 0.0) if isinstance(timing, dict) else 0.0
            if isinstance(step, MinhashDedupSignature):
                total = max(0.0, total - upstream)
            upstream += total
            stage = stage_of(step)
            seconds[stage] = seconds.get(stage, 0.0) + total
    return {stage: round(t, 3) for stage, t in seconds.items()}
