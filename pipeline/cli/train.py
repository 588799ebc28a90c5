"""`ccpipe train-smoke RELEASE`: does a release train? (pipeline/train/smoke.py)"""

from __future__ import annotations

import argparse
import sys

from pipeline.finalize.shards import ShardError
from pipeline.release.manifest import ReleaseError
from pipeline.train.smoke import train_smoke

EPILOG = """Exit codes: 0 the validation loss fell; 1 it did not; 2 no release, no PyTorch or shards too small.

example:
  ccpipe train-smoke releases/bench-1.0.0 --steps 200 --device auto"""


def cmd_train_smoke(args: argparse.Namespace) -> int:
    try:
        import torch
    except ImportError:
        print("ccpipe: train-smoke needs PyTorch: pip install 'ccpipe[train]'", file=sys.stderr)
        return 2
    for option, value in (("--steps", args.steps), ("--batch-size", args.batch_size), ("--context", args.context),
                          ("--threads", args.threads)):
        if value < 1:
            print(f"ccpipe: {option} {value}: expected at least 1", file=sys.stderr)
            return 2
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"ccpipe: --device {args.device}: this PyTorch sees no CUDA device (use --device auto or cpu)",
              file=sys.stderr)
        return 2
    try:
        history = train_smoke(args.release_dir, args.steps, args.device, batch_size=args.batch_size,
                              context=args.context, seed=args.seed, threads=args.threads, language=args.language)
    except (ReleaseError, ShardError) as exc:
        print(f"ccpipe: {exc}", file=sys.stderr)
        return 2
    first, last = history["val_loss"][0], history["val_loss"][args.steps]
    print(f"validation loss {first:.3f} -> {last:.3f}")
    if last >= first:
        print("ccpipe: train-smoke: the validation loss did not fall", file=sys.stderr)
        return 1
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("train-smoke", help="train a tiny GPT on a release for a few steps",
                       description="Train a GPT of ~235k parameters on a release's .bin shards through "
                                   "pipeline.train.loader, printing train and validation loss: a smoke test of the "
                                   "trainer hand-off. Needs PyTorch (pip install 'ccpipe[train]').",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("release_dir", metavar="RELEASE_DIR")
    p.add_argument("--steps", type=int, default=200, help="training steps (default 200)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available, else CPU), cpu, cuda, cuda:1, ...")
    p.add_argument("--batch-size", type=int, default=16, metavar="B", help="sequences per step (default 16)")
    p.add_argument("--context", type=int, default=64, metavar="T", help="tokens per sequence (default 64)")
    p.add_argument("--language", help="which language's shards (default: the first)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for PyTorch (default 1: a model this small gains nothing from more)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train_smoke)
