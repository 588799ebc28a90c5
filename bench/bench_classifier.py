"""The quality classifier's cost per document (stages/filters/classifier.py), against datatrove's
FastTextClassifierFilter with the same model and threshold, and their agreement. Run by hand:

    .venv/bin/python bench/bench_classifier.py [--run out/bench] [--docs 2000] [--dim 256] [--bucket 1000000]
                                               [--repeat 3]

The model is trained here, as the tests do, from ../shared/corpus/extraction (gold article texts against whole
pages; bigrams, dim 256 as DCLM's) and timed on bench's texts: the documents a run kept
(`--run`, its parquet) or else the visible text of the bench WARCs' HTML pages (longer than extracted text:
an upper bound). CPU seconds (user + sys) of this process, best of --repeat, both sides in the same run.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = Path(os.environ.get("CCPIPE_CORPUS", ROOT.parent / "shared" / "corpus"))

from datatrove.data import Document  # noqa: E402
from datatrove.pipeline.filters import FastTextClassifierFilter  # noqa: E402
from fasttext.FastText import _FastText  # noqa: E402
from warcio.archiveiterator import ArchiveIterator  # noqa: E402

from pipeline.classifier.train import TrainSettings, read_texts, train  # noqa: E402
from stages.filters.classifier import QualityClassifier  # noqa: E402
from stages.filters.langid import html_text  # noqa: E402
from tests.fixtures import classifier_examples  # noqa: E402


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def page_texts(limit: int) -> list[str]:
    texts = []
    for warc in sorted((CORPUS / "warc" / "bench").glob("*.warc.gz")):
        with open(warc, "rb") as f:
            for record in ArchiveIterator(f):
                headers = record.http_headers
                if record.rec_type == "response" and headers and "html" in (headers.get_header("Content-Type") or ""):
                    text = html_text(record.content_stream().read().decode("utf-8", "replace"))
                    if text.strip():
                        texts.append(text)
                if len(texts) >= limit:
                    return texts
    return texts


def timed(step, texts: list[str], repeat: int) -> tuple[float, list[bool]]:
    best, decisions = float("inf"), []
    for _ in range(repeat):
        docs = [Document(text=t, id=str(i), metadata={}) for i, t in enumerate(texts)]
        start = cpu()
        decisions = [step.filter(d) is True for d in docs]
        best = min(best, cpu() - start)
    return best, decisions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a ccpipe run directory: time on the documents it kept")
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--bucket", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        positive, negative = classifier_examples(CORPUS, Path(tmp))
        model = Path(tmp) / "model.bin"
        start = cpu()
        # a small set needs more passes than DCLM's 3; 1 M buckets: a ~1 GB model at dim 256, DCLM's size
        held = train([str(positive)], [str(negative)], model,
                     TrainSettings(dim=args.dim, epoch=20, lr=0.5, bucket=args.bucket))
        train_s = cpu() - start
        texts = (read_texts(args.run) if args.run else page_texts(args.docs))[:args.docs]
        ours = QualityClassifier(str(model))
        threshold = statistics.median(ours.score(t) for t in texts)  # half kept, half dropped
        ours = QualityClassifier(str(model), threshold=threshold)
        theirs = FastTextClassifierFilter(str(model), keep_labels=("hq", threshold), newline_replacement=" ")
        theirs._model = _FastText(str(model))  # as its `model` property loads it, without copying it to ~/.cache
        ours.filter(Document(text="warm up", id="w")), theirs.filter(Document(text="warm up", id="w"))
        ours_s, ours_d = timed(ours, texts, args.repeat)
        theirs_s, theirs_d = timed(theirs, texts, args.repeat)
        chars = sum(map(len, texts))
        print(f"model: dim {args.dim}, {model.stat().st_size / 1e6:.1f} MB, trained in {train_s:.1f} CPU s "
              f"(held-out precision {held['precision']:.3f}, recall {held['recall']:.3f})")
        print(f"texts: {len(texts):,} ({'kept documents of ' + args.run if args.run else 'bench HTML pages'}), "
              f"{chars / len(texts):,.0f} characters on average; threshold {threshold:.4f} (the median score)")
        print(f"{'step':<36} {'CPU s':>7} {'us/doc':>8} {'MB/s':>6}")
        for name, s in (("ccpipe QualityClassifier", ours_s), ("datatrove FastTextClassifierFilter", theirs_s)):
            print(f"{name:<36} {s:>7.3f} {s / len(texts) * 1e6:>8.0f} {chars / s / 1e6:>6.1f}")
        same = sum(a == b for a, b in zip(ours_d, theirs_d))
        print(f"same decision: {same:,} of {len(texts):,}; kept {sum(ours_d):,}")


if __name__ == "__main__":
    main()
