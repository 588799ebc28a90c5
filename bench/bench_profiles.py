"""FineWeb-2's quality filters per language: ccpipe's one pass (`quality.fast`) vs datatrove's three filters.

    .venv/bin/python bench/bench_profiles.py [--language zh --input ../shared/corpus/warc/zh]

Collects the texts that reach ccpipe's quality stage for the language (the base phase's steps before it, in
this process), then times, on the same texts, ccpipe's QualityFilters with the language's profile and
datatrove's GopherRepetition -> FineWebQuality -> GopherQuality configured as fineweb-2-pipeline.py does
(each filter splitting words itself; datatrove remembers the last 5 texts' words). Word segmenters are warmed
up first (jieba loads its dictionary in ~1 s). Prints documents, kept, mismatches and ms per document.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stages.filters.quality import QualityFilters  # noqa: E402
from stages.recipes.profiles import resolve_profiles  # noqa: E402
from tests.fixtures import make_doc  # noqa: E402
from tests.stages.recipes.test_profiles import datatrove_decision, texts_reaching_quality  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--language", default="zh")
    parser.add_argument("--input", default="../shared/corpus/warc/zh")
    parser.add_argument("--rounds", type=int, default=2, help="timing rounds, averaged")
    args = parser.parse_args()
    files = sorted(str(p) for p in Path(args.input).glob("*.warc.gz"))
    profile = resolve_profiles((args.language,))[args.language]
    texts = [d.text for d in texts_reaching_quality([args.language], files) if d.metadata["language"] == args.language]
    q = QualityFilters(profiles={args.language: profile})
    ours = lambda t: q.filter(make_doc(t, language=args.language))  # noqa: E731
    theirs = lambda t: datatrove_decision(profile, t)  # noqa: E731
    ours(texts[0]), theirs(texts[0])  # warm the segmenters
    mismatches = sum(ours(t) != theirs(t) for t in texts)
    kept = sum(ours(t) is True for t in texts)
    print(f"{args.language} ({profile.label}): {len(texts)} documents reach quality, {kept} kept, {mismatches} mismatches")
    # interleaved document by document: on a shared machine the load changes between two separate loops
    spent = {"ccpipe one pass": 0.0, "datatrove FineWeb-2 chain": 0.0}
    for _ in range(args.rounds):
        for t in texts:
            for name, fn in (("ccpipe one pass", ours), ("datatrove FineWeb-2 chain", theirs)):
                start = time.perf_counter()
                fn(t)
                spent[name] += time.perf_counter() - start
    for name, seconds in spent.items():
        print(f"  {name:<26} {seconds / args.rounds / len(texts) * 1000:7.2f} ms/doc")


if __name__ == "__main__":
    main()
