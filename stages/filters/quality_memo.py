"""What each quality filter decided about each text, kept so that a later run re-decides without re-measuring.

A filter's result (its signals in the order it compared them, then its drop reason and detail, or none) depends
only on the text it reads and its thresholds, FineWeb's, fixed in code. `QualityFilters` records every result
it computes, per task, in `work/reuse/quality/{rank:05d}.parquet`, keyed by a digest of the text:

    text   blake2b-64 of the text the filter chain starts from
    value  JSON, {"gopher_repetition": [[0, 1, ...], [[0, 1], [3, 125], ...], null], "c4": [[21, 22], [3, 2],
           ["c4_too_few_sentences", "too_few_sentences 2 < 5"]], ...}: per filter, its signals (indices in the
           file's `ccpipe.signals`, their values), then its drop (reason, detail) or null

and, in the file's key-value metadata, `ccpipe.signals`: the [name, condition] of each index
(`["gopher_rep_dup_para_frac", "> 0.3"]`). A float that is a ratio of integers (most signals: a count over a
length) is kept as [numerator, denominator], which gives back the same float: 48 KB for bench's 355 texts
where [name, value, condition] lists take 91 KB (the reuse store itself is 0.91 MB).

A run with `--reuse` whose quality filters are the same code (pipeline/plan/reuse.py: `quality_memo` key)
replays a filter's result on a text it has already judged instead of splitting its words again with spaCy,
so turning a filter off, or back on where it ran before, costs no measuring. FineWeb's filter reads C4's
output when C4 runs: its two results are kept apart (`fineweb`, `fineweb_after_c4`); a filter given other
thresholds than FineWeb's (`quality.gopher_quality: {min_doc_words: 100}`) has its results under another name
(`gopher_quality{"min_doc_words": 100}`), measured again; but Gopher quality, whose signals depend on the text
only, is re-decided from the signals it gave with FineWeb's thresholds while they suffice (a text FineWeb's
dropped early lacks the later ones): on bench, the quality stage of such a reuse run no longer splits words.
"""

from __future__ import annotations

import json
from math import gcd

from stages.utils.memo import read_memo_file, write_memo_file

SIGNALS_KEY = b"ccpipe.signals"


class Drop(Exception):
    def __init__(self, reason: str, detail: str):
        self.reason, self.detail = reason, detail


def ignore(*_) -> None:
    """A `check` that records nothing: C4's kept lines again, for a text whose result was replayed."""


def run_part(memo: dict, signals: dict, thresholds: dict, check, name: str, compute):
    """Filter `name` on one text: replayed from `memo` (the text's results) when it judged this text before,
    else `compute(check)`, recording its result there. Returns what `compute` returns, None when replayed."""
    done = memo.get(name)
    if done is not None:
        for key, value, condition in done[0]:
            signals[key] = value
            if condition:
                thresholds[key] = condition
        if done[1] is not None:
            raise Drop(*done[1])
        return None
    seen: list = []

    def recording(prefix: str, key: str, value, bad: bool, op: str, threshold) -> None:
        seen.append([prefix + key, value, f"{op} {threshold}" if op else ""])
        check(prefix, key, value, bad, op, threshold)

    try:
        result = compute(recording)
    except Drop as drop:
        memo[name] = [seen, [drop.reason, drop.detail]]
        raise
    memo[name] = [seen, None]
    return result


def part_names(params: dict[str, dict], c4: bool) -> dict[str, str]:
    """{filter: the name of its results in the memo}: its thresholds are in the name when they are not
    FineWeb's (another threshold, another result), and C4's too in FineWeb's when it reads C4's output."""
    named = {f: f + (json.dumps(p, sort_keys=True) if p else "") for f, p in params.items()}
    if c4:
        named["fineweb"] += "_after_" + named["c4"]
    return named


MAX_DENOMINATOR = 1 << 24


def _compact(value):
    if isinstance(value, float):
        if value.is_integer():  # what limit_denominator gives, without it: half the values (0.0) of bench's pages
            return [int(value), 1]
        numerator, denominator = _limit_denominator(value)
        if numerator / denominator == value:
            return [numerator, denominator]
    return value


def _limit_denominator(value: float) -> tuple[int, int]:
    """`Fraction(value).limit_denominator(MAX_DENOMINATOR)` as (numerator, denominator): fractions.py's algorithm
    (the last convergent or semiconvergent of the continued fraction, the closer one) on plain ints. Fraction
    objects at every step took 0.055 s of the 0.10 s that writing bench's eight memos takes (~3,400 values)."""
    n, d = value.as_integer_ratio()  # what Fraction(value) holds
    if d <= MAX_DENOMINATOR:
        return n, d
    p0, q0, p1, q1 = 0, 1, 1, 0
    num, den = n, d
    while True:
        a = num // den
        q2 = q0 + a * q1
        if q2 > MAX_DENOMINATOR:
            break
        p0, q0, p1, q1 = p1, q1, p0 + a * p1, q2
        num, den = den, num - a * den
    k = (MAX_DENOMINATOR - q0) // q1
    p, q = p0 + k * p1, q0 + k * q1  # the semiconvergent; p1 / q1 the convergent, taken on a tie
    # |p1/q1 - n/d| <= |p/q - n/d|, both sides multiplied by d * q1 * q (all positive)
    if abs(p1 * d - n * q1) * q <= abs(p * d - n * q) * q1:
        return p1, q1
    g = gcd(p, q)  # 1 (a semiconvergent is in lowest terms), as Fraction(p, q) would make it
    return p // g, q // g


def read_memo(folder: str, rank: int) -> dict[bytes, dict]:
    """{text digest: {filter: [[[name, value, condition], ...], drop]}} of task `rank`; empty when the file is
    missing or unreadable (a partly deleted work/): the filters then measure."""
    values, metadata = read_memo_file(folder, rank)
    try:
        signals = json.loads(metadata[SIGNALS_KEY])
        return {key: {name: [[[signals[i][0], v[0] / v[1] if isinstance(v, list) else v, signals[i][1]]
                              for i, v in zip(indices, values)], drop]
                      for name, (indices, values, drop) in parts.items()}
                for key, parts in values.items()}
    except (KeyError, TypeError, ValueError, IndexError):
        return {}


def write_memo(folder: str, rank: int, memo: dict[bytes, dict]) -> None:
    index: dict[tuple, int] = {}
    compact = {key: {name: [[index.setdefault((signal, condition), len(index)) for signal, _, condition in seen],
                            [_compact(value) for _, value, _ in seen], drop]
                     for name, (seen, drop) in parts.items()}
               for key, parts in sorted(memo.items()) if parts}
    write_memo_file(folder, rank, compact, {SIGNALS_KEY: json.dumps([list(k) for k in index])})
