"""Extraction quality and speed with ccpipe's fast paths on and off, on ../shared/corpus/extraction.

Every page goes through three configurations:
  trafilatura   trafilatura alone, in precision mode (what FineWeb and ccpipe run), on every page
  fast off      trafilatura -> language ID (English >= 0.65): what ccpipe keeps with `langid.precheck: false`
  fast on       language pre-check on the raw HTML text -> trafilatura -> language ID: ccpipe's default
(The quality fast path and the PII fast path do not touch extraction; they are checked for identical
decisions and findings by tests/stages and bench_pii.py.)

Quality, over the pages that `fast off` keeps (English pages; a page the pre-check dropped scores as empty):
  scrapinghub-aeb  word-level F1 of the text against the full gold article text (bag of words)
  trafilatura      share of `gold_with` snippets found in the text and of `gold_without` snippets absent
and over every page for trafilatura alone. Speed: seconds per page of each configuration, single process.

    .venv/bin/python bench/bench_extraction.py [--limit N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from datatrove.data import Document

from stages.extractors.html import Extractor
from stages.filters.langid import PRECHECK_WINDOW, LanguageID, LanguagePrecheck
from stages.readers.payload import decode_html

WORD = re.compile(r"\w+")


def f1(text: str | None, gold: str) -> float:
    got, want = Counter(WORD.findall((text or "").lower())), Counter(WORD.findall(gold.lower()))
    common = sum((got & want).values())
    if not common:
        return 0.0
    precision, recall = common / sum(got.values()), common / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def snippets(text: str | None, page: dict) -> tuple[int, int, int, int]:
    """(with found, with total, without absent, without total); whitespace-normalized substring tests."""
    norm = " ".join((text or "").split())
    with_ = [" ".join(s.split()) for s in page.get("gold_with") or []]
    without = [" ".join(s.split()) for s in page.get("gold_without") or []]
    return (sum(s in norm for s in with_), len(with_), sum(s not in norm for s in without), len(without))


def load_pages(corpus: Path, limit: int | None) -> list[dict]:
    pages = []
    for source in ("scrapinghub-aeb", "trafilatura"):
        with open(corpus / "extraction" / source / "manifest.jsonl", encoding="utf-8") as f:
            for line in list(f)[:limit]:
                page = json.loads(line)
                with gzip.open(corpus / "extraction" / source / page["html_path"]) as h:
                    page["html"] = decode_html(h.read(), None) or ""
                page["source"] = source
                pages.append(page)
    return pages


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Extraction quality and speed, fast paths on vs off.",
                                     epilog="example: .venv/bin/python bench/bench_extraction.py")
    parser.add_argument("--corpus", type=Path,
                        default=Path(os.environ.get("CCPIPE_CORPUS", ROOT.parent / "shared" / "corpus")))
    parser.add_argument("--limit", type=int, default=None, help="pages per source (default: all)")
    parser.add_argument("--precheck-window", type=int, default=PRECHECK_WINDOW,
                        help="characters of the page's text the pre-check scores (0: all of it)")
    args = parser.parse_args(argv)
    for name in ("trafilatura", "htmldate", "courlan", "justext"):
        logging.getLogger(name).setLevel(logging.CRITICAL)

    pages = load_pages(args.corpus, args.limit)
    extractor, lid, precheck = Extractor("/nonexistent"), LanguageID(), LanguagePrecheck(window=args.precheck_window)
    lid.predict("warm up")
    t_traf = t_pre = 0.0
    for page in pages:
        t0 = time.perf_counter()
        page["precheck_pass"] = precheck.filter(Document(text=page["html"], id=page["id"])) is True
        t1 = time.perf_counter()
        try:
            page["text"] = extractor.extract(page["html"]) or None
        except Exception:  # noqa: BLE001 - counted as no text, as the extract stage does
            page["text"] = None
        t2 = time.perf_counter()
        page["t_traf"] = t2 - t1
        t_pre += t1 - t0
        t_traf += t2 - t1
        lang, score = lid.predict(page["text"]) if page["text"] else (None, 0.0)
        page["english"] = lang == "en" and score >= lid.threshold

    configs = {
        "trafilatura": lambda p: p["text"],
        "fast off": lambda p: p["text"] if p["english"] else None,
        "fast on": lambda p: p["text"] if p["english"] and p["precheck_pass"] else None,
    }
    english = [p for p in pages if p["english"]]
    print(f"{len(pages)} pages ({sum(p['source'] == 'scrapinghub-aeb' for p in pages)} scrapinghub-aeb with gold text, "
          f"{sum(p['source'] == 'trafilatura' for p in pages)} trafilatura with snippets); "
          f"{len(english)} English by language ID on trafilatura's text")
    print(f"{'configuration':<13} {'pages':>6} {'kept':>6} {'gold F1':>8} {'with found':>11} {'without absent':>15}")
    for name, output in configs.items():
        scope = pages if name == "trafilatura" else english
        gold = [f1(output(p), p["gold_text"]) for p in scope if p["source"] == "scrapinghub-aeb"]
        snip = [snippets(output(p), p) for p in scope if p["source"] == "trafilatura"]
        w_found, w_total, wo_absent, wo_total = (sum(x[i] for x in snip) for i in range(4))
        kept = sum(output(p) is not None for p in scope)
        print(f"{name:<13} {len(scope):>6} {kept:>6} {sum(gold) / max(len(gold), 1):>8.4f} "
              f"{w_found / max(w_total, 1):>10.2%} {wo_absent / max(wo_total, 1):>14.2%}")
    lost = [p["url"] for p in english if not p["precheck_pass"]]
    skipped = [p for p in pages if not p["precheck_pass"]]
    print(f"pre-check: drops {len(skipped)} of {len(pages)} pages before trafilatura; "
          f"{len(lost)} of them English on trafilatura's text{': ' + ', '.join(lost) if lost else ''}")
    t_on = t_pre + sum(p["t_traf"] for p in pages if p["precheck_pass"])
    print(f"extraction seconds per page: fast off {t_traf / len(pages) * 1000:.1f} ms (trafilatura), fast on "
          f"{t_on / len(pages) * 1000:.1f} ms (pre-check {t_pre / len(pages) * 1000:.1f} ms + trafilatura on the "
          f"pages it passes): {t_traf / t_on:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
