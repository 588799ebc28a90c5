"""Benchmark PIIScrubber against plain presidio, and check that both find exactly the same things.

Baseline: `AnalyzerEngine.analyze(text, language)` once per document, on the same engine (same recognizers,
same blank spaCy pipeline, same score threshold). Ours: `PIIScrubber.analyze` (line windows + entity
pre-checks + no spaCy pass) and `PIIScrubber.scrub` (that plus overlap resolution, the public-IP rule and
replacement). Findings are compared per document as sets of (type, start, end, score).

Corpora (from ../shared/corpus, or $CCPIPE_CORPUS):
  web       gold_text of the scrapinghub-aeb extraction benchmark (181 real articles, ~800k characters)
  web+pii   the same articles with one sentence of planted PII values (warc/bench/truth.jsonl) appended
  synth     presidio-research synth_dataset_v2 sentences (1,500 short sentences, most with PII)
  zh+pii    gold_text of the zh-dev pages (52 real Chinese articles) with one planted Chinese PII sentence of
            warc/zh/truth.jsonl's values appended, analyzed as Chinese (language "zh"; the baseline is presidio
            on the masked text, the text every recognizer sees: stages/pii/zh.py)
  run       with --run DIR: the kept documents of a ccpipe run (e.g. of the bench corpus)

Run by hand, e.g.:
  .venv/bin/python bench/bench_pii.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stages.pii.scrub import PIIScrubber


def load_corpora(corpus: Path) -> dict[str, list[str]]:
    with open(corpus / "extraction" / "scrapinghub-aeb" / "manifest.jsonl", encoding="utf-8") as f:
        web = [t for t in (json.loads(line).get("gold_text") for line in f) if t]
    planted = []
    with open(corpus / "warc" / "bench" / "truth.jsonl", encoding="utf-8") as f:
        for line in f:
            planted.extend(p["value"] for p in json.loads(line).get("pii") or [])
    web_pii = [f"{text}\n\nFor questions write to {planted[i % len(planted)]} or see {planted[(i + 1) % len(planted)]}."
               for i, text in enumerate(web)]
    with open(corpus / "pii" / "presidio-research_synth_dataset_v2.json", encoding="utf-8") as f:
        synth = [row["full_text"] for row in json.load(f)]
    zh, zh_planted = [], []
    with open(corpus / "extraction" / "zh-dev" / "manifest.jsonl", encoding="utf-8") as f:
        zh = [t for t in (json.loads(line).get("gold_text") for line in f) if t]
    with open(corpus / "warc" / "zh" / "truth.jsonl", encoding="utf-8") as f:
        for line in f:
            zh_planted.extend(p["value"] for p in json.loads(line).get("pii") or [])
    zh_pii = [f"{text}\n\n如有疑问请联系{zh_planted[i % len(zh_planted)]}或{zh_planted[(i + 1) % len(zh_planted)]}。"
              for i, text in enumerate(zh)]
    return {"web": web, "web+pii": web_pii, "synth": synth, "zh+pii": zh_pii}


LANGUAGE = {"zh+pii": "zh"}  # the rest: English


def canonical(results) -> set[tuple]:
    return {(r.entity_type, r.start, r.end, round(r.score, 9)) for r in results}


def time_docs(fn, docs: list[str], repeat: int) -> tuple[float, list]:
    """Best wall time over `repeat` passes, and the last pass's outputs."""
    best, outputs = float("inf"), []
    for _ in range(repeat):
        t0 = time.perf_counter()
        outputs = [fn(d) for d in docs]
        best = min(best, time.perf_counter() - t0)
    return best, outputs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="PIIScrubber vs plain presidio AnalyzerEngine.analyze: docs/s and identical findings.",
        epilog="example: .venv/bin/python bench/bench_pii.py --repeat 3")
    parser.add_argument("--corpus", type=Path,
                        default=Path(os.environ.get("CCPIPE_CORPUS", ROOT.parent / "shared" / "corpus")))
    parser.add_argument("--repeat", type=int, default=3, help="passes per measurement; the best is kept")
    parser.add_argument("--run", type=Path, help="also the kept texts of this ccpipe run (its parquet/): what the "
                        "PII stage really sees, already scrubbed once")
    args = parser.parse_args(argv)

    corpora = load_corpora(args.corpus)
    if args.run:
        import pyarrow.parquet as pq

        corpora["run"] = pq.read_table(args.run / "parquet", columns=["text"]).column("text").to_pylist()
    scrubber = PIIScrubber()
    analyzer = scrubber.analyzer
    scrubber.scrub("warm up 8.8.8.8 a@b.com")
    analyzer.analyze("warm up 8.8.8.8 a@b.com", language=scrubber.language)

    from stages.pii.zh import mask_unspaced

    def baseline(text, language=None):
        lang = scrubber.presidio_language(language)
        return analyzer.analyze(mask_unspaced(text) if lang == "zh" else text, language=lang)

    print(f"{'corpus':8} {'docs':>5} {'chars':>9} {'presidio docs/s':>16} {'analyze docs/s':>15} "
          f"{'scrub docs/s':>13} {'speedup':>8} {'identical':>10} {'findings':>9}")
    all_ok = True
    totals = {"docs": 0, "base": 0.0, "ours": 0.0, "scrub": 0.0}
    for name, docs in corpora.items():
        lang = LANGUAGE.get(name)
        t_base, base_out = time_docs(lambda d, lang=lang: baseline(d, lang), docs, args.repeat)
        t_ours, ours_out = time_docs(lambda d, lang=lang: scrubber.analyze(d, lang), docs, args.repeat)
        t_scrub, _ = time_docs(lambda d, lang=lang: scrubber.scrub(d, lang), docs, args.repeat)
        mismatches = [i for i, (a, b) in enumerate(zip(base_out, ours_out)) if canonical(a) != canonical(b)]
        n_findings = sum(len(b) for b in base_out)
        all_ok &= not mismatches
        print(f"{name:8} {len(docs):5d} {sum(map(len, docs)):9d} {len(docs) / t_base:16.1f} "
              f"{len(docs) / t_ours:15.1f} {len(docs) / t_scrub:13.1f} {t_base / t_scrub:7.1f}x "
              f"{len(docs) - len(mismatches):5d}/{len(docs):<4d} {n_findings:9d}")
        for i in mismatches[:3]:
            only_base = canonical(base_out[i]) - canonical(ours_out[i])
            only_ours = canonical(ours_out[i]) - canonical(base_out[i])
            print(f"  MISMATCH doc {i}: only presidio {sorted(only_base)}; only ours {sorted(only_ours)}")
        totals["docs"] += len(docs)
        totals["base"] += t_base
        totals["ours"] += t_ours
        totals["scrub"] += t_scrub
    print(f"{'all':8} {totals['docs']:5d} {'':9} {totals['docs'] / totals['base']:16.1f} "
          f"{totals['docs'] / totals['ours']:15.1f} {totals['docs'] / totals['scrub']:13.1f} "
          f"{totals['base'] / totals['scrub']:7.1f}x")
    print("findings identical on every document" if all_ok else "FINDINGS DIFFER (see MISMATCH lines)")
    print("speedup = presidio time / scrub() time (scrub includes overlap resolution and replacement)")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
