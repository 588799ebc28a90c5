"""The report's threshold charts: for each numeric threshold `ccpipe audit whatif` can move, how many records
it measured would pass as the threshold moves, and how many of the kept ones would stay, the current value
marked. Counted in DuckDB from the ledger's signals; a record the check never measured is in neither line
(whatif's `unknown`)."""

from __future__ import annotations

import html

from pipeline.audit.whatif import quality_checks, unprofiled

POINTS = 24  # thresholds per curve
# past this many records the curves are drawn from every k-th record by a hash of its id (deterministic): 21
# curves over a 100 M-row ledger would otherwise read its quality map 42 times
SAMPLE_ROWS = 2_000_000
MEASURED, KEPT_STILL = "#888", "#2a6fdb"


def _curve(con, value: str, op: str, where: str, current: float, integer: bool) -> dict | None:
    lo, hi, n = con.execute(f"SELECT min({value}), max({value}), count(*) FROM curve_rows WHERE {where}").fetchone()
    if not n:
        return None
    lo, hi = min(lo, current), max(hi, current)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    points = sorted({round(lo + (hi - lo) * i / (POINTS - 1), 0 if integer else 6) for i in range(POINTS)} | {current})
    passes = f"NOT ({value} {op} t)"
    found = con.execute(f"SELECT t, count(*) FILTER (WHERE {passes}), count(*) FILTER (WHERE {passes} AND "
                        f"decision = 'kept') FROM curve_rows, (SELECT unnest(?::DOUBLE[]) AS t) WHERE {where} "
                        "GROUP BY t ORDER BY t", [points]).fetchall()
    kept = con.execute(f"SELECT count(*) FROM curve_rows WHERE {where} AND decision = 'kept'").fetchone()[0]
    return {"points": [(t, a, b) for t, a, b in found], "measured": n, "kept": kept, "current": current}


def threshold_curves(con, config: dict) -> list[dict]:
    """[{knob, op, points [(threshold, passing, kept still passing)], measured, kept, current, every}], in pipeline
    order; `every` > 1: counted on every `every`-th record (SAMPLE_ROWS)."""
    total = con.execute("SELECT count(*) FROM ledger").fetchone()[0]
    every = -(-total // SAMPLE_ROWS)
    con.execute("CREATE OR REPLACE TEMP TABLE curve_rows AS SELECT language, language_score, decision, quality "
                f"FROM ledger WHERE language_score IS NOT NULL AND hash(id) % {every} = 0")
    english = unprofiled(config)
    out = []
    langid = _curve(con, "language_score", "<", f"{english} AND language_score IS NOT NULL",
                    config["langid"]["threshold"], False)
    if langid:
        out.append({"knob": "langid.threshold", "op": "<", "every": every, **langid})
    for check in quality_checks(config.get("quality", {})):
        if not check.knob or check.threshold is None:
            continue
        value = f"map_extract(quality, '{check.signal}')[1]"
        integer = isinstance(check.threshold, int)
        curve = _curve(con, value, check.op, f"{english} AND {value} IS NOT NULL", check.threshold, integer)
        if curve:
            out.append({"knob": check.knob, "op": check.op, "signal": check.signal, "every": every, **curve})
    return out


def curve_svg(curve: dict, width: int = 300, height: int = 150) -> str:
    """Two lines over the threshold: records measured that pass (grey), kept records that still pass (blue)."""
    left, plot_w, plot_h = 44, width - 44 - 8, height - 14
    pts = curve["points"]
    lo, hi = pts[0][0], pts[-1][0]
    top = max(curve["measured"], 1)
    x = lambda t: left + plot_w * (t - lo) / ((hi - lo) or 1)  # noqa: E731
    y = lambda n: 4 + plot_h - plot_h * n / top  # noqa: E731
    knob = html.escape(curve["knob"], quote=True)
    parts = [f'<svg class="curve" id="curve-{knob}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height + 28}" role="img" aria-label="{knob}">']
    for tick in sorted({0, top // 2, top}):
        parts.append(f'<line x1="{left - 3}" x2="{width - 8}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 5}" y="{y(tick) + 4:.1f}" class="num" text-anchor="end">{tick:,}</text>')
    for index, color, cls in ((1, MEASURED, "passing"), (2, KEPT_STILL, "kept-still")):
        line = " ".join(f"{x(p[0]):.1f},{y(p[index]):.1f}" for p in pts)
        parts.append(f'<polyline class="{cls}" points="{line}" fill="none" stroke="{color}" stroke-width="2"/>')
    cx = x(curve["current"])
    anchor, dx = ("end", -4) if cx > left + plot_w * 0.7 else ("start", 4)  # the label inside the plot
    parts.append(f'<line class="threshold" x1="{cx:.1f}" x2="{cx:.1f}" y1="4" y2="{4 + plot_h}" stroke="#e4572e" '
                 f'stroke-width="2" stroke-dasharray="4 3"/><text x="{cx + dx:.1f}" y="14" class="num" '
                 f'text-anchor="{anchor}">now {curve["current"]:g}</text>')
    parts.append(f'<text x="{left}" y="{height + 16}" class="num">{lo:.4g}</text><text x="{width - 8}" '
                 f'y="{height + 16}" class="num" text-anchor="end">{hi:.4g}</text></svg>')
    return "".join(parts)


def curves_html(curves: list[dict]) -> str:
    figures = []
    for c in curves:
        drops = "under" if c["op"] == "<" else "over"
        sampled = f" (every {c['every']:,}th record by a hash of its id)" if c["every"] > 1 else ""
        figures.append(f'<figure>{curve_svg(c)}<figcaption style="overflow-wrap: anywhere">'
                       f'<b>{html.escape(c["knob"])}</b>: drops values {drops} it; {c["measured"]:,} records '
                       f'measured, {c["kept"]:,} kept{sampled}</figcaption></figure>')
    return (f'<p class="legend"><span style="background:{MEASURED}"></span> measured records that pass &nbsp; '
            f'<span style="background:{KEPT_STILL}"></span> kept records that still pass; dashed: the current value. '
            f'<code>ccpipe audit whatif</code> gives the exact effect of a change.</p><div class="hists">'
            + "".join(figures) + "</div>")
