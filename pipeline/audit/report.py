"""`ccpipe audit report`: one self-contained HTML file about a run.

The funnel as a chart, drops per reason, histograms of language score, document length and tokens, and
examples per reason. Charts are inline SVG drawn here: the page needs no script and loads nothing.
Crawled text is untrusted: every string from the ledger goes through `html.escape`, and the page's
Content-Security-Policy forbids scripts and remote loads, so a page that slipped through would still run
nothing.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from pipeline.audit.curves import curves_html, threshold_curves
from pipeline.audit.queries import connect, language_thresholds, rows, run_config, run_stages, summary
from stages.utils.io import write_text_atomic

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
KEPT, DROPPED, BAR = "#2a6fdb", "#e4572e", "#4c9f70"
EXAMPLES_PER_REASON = 3


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def funnel_svg(funnel: list[dict], width: int = 760) -> str:
    """One bar per stage: what went in, the dropped part in red."""
    top = max((f["in"] for f in funnel), default=1) or 1
    label_w, row_h, bar_w = 90, 28, width - 90 - 170
    parts = [f'<svg id="funnel-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{row_h * len(funnel) + 10}" role="img" aria-label="funnel">']
    for i, f in enumerate(funnel):
        y = 5 + i * row_h
        kept_w = bar_w * f["out"] / top
        drop_w = bar_w * f["dropped"] / top
        parts.append(f'<text x="0" y="{y + 17}" class="lbl">{esc(f["stage"])}</text>')
        parts.append(f'<rect class="kept" x="{label_w}" y="{y}" width="{kept_w:.1f}" height="22" fill="{KEPT}"/>')
        parts.append(f'<rect class="dropped" x="{label_w + kept_w:.1f}" y="{y}" width="{drop_w:.1f}" height="22" '
                     f'fill="{DROPPED}"/>')
        parts.append(f'<text x="{label_w + bar_w + 8}" y="{y + 17}" class="num">{f["in"]:,} in, '
                     f'{f["dropped"]:,} dropped</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram(con, column: str, where: str, bins: int, lo: float | None = None, hi: float | None = None,
              log: bool = False) -> list[tuple[float, float, int]]:
    """[(left edge, right edge, count)] of `column` over the ledger rows `where`, counted in DuckDB (the column
    never comes into Python); `lo`/`hi` default to its min and max. With `log`, bins are even in log10
    (document lengths span 4 decades). No rows: []."""
    value = f"log10(greatest({column}, 1))" if log else f"{column}"
    found = con.execute(f"SELECT min({value}), max({value}), count(*) FROM ledger WHERE {where}").fetchone()
    if not found[2]:
        return []
    lo = found[0] if lo is None else (math.log10(max(lo, 1)) if log else lo)
    hi = found[1] if hi is None else (math.log10(max(hi, 1)) if log else hi)
    if hi - lo < 1e-9:  # every value equal: one narrow range around it, not decades of empty bins
        lo, hi = (lo - 0.05, hi + 0.05) if log else (lo - 0.5, hi + 0.5)
    step = (hi - lo) / bins
    counts = [0] * bins
    for b, n in con.execute(f"SELECT least({bins - 1}, greatest(0, floor(({value} - ?) / ?)))::INT AS b, count(*) "
                            f"FROM ledger WHERE {where} GROUP BY b", [lo, step]).fetchall():
        counts[b] = n
    edges = [(lo + i * step, lo + (i + 1) * step) for i in range(bins)]
    if log:
        edges = [(10 ** a, 10 ** b) for a, b in edges]
    return [(a, b, n) for (a, b), n in zip(edges, counts)]


def histogram_svg(name: str, bins: list[tuple[float, float, int]], fmt, width: int = 300, height: int = 160,
                  markers: list[tuple[float, str]] = (), empty: str = "no records") -> str:
    """Bars with a count scale on the left (0, half, top) and, at each of `markers` ((value, label): a
    threshold, one per kept language), a dashed line."""
    left, plot_w = 44, width - 44 - 6
    parts = [f'<svg class="hist" id="hist-{esc(name)}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height + 30}" role="img" aria-label="{esc(name)}">']
    if not bins:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" class="num empty" text-anchor="middle">'
                     f'{esc(empty)}</text></svg>')
        return "".join(parts)
    top = max(n for _, _, n in bins) or 1
    bw = plot_w / len(bins)
    for tick in sorted({0, top // 2, top}):  # whole counts only: a top of 1 has no half line
        y = height - (height - 10) * tick / top
        parts.append(f'<line x1="{left - 3}" x2="{width - 6}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 5}" y="{y + 4:.1f}" class="num" text-anchor="end">{tick:,}</text>')
    for i, (a, b, n) in enumerate(bins):
        h = (height - 10) * n / top
        parts.append(f'<rect x="{left + i * bw:.1f}" y="{height - h:.1f}" width="{max(bw - 1, 1):.1f}" '
                     f'height="{h:.1f}" fill="{BAR}"><title>{esc(fmt(a))}–{esc(fmt(b))}: {n:,}</title></rect>')
    parts.append(f'<text x="{left}" y="{height + 16}" class="num">{esc(fmt(bins[0][0]))}</text>')
    parts.append(f'<text x="{width - 6}" y="{height + 16}" class="num" text-anchor="end">{esc(fmt(bins[-1][1]))}</text>')
    shown = [(v, label) for v, label in markers if bins[0][0] <= v <= bins[-1][1]]
    for i, (value, label) in enumerate(sorted(shown)):  # labels stacked: two thresholds may lie close
        x = left + plot_w * (value - bins[0][0]) / (bins[-1][1] - bins[0][0])
        parts.append(f'<line class="threshold" x1="{x:.1f}" x2="{x:.1f}" y1="4" y2="{height}" stroke="{DROPPED}" '
                     f'stroke-width="2" stroke-dasharray="4 3"/><text x="{x + 4:.1f}" y="{14 + 12 * i}" class="num">'
                     f'{esc(label)} {esc(fmt(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def reasons_table(funnel: list[dict], total: int) -> str:
    out = ['<table class="reasons"><tr><th>stage</th><th>reason</th><th>records</th><th></th></tr>']
    for row in funnel:  # in the order the steps run, the pre-check its own row
        stage = row["stage"]
        for reason, n in sorted(row["reasons"].items(), key=lambda kv: (-kv[1], kv[0])):
            w = 200 * n / max(total, 1)
            out.append(f'<tr><td>{esc(stage)}</td><td>{esc(reason)}</td><td class="n">{n:,}</td>'
                       f'<td><svg xmlns="http://www.w3.org/2000/svg" width="202" height="12">'
                       f'<rect width="{w:.1f}" height="12" fill="{DROPPED}"/></svg></td></tr>')
    out.append("</table>")
    return "".join(out)


def examples_html(examples: list[dict]) -> str:
    out, current = [], None
    for ex in examples:
        key = ex["stage"] or "kept", ex["reason"] or ""
        if key != current:
            if current:
                out.append("</div>")
            out.append(f'<div class="group"><h3>{esc(key[0])}{": " + esc(key[1]) if key[1] else ""}</h3>')
            current = key
        detail = f'<div class="detail">{esc(ex["detail"])}</div>' if ex["detail"] else ""
        if ex["language"] is not None and ex["language_score"] is not None:
            detail += f'<div class="lang">language {esc(ex["language"])}, score {ex["language_score"]:.3f}</div>'
        if ex["duplicate_of_url"]:
            detail += f'<div class="twin">kept instead: <span class="url">{esc(ex["duplicate_of_url"])}</span></div>'
        text = ex["excerpt"] or "(no text: dropped before extraction)"
        out.append(f'<div class="ex"><div class="url">{esc(ex["url"])}</div>{detail}'
                   f'<div class="excerpt">{esc(text)}</div></div>')
    if current:
        out.append("</div>")
    return "".join(out)


STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 980px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
h3 { font-size: 14px; margin: 14px 0 4px; } .lbl, .num { font: 12px system-ui, sans-serif; fill: #333; }
table { border-collapse: collapse; } td, th { padding: 2px 8px; text-align: left; } td.n { text-align: right; }
.hists { display: flex; flex-wrap: wrap; gap: 16px; } .hists figure { margin: 0; width: 300px; }
.ex { margin: 6px 0 10px; padding: 6px 8px; background: #f6f6f6; border-left: 3px solid #ccc; }
.url { font: 12px monospace; word-break: break-all; } .detail { color: #a33; font-size: 12px; }
.lang, .twin { color: #555; font-size: 12px; }
.excerpt { white-space: pre-wrap; font-size: 13px; max-height: 9em; overflow: auto; } .legend span { display: inline-block; width: 10px; height: 10px; }
"""


def build_report(run: str | Path, partial: str | None = None) -> str:
    """The page; `partial` (why the run is unfinished) puts a banner on top: its figures are not the run's."""
    counts = summary(run)
    con = connect(run)
    config = run_config(run)
    stages = run_stages(run)
    # the examples' ids first, from the key columns only (top-3 by hash per reason), then their rows
    picked = [i for (ids,) in con.execute(f"SELECT min_by(id, md5(id), {EXAMPLES_PER_REASON}) FROM ledger "
                                          "GROUP BY stage, reason").fetchall() for i in ids]
    examples = rows(con, f"""
        SELECT stage, reason, url, detail, excerpt, language, language_score, duplicate_of_url FROM ledger
        WHERE id IN (SELECT unnest(?::VARCHAR[]))
        ORDER BY CASE WHEN stage IS NULL THEN 99 ELSE list_position({stages}, stage) END, reason, md5(id)""",
                    [picked])
    thresholds = language_thresholds(run)
    said = ", ".join(f"{lang} {t:.3g}" for lang, t in thresholds.items())
    count = lambda x: f"{x:,.0f}"  # noqa: E731
    hists = [
        ("language score", histogram(con, "language_score", "language_score IS NOT NULL", 20, 0.0, 1.0),
         lambda x: f"{x:.3g}", f"all records with a language (threshold per kept language: {said})",
         [(t, lang) for lang, t in thresholds.items()], "no language scored"),
        ("document length", histogram(con, "text_length", "text_length > 0", 20, log=True), count,
         "characters of extracted text, log scale", [], "no text extracted"),
        ("tokens", histogram(con, "coalesce(token_count, 0)", "decision = 'kept'", 20, log=True), count,
         "per kept document, log scale", [], "0 documents kept: no tokens"),
    ]
    figures = "".join(f'<figure>{histogram_svg(name.replace(" ", "-"), bins, fmt, markers=marker, empty=empty)}'
                      f'<figcaption><b>{esc(name)}</b>: {esc(note)}; records per bin</figcaption></figure>'
                      for name, bins, fmt, note, marker, empty in hists)
    kept_pct = 100 * counts["kept"] / max(counts["records_total"], 1)
    banner = f'<p class="detail"><b>PARTIAL FIGURES</b>: {esc(partial)}</p>\n' if partial else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>ccpipe report: {esc(Path(run).name)}</title><style>{STYLE}</style></head>
<body>
<h1>ccpipe run report: {esc(Path(run).name)}</h1>
{banner}<p>{counts['records_total']:,} records read; <b>{counts['kept']:,} kept</b> ({kept_pct:.1f} %),
{counts['dropped_total']:,} dropped; {counts['tokens']:,} tokens.</p>
<h2>Funnel</h2>
<p class="legend"><span style="background:{KEPT}"></span> passed &nbsp; <span style="background:{DROPPED}"></span>
dropped at this stage</p>
{funnel_svg(counts['funnel'])}
<h2>Drops per reason</h2>
{reasons_table(counts['funnel'], counts['records_total'])}
<h2>Distributions</h2>
<div class="hists">{figures}</div>
<h2>Thresholds</h2>
{curves_html(threshold_curves(con, config))}
<h2>Examples</h2>
<p>Up to {EXAMPLES_PER_REASON} records per (stage, reason), chosen by a hash of their id. Excerpts of records
dropped before the PII stage are not scrubbed.</p>
{examples_html(examples)}
</body></html>
"""


def write_report(run: str | Path, output: str | Path, partial: str | None = None) -> None:
    write_text_atomic(output, build_report(run, partial))
