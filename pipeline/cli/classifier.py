"""`ccpipe classifier train`: a fastText quality classifier (pipeline/classifier/train.py)."""

from __future__ import annotations

import argparse
import sys

from pipeline.classifier.train import TrainError, TrainSettings, train

EPILOG = """The model goes into a run's config as `quality.classifier.model`; its score is in the ledger's `quality`
map as `classifier_score` for every document that reaches it.

example:
  ccpipe classifier train --positive wiki.jsonl eli5.parquet --negative out/bench -o quality.bin"""


def cmd_train(args: argparse.Namespace) -> int:
    if not 0.0 <= args.holdout < 1.0:
        print(f"ccpipe: --holdout {args.holdout}: expected a share in [0, 1)", file=sys.stderr)
        return 2
    settings = TrainSettings(label=args.label, seed=args.seed, holdout=args.holdout, epoch=args.epoch, dim=args.dim,
                             lr=args.lr, word_ngrams=args.word_ngrams, bucket=args.bucket)
    try:
        result = train(args.positive, args.negative, args.output, settings)
    except TrainError as exc:
        print(f"ccpipe: {exc}", file=sys.stderr)
        return 2
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731 - no held-out example of the label
    print(f"trained on {result['train']} examples ({result['positive']} positive, {result['negative']} negative in "
          f"all); held out {result['held_out']}: precision {fmt(result['precision'])}, recall {fmt(result['recall'])}")
    print(f"wrote {args.output}")
    return 0


def add_commands(sub) -> None:
    group = sub.add_parser("classifier", help="train a fastText quality classifier (DCLM's approach)",
                           description="A quality classifier for `quality.classifier`.",
                           epilog="example:\n  ccpipe classifier train --positive good.jsonl --negative out/bench "
                                  "-o q.bin",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    cmds = group.add_subparsers(dest="classifier_command", required=True, metavar="COMMAND")
    p = cmds.add_parser("train", help="train from positive examples against a run's kept documents or files",
                        description="Trains a fastText supervised model (`__label__hq` vs `__label__cc`, word "
                                    "bigrams, one thread, seeded: the same inputs give the same model) and prints "
                                    "precision and recall on a held-out share. Inputs: JSONL with a `text` field, "
                                    "parquet with a `text` column, or a ccpipe run directory (its kept documents).",
                        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--positive", nargs="+", required=True, metavar="FILE", help="JSONL or parquet files of good text")
    p.add_argument("--negative", nargs="+", required=True, metavar="RUN_OR_FILE",
                   help="ccpipe run directories (their kept documents), JSONL or parquet files")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="where to write the model (.bin)")
    p.add_argument("--label", default="hq", help="the positive label (default hq; negatives are cc)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--holdout", type=float, default=0.1, help="share held out for precision/recall (default 0.1)")
    p.add_argument("--epoch", type=int, default=3, help="default 3 (DCLM)")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1, DCLM; small sets want more)")
    p.add_argument("--dim", type=int, default=256, help="default 256 (DCLM)")
    p.add_argument("--word-ngrams", type=int, default=2, help="default 2 (DCLM)")
    p.add_argument("--bucket", type=int, default=2_000_000,
                   help="n-gram hash buckets (default 2,000,000: a 2 GB model at dim 256; fewer for small sets)")
    p.set_defaults(func=cmd_train)
