"""`ccpipe audit whatif RUN --set KEY=VALUE ...`: what a threshold change would do, from the ledger alone.

Every document's signals are in the ledger (`language_score`, the `quality` map, `classifier_score` in it),
so a new threshold re-decides a document without reading a WARC, as long as the stage that decides measured
it. The quality checks run in a fixed order and stop at the first failure (stages/filters/quality.py), so a
document dropped by check A that passes A under the new threshold was never measured by the checks after A:
its new fate is `unknown`, never a guess. The same holds for dedup: a document that newly passes every
filter never had a MinHash signature. A cluster that loses its kept document keeps its only other member;
with more members (the pairs are not in the ledger, the cluster may split) they are unknown.

What can be changed (`whatif_knobs`): `langid.threshold` (languages without a FineWeb-2 profile),
`quality.classifier.threshold`, and every numeric threshold of the four FineWeb filters as
`quality.<filter>.<datatrove parameter>` (`quality.gopher_quality.min_doc_words`), the same keys a run's config
takes. Languages with a profile keep their own thresholds and their fate.

`fate_sql` is the whole decision, one row per record with its old and new fate (`kept`, `stage:reason` or
`unknown:stage`): the test compares it with a real run of the changed config, record by record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from datatrove.pipeline.filters import GopherRepetitionFilter

from pipeline.audit.queries import AuditError, connect, rows, run_config, run_stages
from stages.filters.classifier import REASON as CLASSIFIER_REASON
from stages.filters.classifier import SIGNAL as CLASSIFIER_SIGNAL
from stages.filters.quality import on, params, tunable
from stages.recipes.profiles import resolve_profiles

EXAMPLES = 5


@dataclass(frozen=True)
class Check:
    """One comparison of the quality stage, in the order the stage makes them: `signal op threshold` drops."""

    signal: str
    op: str  # "<" or ">": the side that drops
    reason: str
    knob: str | None  # the config key that sets the threshold, None when the config cannot
    threshold: float | None  # None, or `off`: the check is not made
    off: float | None = 0  # the value that switches the check off (datatrove's `if threshold:`)
    languages: tuple = ()  # ((language, threshold), ...): languages with their own, which `knob` does not move


# (signal or parameter, op) in the stage's order; the reason is the signal's name unless given
_REPETITION = ["dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac"]
_GOPHER = [("word_count", "<", "min_doc_words", "short_doc"), ("word_count", ">", "max_doc_words", "long_doc"),
           ("mean_word_length", "<", "min_avg_word_length", "below_avg_threshold"),
           ("mean_word_length", ">", "max_avg_word_length", "above_avg_threshold"),
           ("too_many_hashes", ">", "max_symbol_word_ratio", None),
           ("too_many_ellipsis", ">", "max_symbol_word_ratio", None),
           ("too_many_bullets", ">", "max_bullet_lines_ratio", None),
           ("too_many_end_ellipsis", ">", "max_ellipsis_lines_ratio", None),
           ("below_alpha_threshold", "<", "max_non_alpha_words_ratio", None),
           ("enough_stop_words", "<", "min_stop_words", None)]
_FINEWEB = [("line_punct_ratio", "<", "line_punct_thr"), ("short_line_ratio", ">", "short_line_thr"),
            ("char_dup_ratio", ">", "char_duplicates_ratio"), ("list_ratio", ">", "new_line_ratio")]
# drops that compare no signal: no threshold moves them
FIXED_REASONS = ("gopher_rep_empty", "c4_lorem_ipsum", "c4_curly_bracket", "fineweb_empty")


def quality_checks(quality: dict) -> list[Check]:
    """The English quality checks of a run whose config's `quality` section is `quality`, in order."""
    def value(name: str, key: str):
        return {**tunable(name), **params(quality.get(name, True))}[key]

    checks = []
    if on(quality.get("gopher_repetition", True)):
        for key in _REPETITION:
            checks.append(Check(f"gopher_rep_{key}", ">", f"gopher_rep_{key}", f"quality.gopher_repetition.{key}",
                                value("gopher_repetition", key)))
        defaults = GopherRepetitionFilter()  # the n-gram thresholds are tuples: not in the config
        for n, frac in defaults.top_n_grams:
            checks.append(Check(f"gopher_rep_top_{n}_gram", ">", f"gopher_rep_top_{n}_gram", None, frac))
        for n, frac in defaults.dup_n_grams:
            checks.append(Check(f"gopher_rep_duplicated_{n}_n_grams", ">", f"gopher_rep_duplicated_{n}_n_grams",
                                None, frac))
    if on(quality.get("gopher_quality", True)):
        for signal, op, key, reason in _GOPHER:
            checks.append(Check(f"gopher_{signal}", op, f"gopher_{reason or signal}", f"quality.gopher_quality.{key}",
                                value("gopher_quality", key)))
    if on(quality.get("c4", True)):
        checks.append(Check("c4_too_few_sentences", "<", "c4_too_few_sentences", "quality.c4.min_num_sentences",
                            value("c4", "min_num_sentences"), off=-1))
    if on(quality.get("fineweb", True)):
        for signal, op, key in _FINEWEB:
            checks.append(Check(f"fineweb_{signal}", op, f"fineweb_{signal}", f"quality.fineweb.{key}",
                                value("fineweb", key), off=None))
    classifier = quality.get("classifier") or {}
    if classifier.get("model") and classifier.get("top_fraction") is None:  # a top fraction has no threshold
        checks.append(Check(CLASSIFIER_SIGNAL, "<", CLASSIFIER_REASON, "quality.classifier.threshold",
                            classifier.get("threshold", 0.5), off=None,
                            languages=tuple(sorted((classifier.get("thresholds") or {}).items()))))
    return checks


def unprofiled(config: dict) -> str:
    """SQL: the record's language has no FineWeb-2 profile (English): FineWeb's thresholds decided it."""
    profiled = [k for k, p in resolve_profiles(tuple(config["langid"].get("languages", ["en"])),
                                               config.get("quality", {}).get("profiles") or {}).items() if p]
    return "language IS NOT NULL" + (f" AND language NOT IN ({', '.join(map(repr, profiled))})" if profiled else "")


def whatif_knobs(config: dict) -> dict[str, float]:
    """The keys `--set` takes for this run, with their current values."""
    knobs = {"langid.threshold": config["langid"]["threshold"]}
    knobs.update({c.knob: c.threshold for c in quality_checks(config.get("quality", {})) if c.knob})
    return knobs


def parse_changes(config: dict, settings: list[str]) -> dict[str, float]:
    """`["langid.threshold=0.8", ...]` -> {key: value}, every key one `whatif_knobs` knows."""
    if (config["quality"].get("classifier") or {}).get("top_fraction") is not None:
        raise AuditError("whatif: this run keeps a top fraction of the classifier's scores: any change moves the "
                         "cutoff, which the ledger cannot tell; rerun it (ccpipe run --reuse) instead")
    knobs, changes = whatif_knobs(config), {}
    for setting in settings:
        key, sep, raw = setting.partition("=")
        if not sep:
            raise AuditError(f"--set {setting}: expected KEY=VALUE, e.g. langid.threshold=0.8")
        if key not in knobs:
            raise AuditError(f"--set {key}: not answerable from the ledger's signals (this run's thresholds: "
                             f"{', '.join(sorted(knobs))})")
        try:
            changes[key] = float(raw)
        except ValueError:
            raise AuditError(f"--set {key}: expected a number, got {raw!r}") from None
    return changes


def _sql_num(x) -> str:
    return "NULL" if x is None else repr(float(x))


def _fails(check: Check, threshold) -> str:
    if threshold is None or threshold == check.off:
        return "FALSE"
    value = f"map_extract(quality, '{check.signal}')[1]"
    if check.languages:  # per-language thresholds first
        threshold = ("CASE " + " ".join(f"WHEN language = {lang!r} THEN {_sql_num(t)}" for lang, t in check.languages)
                     + f" ELSE {_sql_num(threshold)} END")
        return f"coalesce({value} {check.op} ({threshold}), FALSE)"
    return f"coalesce({value} {check.op} {_sql_num(threshold)}, FALSE)"


def fate_sql(run: str | Path, changes: dict[str, float]) -> str:
    """SELECT id, url, language, token_count, text_length, old, new: every record's fate now and with `changes`."""
    config = run_config(run)
    stages = run_stages(run)
    after_quality = stages[stages.index("quality") + 1:] if "quality" in stages else []
    checks = quality_checks(config["quality"])
    english = unprofiled(config)
    old = "CASE WHEN decision = 'kept' THEN 'kept' ELSE stage || ':' || reason END"
    reached_quality = f"(decision = 'kept' OR stage IN ({', '.join(repr(s) for s in ['quality', *after_quality])}))"
    next_stage = "'unknown:dedup'" if config["dedup"]["enabled"] else "'kept'"
    # langid: the new threshold on the stored score
    langid = "NULL"
    if "langid.threshold" in changes:
        t = _sql_num(changes["langid.threshold"])
        first = "'unknown:quality'" if checks else next_stage
        langid = (f"CASE WHEN NOT ({english}) OR language_score IS NULL THEN NULL "
                  f"WHEN {reached_quality} AND language_score < {t} THEN 'langid:low_score' "
                  f"WHEN stage = 'langid' AND reason = 'low_score' AND language_score >= {t} THEN {first} END")
    # quality: the first check that fails with the new thresholds, among those the document was measured by
    quality = "NULL"
    if any(c.knob in changes for c in checks):
        when = " ".join(f"WHEN {_fails(c, changes.get(c.knob, c.threshold))} THEN 'quality:{c.reason}'" for c in checks)
        last = checks[-1].reason if checks else None
        quality = (f"CASE WHEN NOT ({english}) OR NOT {reached_quality} THEN NULL "
                   f"WHEN quality IS NULL THEN 'unknown:quality' {when} "
                   f"WHEN stage = 'quality' AND reason IN ({', '.join(repr(r) for r in FIXED_REASONS)}) THEN {old} "
                   f"WHEN stage = 'quality' AND reason = {last!r} THEN {next_stage} "
                   f"WHEN stage = 'quality' THEN 'unknown:quality' ELSE {old} END")
    return f"""
        WITH fates AS NOT MATERIALIZED (
            SELECT id, url, language, token_count, text_length, decision, dup_cluster, {old} AS old,
                   coalesce({langid}, {quality}, {old}) AS new0
            FROM ledger),
        clusters AS (  -- dedup: what a cluster's members become when some of them no longer reach it
            SELECT dup_cluster,
                   count(*) FILTER (WHERE new0 NOT IN ('kept', 'dedup:near_duplicate')) AS removed,
                   count(*) FILTER (WHERE new0 IN ('kept', 'dedup:near_duplicate')) AS remaining,
                   bool_or(decision = 'kept' AND new0 <> 'kept') AS lost_kept
            FROM fates WHERE dup_cluster IS NOT NULL AND old IN ('kept', 'dedup:near_duplicate') GROUP BY dup_cluster)
        SELECT id, url, language, token_count, text_length, old,
               CASE WHEN f.new0 <> 'dedup:near_duplicate' OR c.removed IS NULL OR c.removed = 0 THEN f.new0
                    WHEN c.lost_kept AND c.remaining = 1 THEN 'kept'
                    ELSE 'unknown:dedup' END AS new
        FROM fates f LEFT JOIN clusters c
          ON f.dup_cluster = c.dup_cluster AND f.old IN ('kept', 'dedup:near_duplicate')"""


def predicted_fates(run: str | Path, changes: dict[str, float]) -> dict[str, str]:
    """{record id: new fate} for every record: what a run with `changes` would decide, or `unknown:stage`."""
    con = connect(run)
    return dict(con.execute(f"SELECT id, new FROM ({fate_sql(run, changes)})").fetchall())


# which way a record goes: a change of reason only, a kept record dropped, a dropped one kept, or not known
_WAY = ("CASE WHEN old = 'kept' AND new NOT LIKE 'unknown:%' THEN 'kept_to_dropped' "
        "WHEN new = 'kept' THEN 'dropped_to_kept' WHEN new LIKE 'unknown:%' THEN 'unknown' "
        "ELSE 'dropped_to_dropped' END")


def whatif(run: str | Path, changes: dict[str, float], examples: int = EXAMPLES) -> dict:
    """How many records each way, by stage and reason, per language; tokens lost (and gained, estimated); examples.

    One pass over the ledger for the transitions, with the first `examples` of each by a hash of the id;
    nothing per record is held in memory."""
    start = time.perf_counter()
    con = connect(run)
    con.execute("SET enable_progress_bar = false")  # DuckDB draws it on stdout: it would break --json
    config = run_config(run)
    flips = f"SELECT *, {_WAY} AS way FROM ({fate_sql(run, changes)}) WHERE old <> new"
    # one pass: the counts per transition and language, each with its first examples by a hash of the id
    counts = rows(con, f"SELECT way, old, new, coalesce(language, '') AS language, count(*) AS n, "
                       "sum(coalesce(token_count, 0) + 1) FILTER (WHERE way = 'kept_to_dropped') AS tokens_lost, "
                       "sum(text_length) FILTER (WHERE new = 'kept') AS chars_gained, "
                       "min_by({'key': md5(id), 'id': id, 'url': url, 'language': language, 'from': old, 'to': new}, "
                       f"md5(id), {int(examples)}) AS examples "
                       f"FROM ({flips}) GROUP BY ALL ORDER BY way, old, new, language")
    # tokens a newly kept document would bring: its characters at the tokens per character of kept documents
    ratio = dict(con.execute("SELECT coalesce(language, ''), sum(token_count + 1) / sum(text_length) FROM ledger "
                             "WHERE decision = 'kept' AND text_length > 0 GROUP BY ALL").fetchall())
    picked: dict[str, list] = {}
    for c in counts:
        picked.setdefault(c["way"], []).extend(c["examples"])
    result = {"run": str(run), "changes": {k: {"from": whatif_knobs(config)[k], "to": v} for k, v in changes.items()},
              "records": con.execute("SELECT count(*) FROM ledger").fetchone()[0],
              "kept_to_dropped": 0, "dropped_to_kept": 0, "dropped_to_dropped": 0, "unknown": 0,
              "tokens_lost": 0, "tokens_gained_estimate": 0, "transitions": [], "by_language": {}, "examples": {}}
    for c in counts:
        result[c["way"]] += c["n"]
        gained = round((c["chars_gained"] or 0) * (ratio.get(c["language"]) or 0))
        result["tokens_lost"] += c["tokens_lost"] or 0
        result["tokens_gained_estimate"] += gained
        result["transitions"].append({"from": c["old"], "to": c["new"], "language": c["language"] or None,
                                      "records": c["n"]})
        lang = result["by_language"].setdefault(c["language"] or None, {"kept_to_dropped": 0, "dropped_to_kept": 0,
                                                                         "unknown": 0, "tokens_lost": 0})
        if c["way"] in lang:
            lang[c["way"]] += c["n"]
        lang["tokens_lost"] += c["tokens_lost"] or 0
    for way in ("kept_to_dropped", "dropped_to_kept", "unknown"):
        found = sorted(picked.get(way, []), key=lambda e: e["key"])[:examples]
        result["examples"][way] = [{k: v for k, v in e.items() if k != "key"} for e in found]
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def whatif_text(result: dict) -> str:
    changes = ", ".join(f"{k} {v['from']} -> {v['to']}" for k, v in result["changes"].items())
    lines = [f"what if {changes} ({result['records']:,} records, from the ledger in {result['seconds']:.2f} s):",
             f"  kept -> dropped   {result['kept_to_dropped']:>8,}   tokens lost {result['tokens_lost']:,}",
             f"  dropped -> kept   {result['dropped_to_kept']:>8,}   "
             f"tokens gained ~{result['tokens_gained_estimate']:,}"
             " (estimated from their length)",
             f"  dropped, other reason {result['dropped_to_dropped']:>4,}",
             f"  unknown           {result['unknown']:>8,}   (a later check or dedup never measured them)"]
    if result["transitions"]:
        lines.append("\nfrom -> to, by language:")
        lines += [f"  {t['from']} -> {t['to']}  [{t['language'] or '-'}]  {t['records']:,}"
                  for t in result["transitions"]]
    for way, found in result["examples"].items():
        if found:
            lines.append(f"\nexamples, {way.replace('_', ' ')}:")
            lines += [f"  {e['from']} -> {e['to']}  {e['url']}" for e in found]
    return "\n".join(lines)
