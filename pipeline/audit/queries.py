"""`ccpipe audit ...`: why was this page removed, what did this filter remove, what changed between runs.

Every question is a DuckDB query over the run's decision ledger (`RUN/ledger/part-*.parquet`, one row per
input record, see stages/writers/ledger.py) and its `config.resolved.yaml` (the thresholds the decisions were held
against). Nothing here re-runs a stage.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import duckdb
import yaml

from pipeline.core.layout import RunLayout
from pipeline.core.lock import live_writer
from pipeline.finalize.summary import ledger_counts
from stages.writers.ledger import PRECHECK_REASON


class AuditError(ValueError):
    """A run directory without a ledger, an unknown stage, a record not found: the message says which."""


# ---- the ledger ------------------------------------------------------------------------------------------

def ledger_glob(run: str | Path) -> str:
    parts = Path(run) / "ledger"
    if not any(parts.glob("part-*.parquet")):
        raise AuditError(f"{run}: no ledger (expected {parts}/part-*.parquet); is it a finished ccpipe run?")
    return str(parts / "part-*.parquet")


# DuckDB spills joins, sorts and aggregates to disk past this: with Python and the parquet reader's buffers a
# command peaks under 2 GB on a 100 M-row ledger (bench/scale.py)
MEMORY_LIMIT = os.environ.get("CCPIPE_DUCKDB_MEMORY", "1GB")
THREADS = min(4, os.cpu_count() or 1)  # each thread holds its row groups: more threads, more memory


def connect(*runs: str | Path):
    """A DuckDB connection with a view `ledger` (and `ledger_b` for a second run), in bounded memory."""
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute(f"SET threads = {THREADS}")
    con.execute(f"SET temp_directory = '{Path(tempfile.gettempdir()) / 'ccpipe-duckdb'}'")
    con.execute("SET preserve_insertion_order = false")
    for name, run in zip(("ledger", "ledger_b"), runs):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{ledger_glob(run)}')")
    return con


def rows(con, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def run_resolved(run: str | Path) -> dict:
    """The run's `config.resolved.yaml`: its config, inputs and stages."""
    path = RunLayout(Path(run)).resolved_config
    if not path.is_file():
        raise AuditError(f"{run}: no config.resolved.yaml; is it a ccpipe run directory?")
    return yaml.safe_load(path.read_text())


def run_config(run: str | Path) -> dict:
    return run_resolved(run)["config"]


def language_thresholds(run: str | Path) -> dict[str, float]:
    """{kept language: the language-ID score it was held to}: `langid.threshold`, or the language's own from its
    FineWeb-2 profile (the run's provenance of LanguageID)."""
    resolved = run_resolved(run)
    langid = resolved["config"].get("langid", {})
    own = ((resolved.get("provenance") or {}).get("LanguageID") or {}).get("thresholds") or {}
    return {lang: own.get(lang, langid.get("threshold", 0.65)) for lang in langid.get("languages", ["en"])}


def run_stages(run: str | Path) -> list[str]:
    """The run's funnel stages, in order, as its steps declared them."""
    return run_resolved(run)["stages"]


def unfinished(run: str | Path) -> str | None:
    """Why the run's ledger is not the whole run ('still being written by host H pid P', 'unfinished: 2 of 3
    ledger parts, no summary.json'), or None for a finished run: figures read now would be partial."""
    holder = live_writer(run)
    if holder is not None:
        return f"{run}: the run is still being written (by {holder})"
    layout = RunLayout(Path(run))
    if layout.summary.is_file() or not layout.resolved_config.is_file():
        return None  # finished; or no run at all, which the query itself names
    parts = len(list(layout.ledger.glob("part-*.parquet")))
    return (f"{run}: the run is unfinished ({parts} of {run_resolved(run).get('tasks', '?')} ledger parts, no "
            "summary.json): it was stopped before its end; rerun the same command to finish it")


# ---- summary ---------------------------------------------------------------------------------------------

def summary(run: str | Path) -> dict:
    """The funnel counted from the ledger, exactly as `summary.json` reports it."""
    ledger_glob(run)
    return ledger_counts(RunLayout(Path(run)).ledger, run_stages(run), run_resolved(run).get("early_drops"))


def summary_table(counts: dict) -> str:
    lines = [f"{'stage':<10} {'in':>8} {'kept':>8} {'dropped':>8}  by reason"]
    for step in counts["funnel"]:
        reasons = step.get("reasons", counts["dropped"].get(step["stage"], {}))
        by = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
        lines.append(f"{step['stage']:<10} {step['in']:>8} {step['out']:>8} {step['dropped']:>8}  {by}".rstrip())
    lines.append(f"{'kept':<10} {counts['kept']:>8}  {counts['tokens']:,} tokens; "
                 + ", ".join(f"{lang} {n}" for lang, n in counts["kept_by_language"].items()))
    return "\n".join(lines)


# ---- explain ---------------------------------------------------------------------------------------------

def find(con, run: str | Path, key: str) -> list[dict]:
    """The rows whose id or URL is `key`. Two steps: find them by scanning the two key columns only, then
    read those rows whole (a million-row ledger: ~70 ms on one core, against ~500 ms for `SELECT *`)."""
    parts = ledger_glob(run)
    hits = con.execute(f"SELECT filename, file_row_number FROM read_parquet('{parts}', filename = true, "
                       "file_row_number = true) WHERE id = ? OR url = ? ORDER BY filename, file_row_number",
                       [key, key]).fetchall()
    return [row for filename, n in hits
            for row in rows(con, "SELECT * EXCLUDE (file_row_number) FROM read_parquet(?, file_row_number = true) "
                                 "WHERE file_row_number = ?", [filename, n])]


def mask(value: str) -> str:
    """`jane.doe@example.com` -> `j•••••••@e••••••.c••`: the shape of a value, not the value."""
    out, start = [], True
    for ch in value:
        if ch.isalnum():
            out.append(ch if start else "•")
            start = False
        else:
            out.append(ch)
            start = True
    return "".join(out)


def _fmt(x) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def trail(con, row: dict, config: dict, stages: list[str], show_pii: bool = False) -> list[tuple[str, str, str]]:
    """[(stage, "passed" | "DROPPED" | "not reached", what the decision rested on)] for one ledger row."""
    langid = config.get("langid", {})
    threshold, languages = langid.get("threshold", 0.65), langid.get("languages", ["en"])
    # a language with a FineWeb-2 profile was held against the profile's score (stages/recipes/profiles)
    own = ((config.get("provenance") or {}).get("LanguageID") or {}).get("thresholds") or {}
    threshold = own.get(row["language"], threshold)
    dropped_at = row["stage"] if row["decision"] == "dropped" else None
    reached = stages.index(dropped_at) if dropped_at else len(stages) - 1
    out = []
    for i, stage in enumerate(stages):
        if i > reached:
            out.append((stage, "not reached", ""))
            continue
        dropped = stage == dropped_at
        why = _why(con, stage, row, dropped, threshold, languages, show_pii)
        if dropped:
            why = f"{row['reason']}" + (f": {why}" if why else "")
        skipped = stage == "extract" and row["reason"] == PRECHECK_REASON
        out.append((stage, "DROPPED" if dropped else "skipped" if skipped else "passed", why))
    return out


def _why(con, stage, row, dropped, threshold, languages, show_pii) -> str:
    detail = (row["detail"] or "") if dropped else ""
    if stage == "reader":
        return detail or "HTML response, decoded"
    if stage == "blocklist":
        if dropped:
            return f"list {row['blocklist_list']}, rule {row['blocklist_rule']}"
        return f"allowed by {row['blocklist_allowed']}" if row["blocklist_allowed"] else "no list or rule matched"
    if stage == "extract":
        if row["reason"] == PRECHECK_REASON:
            return "not run: the language pre-check on the HTML's text decided first"
        return detail if dropped else f"trafilatura text, {row['text_length']:,} characters"
    if stage == "langid":
        if row["language"] is None:
            return detail
        score, lang = row["language_score"], row["language"]
        if lang not in languages:
            held = f"{lang} is not a kept language ({', '.join(languages)})"
        else:
            held = f"score {'<' if score < threshold else '>='} threshold {threshold}"
        return f"language {lang}, score {score:.4f}: {held}" + (f"; {detail}" if detail else "")
    if stage == "quality":
        limits = dict(row["quality_thresholds"] or [])
        signals = ", ".join(f"{k} {_fmt(v)}" + (f" (drop if {limits[k]})" if k in limits else "")
                            for k, v in sorted(dict(row["quality"] or []).items()))
        profile = limits.get("profile")  # a language with a FineWeb-2 profile: its filters and thresholds
        return "; ".join(s for s in (profile and not detail and f"profile {profile}", detail, signals and f"measured: {signals}")
                         if s) or "Gopher repetition, Gopher quality, C4 and FineWeb filters passed"
    if stage == "dedup":
        cluster = row["dup_cluster"]
        if dropped:
            return (f"MinHash cluster {cluster}; kept instead: {row['duplicate_of']} {row['duplicate_of_url']}"
                    if row["duplicate_of"] else f"MinHash cluster {cluster}; its kept document is not in this ledger")
        if cluster is None:
            return "no near-duplicate found"
        n = con.execute("SELECT count(*) FROM ledger WHERE dup_cluster = ? AND stage = 'dedup'", [cluster]).fetchone()[0]
        return f"kept for MinHash cluster {cluster}; {n} duplicate(s) of it dropped"
    if stage == "pii":
        spans = json.loads(row["pii_spans"]) if row["pii_spans"] else []
        if not spans:
            return "nothing to replace"
        shown = []
        for span in spans:
            kind, start, end = span[:3]
            value = span[3] if len(span) > 3 else None
            text = "" if value is None else f" {value!r}" if show_pii else f" {mask(value)!r}"
            shown.append(f"{kind} [{start}:{end}]{text}")
        counts = ", ".join(f"{k} {n}" for k, n in sorted(dict(row["pii"] or []).items()))
        return f"replaced {len(spans)} ({counts}): " + "; ".join(shown)
    if stage == "tokenize":
        return f"{row['token_count']:,} tokens" if row["token_count"] is not None else detail
    return detail


def explain(run: str | Path, key: str, show_pii: bool = False) -> list[dict]:
    """Every ledger row whose id or URL is `key`, each with its trail."""
    con = connect(run)
    found = find(con, run, key)
    if not found:
        raise AuditError(f"{key}: no record with this id or URL in {run}/ledger")
    resolved = run_resolved(run)
    # with the language ID's own thresholds per language (stages/recipes/profiles), from the run's provenance
    config = {**resolved["config"], "provenance": resolved.get("provenance")}
    return [{**row, "trail": trail(con, row, config, resolved["stages"], show_pii), "published": published(run, row)}
            for row in found]


def published(run: str | Path, row: dict) -> dict:
    """The url and detail of `row` as the public ledger has them (pipeline/finalize/public.py), where PII
    scrubbing changed them: {"url": ..., "detail": ...}, or {} when nothing was changed."""
    parts = RunLayout(Path(run)).work / "publish" / "ledger"
    if not any(parts.glob("part-*.parquet")):
        return {}
    public = duckdb.connect().execute(f"SELECT url, detail FROM read_parquet('{parts}/part-*.parquet') "
                                      "WHERE id = ? LIMIT 1", [row["id"]]).fetchone()
    if public is None:
        return {}
    return {k: v for k, v in zip(("url", "detail"), public) if v != row.get(k)}


def explain_text(found: list[dict]) -> str:
    blocks = []
    for row in found:
        fate = "KEPT" if row["decision"] == "kept" else f"DROPPED at {row['stage']}: {row['reason']}"
        lines = [f"record   {row['id']}", f"url      {row['url']}", f"warc     {row['warc']} @ {row['offset']}",
                 f"fate     {fate}", ""]
        for name, value in row.get("published", {}).items():  # summary.json's pii_in_urls / pii_in_details
            lines.insert(-1, f"published {name} scrubbed of PII (the raw value stays in this run's ledger): {value}")
        for stage, state, why in row["trail"]:
            head, _, measured = why.partition("measured: ")
            head = head.rstrip("; ") or ("measured:" if measured else "")
            lines.append(f"  {stage:<10} {state:<12} {head}".rstrip())
            lines += [f"{'':<26}{value}" for value in measured.split(", ") if value]
        if row["excerpt"]:
            lines += ["", "  excerpt  " + row["excerpt"][:200].replace("\n", " ")]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# ---- sample ----------------------------------------------------------------------------------------------

def sample(run: str | Path, stage: str, reason: str | None = None, n: int = 20, seed: int = 0) -> list[dict]:
    """`n` records dropped at `stage` (for `reason`), or kept when stage is "kept"; the same seed, the same
    records (ordered by a hash of id and seed, not by DuckDB's sampling, whose order depends on threads)."""
    stages = run_stages(run)
    if stage not in (*stages, "kept"):
        raise AuditError(f"--stage {stage}: expected one of {', '.join(stages)}, kept")
    con = connect(run)
    where, params = ("decision = 'kept'", []) if stage == "kept" else ("stage = ?", [stage])
    if reason:
        where += " AND reason = ?"
        params.append(reason)
    found = rows(con, f"SELECT id, url, stage, reason, detail, language, language_score, excerpt FROM ledger "
                      f"WHERE {where} ORDER BY md5(id || ?::VARCHAR), id LIMIT ?", [*params, str(seed), n])
    if not found:
        reasons = rows(con, "SELECT reason, count(*) AS n FROM ledger WHERE stage = ? GROUP BY reason ORDER BY n DESC",
                       [stage])
        known = ", ".join(f"{r['reason']} ({r['n']})" for r in reasons) or "none"
        raise AuditError(f"no record dropped at {stage}" + (f" for {reason}" if reason else "")
                         + f"; reasons at this stage: {known}")
    return found


def sample_text(found: list[dict]) -> str:
    blocks = []
    for r in found:
        head = f"{r['url']}\n  {r['stage'] or 'kept'}"
        head += f": {r['reason']}" if r["reason"] else ""
        head += f" ({r['detail']})" if r["detail"] else ""
        if r["language"]:
            head += f"  [{r['language']} {r['language_score']:.2f}]"
        excerpt = (r["excerpt"] or "(no text: dropped before extraction)")[:240].replace("\n", " ")
        blocks.append(f"{head}\n  {excerpt}")
    return "\n\n".join(blocks)


# ---- diff ------------------------------------------------------------------------------------------------

FATE = "CASE WHEN {t}.decision = 'kept' THEN 'kept' ELSE {t}.stage || ':' || {t}.reason END"


DIFF_PASS_ROWS = 4_000_000  # records per pass of `diff`: its join's hash table stays well under the memory limit


def diff(run_a: str | Path, run_b: str | Path, examples: int = 3, ids: bool = True) -> dict:
    """Records whose fate (kept, or stage:reason) differs between two runs over the same input, matched by
    record id; counted by (old fate -> new fate) in DuckDB, in passes over slices of the ids (by hash), so
    the join holds one slice at a time; only the examples printed are fetched (and, with `ids`, every
    changed id: `--json`)."""
    con = connect(run_a, run_b)
    total = con.execute("SELECT count(*) FROM ledger").fetchone()[0]
    passes = max(1, -(-max(total, con.execute("SELECT count(*) FROM ledger_b").fetchone()[0]) // DIFF_PASS_ROWS))
    counts: dict[tuple[str, str], int] = {}
    picked: dict[tuple[str, str], list[tuple[str, str]]] = {}
    changed_ids: list[str] = []
    slices = Path(tempfile.mkdtemp(prefix="ccpipe-diff-"))
    # each run's (id, fate) written once, split by a hash of the id: one scan of each ledger, then one small
    # join per slice (a pass that filtered the ledgers would rescan them: quadratic in the rows)
    for view in ("ledger", "ledger_b"):
        con.execute(f"COPY (SELECT hash(id) % {passes} AS slice, id, {FATE.format(t=view)} AS fate FROM {view}) "
                    f"TO '{slices / view}' (FORMAT parquet, PARTITION_BY (slice))")
    for k in range(passes):
        side = "(SELECT id, fate FROM read_parquet('{dir}/slice={k}/*.parquet'))"
        a, b = (side.format(dir=slices / view, k=k) if (slices / view / f"slice={k}").is_dir()
                else "(SELECT NULL::VARCHAR AS id, NULL::VARCHAR AS fate WHERE false)" for view in ("ledger", "ledger_b"))
        changed = f"""
            SELECT coalesce(a.id, b.id) AS id, coalesce(a.fate, '(absent)') AS old, coalesce(b.fate, '(absent)') AS new
            FROM {a} a FULL OUTER JOIN {b} b
            ON a.id = b.id WHERE a.id IS NULL OR b.id IS NULL OR a.fate <> b.fate"""
        for old, new, n, first in con.execute(f"SELECT old, new, count(*), min_by(struct_pack(h := md5(id), id := id), "
                                              f"md5(id), {max(examples, 1)}) FROM ({changed}) GROUP BY ALL").fetchall():
            counts[old, new] = counts.get((old, new), 0) + n
            picked[old, new] = sorted(picked.get((old, new), []) + [(e["h"], e["id"]) for e in first])[:examples]
        if ids:
            changed_ids += [i for (i,) in con.execute(f"SELECT id FROM ({changed})").fetchall()]
    shutil.rmtree(slices, ignore_errors=True)
    wanted = sorted({i for found in picked.values() for _, i in found})
    urls = dict(con.execute("SELECT id, any_value(url) FROM (SELECT id, url FROM ledger UNION ALL SELECT id, url "
                            "FROM ledger_b) WHERE id IN (SELECT unnest(?::VARCHAR[])) GROUP BY id", [wanted]).fetchall())
    result = {
        "records": total,  # in the first run's ledger
        "records_b": con.execute("SELECT count(*) FROM ledger_b").fetchone()[0],
        "changed": sum(counts.values()),
        "transitions": [{"old": old, "new": new, "count": n,
                         "examples": [{"id": i, "url": urls.get(i)} for _, i in picked[old, new]]}
                        for (old, new), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))],
    }
    if ids:
        result["ids"] = sorted(changed_ids)
    return result


def diff_text(result: dict) -> str:
    only_a = sum(t["count"] for t in result["transitions"] if t["new"] == "(absent)")
    only_b = sum(t["count"] for t in result["transitions"] if t["old"] == "(absent)")
    both = result["records"] - only_a
    line = f"{result['changed'] - only_a - only_b} of {both} records in both runs changed fate"
    if only_a or only_b:  # a record of one run only has no fate to change: counted apart, not in "of N"
        line += f"; {only_a} record(s) only in the first run, {only_b} only in the second"
    lines = [line]
    for t in result["transitions"]:
        lines.append(f"\n{t['count']:>6}  {t['old']}  ->  {t['new']}")
        lines += [f"        {e['url']}" for e in t["examples"]]
    return "\n".join(lines)
