"""What `pii.ner` costs: the PII stage per document with and without a spaCy NER model.

Without NER the stage runs presidio's regex recognizers on the few lines that can hold a pattern (most
documents skip presidio entirely: bench_pii.py); with NER every document goes through the spaCy pipeline in
full. The model: `--model PATH` (any spaCy pipeline with an `ner` component), else the small one the tests
train from ../shared/corpus/pii (tests/ner_model.py: width 64, depth 2; ~15-25 s to train). A production
model (en_core_web_sm/md/lg, or a transformer) is slower than that small one: measure it with --model.

Corpora: web (gold_text of the 181 scrapinghub-aeb articles, ~800k characters), synth (1,500 sentences).

Run by hand, e.g.:
  .venv/bin/python bench/bench_ner.py --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stages.pii.scrub import PIIScrubber


def best_time(fn, docs: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for d in docs:
            fn(d)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="PII stage cost per document with and without pii.ner.",
                                     epilog="example: .venv/bin/python bench/bench_ner.py --repeat 2")
    parser.add_argument("--corpus", type=Path,
                        default=Path(os.environ.get("CCPIPE_CORPUS", ROOT.parent / "shared" / "corpus")))
    parser.add_argument("--model", help="a spaCy pipeline (name or path) with an ner component; default: train "
                        "the tests' small model")
    parser.add_argument("--repeat", type=int, default=2, help="passes per measurement; the best is kept")
    args = parser.parse_args(argv)

    from tests import ner_model

    with open(args.corpus / "extraction" / "scrapinghub-aeb" / "manifest.jsonl", encoding="utf-8") as f:
        web = [t for t in (json.loads(line).get("gold_text") for line in f) if t]
    synth = [s["text"] for s in ner_model.load_sentences(args.corpus)]
    model = args.model
    scratch = tempfile.TemporaryDirectory(prefix="bench-ner-")
    if model is None:
        model = str(Path(scratch.name) / "model")
        t0 = time.perf_counter()
        ner_model.train(ner_model.split(ner_model.load_sentences(args.corpus))[0], Path(model), epochs=4)
        print(f"trained the tests' small NER model in {time.perf_counter() - t0:.1f} s: {model}")

    plain, ner = PIIScrubber(), PIIScrubber(ner_model=model, ner_entities=["PERSON"])
    for s in (plain, ner):
        s.scrub("warm up 8.8.8.8 a@b.com, says John Smith")
    print(f"{'corpus':7} {'docs':>5} {'chars':>9} {'no NER ms/doc':>14} {'NER ms/doc':>11} {'ratio':>7} "
          f"{'NER Mchar/s':>12} {'PERSON found':>13}")
    for name, docs in (("web", web), ("synth", synth)):
        t_plain = best_time(plain.scrub, docs, args.repeat)
        t_ner = best_time(ner.scrub, docs, args.repeat)
        persons = sum(f.entity_type == "PERSON" for d in docs for f in ner.scrub(d)[1])
        chars = sum(map(len, docs))
        print(f"{name:7} {len(docs):5d} {chars:9d} {1000 * t_plain / len(docs):14.2f} "
              f"{1000 * t_ner / len(docs):11.2f} {t_ner / t_plain:6.1f}x {chars / t_ner / 1e6:12.3f} {persons:13d}")
    print("ratio = time with NER / time without; one process, one thread")
    scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
