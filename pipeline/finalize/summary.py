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
import pyarrow.compute as pc
from datatrove.pipeline.dedup.minhash import MinhashDedupSignature

from pipeline.core.layout import RunLayout
from pipeline.finalize.public import public_counts
from pipeline.plan.phases import Phase, stage_of
from stages.utils.io import read_parquet

COUNT_BATCH = 1000  # ledger parts per DuckDB scan
# a ledger under this many bytes is counted here with pyarrow, one part at a time, without DuckDB, whose import
# (~55 ms) and connection (15-30 ms) took longer than bench's whole count (1,416 rows, 56 KB)
IN_MEMORY_LEDGER_BYTES = 8 << 20
_GROUP = ("decision", "stage", "reason", "language")
BY_LANGUAGE = ("quality", "dedup", "pii", "tokenize")  # the stages after language ID: their drops per language


def _read_json_files(folder: Path):
    """Each per-task JSON file of `folder`, one at a time (90,000 of them on a dump)."""
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        yield json.loads(path.read_text())


def funnel(records: int, dropped: dict[str, dict[str, int]], stages: list[str],
           early: dict[str, list[list[str]]] | None = None) -> list[dict]:
    """Per stage, in the order the steps run: records in, dropped, out, and the drops by reason; each row's
    in is the row before's out. The one place the funnel is computed.

    `early` (`pipeline.plan.phases.early_drops`): {stage: [[ledger stage, reason, row], ...]}, drops a step makes
    before `stage` runs though the ledger counts them with a later stage (the language pre-check, before
    trafilatura, counted under langid): they get a row of their own (`precheck`) before `stage`, and the later
    stage's row leaves them out."""
    early = early or {}
    moved = {(entry[0], entry[1]) for entries in early.values() for entry in entries}
    rows, remaining = [], records

    def add(name: str, reasons: dict[str, int]) -> None:
        nonlocal remaining
        n = sum(reasons.values())
        rows.append({"stage": name, "in": remaining, "dropped": n, "out": remaining - n, "reasons": reasons})
        remaining -= n

    for stage in stages:
        own: dict[str, dict[str, int]] = {}
        for entry in early.get(stage, []):  # [stage, reason] in runs from before the row had its own name
            earlier, reason, row = (*entry, "precheck")[:3]
            n = dropped.get(earlier, {}).get(reason, 0)
            own.setdefault(row, {}).update({reason: n} if n else {})
        for row, reasons in own.items():
            add(row, reasons)
        add(stage, {r: n for r, n in dropped.get(stage, {}).items() if (stage, r) not in moved})
    return rows


def _counted_by_duckdb(parts: list[str]) -> tuple[list[tuple], list[tuple]]:
    """([(decision, stage, reason, language, rows, tokens + 1 a row)], [(PII kind, values in kept rows)]).
    Aggregated in DuckDB: a dump's ledger has billions of rows, far too many to bring into Python; and in
    batches of parts, since DuckDB holds every file's metadata of a scan (~5 KB a part: 0.45 GB for 90,000)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET memory_limit = '1GB'")  # group-bys of a few keys: far below it, but never more
    groups, kinds = [], []
    for i in range(0, len(parts), COUNT_BATCH):
        source = f"read_parquet({parts[i:i + COUNT_BATCH]!r})"
        # one scan for the rows' counts by (decision, stage, reason, language): a few hundred groups on a dump,
        # where a scan per count read every part's metadata four times (bench: 45 ms -> 25 ms)
        groups += con.execute(f"SELECT decision, stage, reason, language, count(*), "
                              f"sum(coalesce(token_count, 0) + 1) FROM {source} GROUP BY ALL").fetchall()
        kinds += con.execute(f"SELECT e.key, sum(e.value) FROM (SELECT unnest(map_entries(pii)) AS e FROM "
                             f"{source} WHERE decision = 'kept' AND pii IS NOT NULL) GROUP BY ALL").fetchall()
    return groups, kinds


def _counted_in_memory(parts: list[str]) -> tuple[list[tuple], list[tuple]]:
    """`_counted_by_duckdb`'s counts with pyarrow, a part at a time."""
    groups, kinds = [], []
    for part in parts:
        table = read_parquet(part, columns=[*_GROUP, "token_count", "pii"])
        tokens = pc.add(pc.fill_null(table["token_count"], 0), 1)
        counted = pa.table({**{k: table[k] for k in _GROUP}, "tokens": tokens}).group_by(
            list(_GROUP), use_threads=False).aggregate([("tokens", "count"), ("tokens", "sum")])
        groups += zip(*(counted.column(k).to_pylist() for k in (*_GROUP, "tokens_count", "tokens_sum")))
        kept = table.filter(pc.equal(table["decision"], "kept"))["pii"].to_pylist()
        kinds += [entry for entries in kept if entries for entry in entries]
    return groups, kinds


def ledger_counts(ledger: Path, stages: list[str], early: dict | None = None) -> dict:
    """The funnel, counted from the ledger's rows: what `summary.json` and `ccpipe audit summary` report.

    `stages` is the run's (`config.resolved.yaml`). `tokens` counts, like the `.bin` shards, one
    `<|endoftext|>` before each kept document.
    """
    dropped: dict[str, Counter] = defaultdict(Counter)
    kept_by_lang, tokens_by_lang, pii = Counter(), Counter(), Counter()
    records = 0
    # after language ID, per kept language: {lang: {stage: {reason: n}}} (each language has its own filters)
    by_lang: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    parts = sorted(str(p) for p in Path(ledger).glob("part-*.parquet"))
    small = sum(os.path.getsize(p) for p in parts) <= IN_MEMORY_LEDGER_BYTES
    groups, kinds = _counted_in_memory(parts) if small else _counted_by_duckdb(parts)
    for decision, stage, reason, lang, n, tokens in groups:
        records += n  # every row, whatever its decision: conservation then checks kept + dropped against it
        if decision == "dropped":
            dropped[stage][reason] += n
            if stage in BY_LANGUAGE:
                by_lang[lang][stage][reason] += n
        elif decision == "kept":
            kept_by_lang[lang] += n
            tokens_by_lang[lang] += int(tokens)
    for kind, n in kinds:
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
        "dropped_by_language": {lang: {st: dict(sorted(by_lang[lang][st].items()))
                                       for st in sorted(by_lang[lang], key=lambda s: order.get(s, len(order)))}
                                for lang in sorted(by_lang)},
        "pii": dict(sorted(pii.items())),
        "funnel": funnel(records, dropped_sorted, stages, early),
    }


def build_summary(layout: RunLayout, stages: list[str], shards: list[dict], elapsed: float,
                  stage_seconds: dict[str, float], early: dict | None = None) -> dict:
    """The ledger's counts, checked against what the reader read and what the final phase wrote."""
    records_read, files, errors, unread = 0, 0, [], 0
    for report in _read_json_files(layout.files_report):
        for f in report["files"]:
            records_read, files = records_read + f["responses"], files + 1
            unread += bool(f.get("error")) and not f["responses"]  # a truncated file read up to its cut was read
            if f.get("error"):
                # `damaged`: permanent (bytes that do not parse, no usable record); `failed`: transient errors
                # that outlasted the retries, in a task that failed: rerunning the command redoes it
                kind = "failed" if f.get("failed") else "damaged"
                errors.append({"path": f["path"], "error": f["error"], "kind": kind})
    counts = ledger_counts(layout.ledger, stages, early)
    tally_kept = tally_tokens = 0
    for tally in _read_json_files(layout.tally):
        tally_kept += sum(tally["kept"].values())
        tally_tokens += sum(tally["tokens"].values())
    shard_tokens = sum(s["tokens"] for s in shards)
    return {
        # a run that read nothing is no finished run, however complete its all-zero funnel looks
        "run_failed": "no input file could be read" if files and unread == files else None,
        **counts,
        # every record read has exactly one ledger row; the rows' kept/tokens are what was written
        "conservation_ok": (records_read == counts["records_total"] == counts["kept"] + counts["dropped_total"]
                            and tally_kept == counts["kept"] and tally_tokens == counts["tokens"] == shard_tokens),
        "records_read": records_read,
        # ledger rows whose URL / detail held PII: scrubbed in the published ledger (pipeline/finalize/public.py)
        **public_counts(layout),
        "files": files,
        "errors": errors,
        "damaged": sum(1 for e in errors if e["kind"] == "damaged"),
        "failed": sum(1 for e in errors if e["kind"] == "failed"),
        "shards": shards,
        "elapsed_seconds": round(elapsed, 3),
        "seconds_per_stage": stage_seconds,
    }


def funnel_table(summary: dict) -> str:
    """The short table printed at the end of a run: records in, kept and dropped per stage."""
    lines = [f"{'stage':<10} {'in':>9} {'dropped':>9}  top reasons"]
    for row in summary["funnel"]:
        reasons = row.get("reasons", summary["dropped"].get(row["stage"], {}))
        top = ", ".join(f"{r} {c}" for r, c in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
        lines.append(f"{row['stage']:<10} {row['in']:>9} {row['dropped']:>9}  {top}".rstrip())
    lines.append(f"{'kept':<10} {summary['kept']:>9}            {summary['tokens']:,} tokens")
    if summary.get("pii"):
        found = ", ".join(f"{kind} {n:,}" for kind, n in sorted(summary["pii"].items(), key=lambda kv: -kv[1]))
        lines.append(f"{'scrubbed':<10} {sum(summary['pii'].values()):>9} PII      {found}")
    if summary.get("damaged"):
        lines.append(f"{summary['damaged']} file(s) damaged or unusable (permanent, counted): see summary.json")
    if summary.get("failed"):
        lines.append(f"{summary['failed']} file(s) failed (transient errors; rerun the same command to redo them)")
    elif summary["errors"] and "damaged" not in summary:  # a summary written before the two were told apart
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
