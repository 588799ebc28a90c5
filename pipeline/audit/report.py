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

from pipeline.audit.queries import connect, rows, run_config, run_stages, summary
from stages.io import write_text_atomic

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


def histogram(values: list[float], bins: int, lo: float, hi: float, log: bool = False) -> list[tuple[float, float, int]]:
    """[(left edge, right edge, count)]; with `log`, bins are even in log10 (document lengths span 4 decades)."""
    if log:
        lo, hi = math.log10(max(lo, 1)), math.log10(max(hi, 10))
        values = [math.log10(max(v, 1)) for v in values]
    step = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int((v - lo) / step)))] += 1
    edges = [(lo + i * step, lo + (i + 1) * step) for i in range(bins)]
    if log:
        edges = [(10 ** a, 10 ** b) for a, b in edges]
    return [(a, b, n) for (a, b), n in zip(edges, counts)]


def histogram_svg(name: str, bins: list[tuple[float, float, int]], fmt, width: int = 360, height: int = 160) -> str:
    top = max((n for _, _, n in bins), default=0) or 1
    bw = (width - 10) / max(len(bins), 1)
    parts = [f'<svg class="hist" id="hist-{esc(name)}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height + 30}" role="img" aria-label="{esc(name)}">']
    for i, (a, b, n) in enumerate(bins):
        h = (height - 10) * n / top
        parts.append(f'<rect x="{5 + i * bw:.1f}" y="{height - h:.1f}" width="{max(bw - 1, 1):.1f}" height="{h:.1f}" '
                     f'fill="{BAR}"><title>{esc(fmt(a))}–{esc(fmt(b))}: {n}</title></rect>')
    if bins:
        parts.append(f'<text x="5" y="{height + 16}" class="num">{esc(fmt(bins[0][0]))}</text>')
        parts.append(f'<text x="{width - 5}" y="{height + 16}" class="num" text-anchor="end">'
                     f'{esc(fmt(bins[-1][1]))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def reasons_table(dropped: dict[str, dict[str, int]], total: int) -> str:
    out = ['<table class="reasons"><tr><th>stage</th><th>reason</th><th>records</th><th></th></tr>']
    for stage, reasons in dropped.items():  # in funnel order
        for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
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
.hists { display: flex; flex-wrap: wrap; gap: 16px; } .hists figure { margin: 0; }
.ex { margin: 6px 0 10px; padding: 6px 8px; background: #f6f6f6; border-left: 3px solid #ccc; }
.url { font: 12px monospace; word-break: break-all; } .detail { color: #a33; font-size: 12px; }
.excerpt { white-space: pre-wrap; font-size: 13px; max-height: 9em; overflow: auto; } .legend span { display: inline-block; width: 10px; height: 10px; }
"""


def build_report(run: str | Path) -> str:
    counts = summary(run)
    con = connect(run)
    config = run_config(run)
    scores = [r[0] for r in con.execute("SELECT language_score FROM ledger WHERE language_score IS NOT NULL").fetchall()]
    lengths = [r[0] for r in con.execute("SELECT text_length FROM ledger WHERE text_length > 0").fetchall()]
    tokens = [r[0] for r in con.execute("SELECT token_count FROM ledger WHERE decision = 'kept'").fetchall()]
    examples = rows(con, f"""
        SELECT stage, reason, url, detail, excerpt FROM (
            SELECT *, row_number() OVER (PARTITION BY stage, reason ORDER BY md5(id)) AS k FROM ledger)
        WHERE k <= {EXAMPLES_PER_REASON}
        ORDER BY CASE WHEN stage IS NULL THEN 99 ELSE list_position({run_stages(run)}, stage) END, reason, k""")
    threshold = config.get("langid", {}).get("threshold")
    hists = [
        ("language score", histogram(scores, 20, 0.0, 1.0), lambda x: f"{x:.2f}",
         f"all records with a language (threshold {threshold})"),
        ("document length", histogram(lengths, 20, min(lengths, default=1), max(lengths, default=10), log=True),
         lambda x: f"{x:,.0f}", "characters of extracted text, log scale"),
        ("tokens", histogram(tokens, 20, min(tokens, default=1), max(tokens, default=10), log=True),
         lambda x: f"{x:,.0f}", "per kept document, log scale"),
    ]
    figures = "".join(f'<figure>{histogram_svg(name.replace(" ", "-"), bins, fmt)}'
                      f'<figcaption><b>{esc(name)}</b>: {esc(note)}</figcaption></figure>'
                      for name, bins, fmt, note in hists)
    kept_pct = 100 * counts["kept"] / max(counts["records_total"], 1)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>ccpipe report: {esc(Path(run).name)}</title><style>{STYLE}</style></head>
<body>
<h1>ccpipe run report: {esc(Path(run).name)}</h1>
<p>{counts['records_total']:,} records read; <b>{counts['kept']:,} kept</b> ({kept_pct:.1f} %),
{counts['dropped_total']:,} dropped; {counts['tokens']:,} tokens.</p>
<h2>Funnel</h2>
<p class="legend"><span style="background:{KEPT}"></span> passed &nbsp; <span style="background:{DROPPED}"></span>
dropped at this stage</p>
{funnel_svg(counts['funnel'])}
<h2>Drops per reason</h2>
{reasons_table(counts['dropped'], counts['records_total'])}
<h2>Distributions</h2>
<div class="hists">{figures}</div>
<h2>Examples</h2>
<p>Up to {EXAMPLES_PER_REASON} records per (stage, reason), chosen by a hash of their id. Excerpts of records
dropped before the PII stage are not scrubbed.</p>
{examples_html(examples)}
</body></html>
"""


def write_report(run: str | Path, output: str | Path) -> None:
    write_text_atomic(output, build_report(run))
