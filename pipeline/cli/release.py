"""`ccpipe release build|verify|diff`: dataset releases anyone can verify."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from pipeline.core.errors import Refused, RunError
from pipeline.engines.local import quiet_console
from pipeline.plan.config import ConfigError, load_config
from pipeline.plan.inputs import InputError
from pipeline.release.build import build_release, check_release_output
from pipeline.release.card import SPLITS
from pipeline.release.diff import diff_manifests, format_diff
from pipeline.release.manifest import ReleaseError, read_manifest
from pipeline.release.verify import verify_release
from pipeline.run import run_pipeline
from stages.tokens.tokenize import TokenizerError

EPILOG_RELEASE = """example:
  ccpipe release build out/bench --name bench --version 1.0.0 --output releases/bench-1.0.0"""


EPILOG_BUILD = """A release directory is immutable: building into an existing one is refused.

example:
  ccpipe release build out/bench --name bench --version 1.0.0 --output releases/bench-1.0.0 \\
      --validation-fraction 0.1 --workers 2"""


EPILOG_VERIFY = """Exit codes: 0 everything agrees; 1 a mismatch (each printed as `file: what differs`); 2 no release.

example:
  ccpipe release verify releases/bench-1.0.0"""


EPILOG_DIFF = """example:
  ccpipe release diff releases/bench-1.0.0 releases/bench-1.1.0"""


def cmd_build(args: argparse.Namespace) -> int:
    if bool(args.run_dir) == bool(args.input):
        print("ccpipe: release build: give a finished RUN_DIR, or --input (and --config) to run first", file=sys.stderr)
        return 2
    try:
        check_release_output(args.output)
    except ReleaseError as exc:
        print(f"ccpipe: {exc}", file=sys.stderr)
        return 2
    options = {"name": args.name, "version": args.version, "validation_fraction": args.validation_fraction,
               "shard_tokens": args.shard_tokens, "workers": args.workers, "tokenizer": args.tokenizer,
               "license": args.license}
    run_dir, temporary = args.run_dir, None
    try:
        if args.input:
            overrides = {"run": {"workers": args.workers}}
            if args.tokenizer:
                overrides["tokenizer"] = {"name": args.tokenizer}
            config = load_config(args.config, overrides)
            quiet_console()
            run_dir = args.keep_run
            if run_dir is None:  # beside the release: same disk, removed at the end
                parent = Path(args.output).resolve().parent
                parent.mkdir(parents=True, exist_ok=True)
                run_dir = temporary = tempfile.mkdtemp(prefix=".ccpipe-run-", dir=parent)
            run_pipeline(config, args.input, run_dir, progress=not args.no_progress)
        manifest = build_release(run_dir, args.output, **options)
    except (ReleaseError, ConfigError, InputError, TokenizerError, Refused) as exc:  # Refused: --keep-run is live
        print(f"ccpipe: {exc}", file=sys.stderr)
        return 2
    except RunError as exc:
        print(f"ccpipe: {exc}", file=sys.stderr)
        return 1
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
    t = manifest["totals"]
    for split in SPLITS:
        group = t["by_split"][split]
        print(f"{split:<11} {group['documents']:>9,} documents {group['tokens']:>13,} tokens")
    print(f"wrote {args.output}: {t['files']} files, {t['bytes']:,} bytes, MANIFEST.json, README.md")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        problems = verify_release(args.release_dir)
    except ReleaseError as exc:
        print(f"ccpipe: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"ccpipe: release verify: {len(problems)} problem(s) in {args.release_dir}", file=sys.stderr)
        return 1
    t = read_manifest(args.release_dir)["totals"]
    print(f"OK {args.release_dir}: {t['files']} files, {t['documents']:,} documents, {t['tokens']:,} tokens verified")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    try:
        d = diff_manifests(read_manifest(args.old), read_manifest(args.new))
    except ReleaseError as exc:
        print(f"ccpipe: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(d, indent=2, sort_keys=True) if args.json else format_diff(d))
    return 0


def add_commands(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    release = sub.add_parser("release", help="build, verify and compare dataset releases",
                             description="Versioned, verifiable dataset releases: parquet and .bin shards with a "
                                         "train/validation split, MANIFEST.json and a dataset card.",
                             epilog=EPILOG_RELEASE, formatter_class=fmt)
    commands = release.add_subparsers(dest="release_command", required=True, metavar="COMMAND")
    build = commands.add_parser("build", help="package a finished run (or run and package) into a release",
                                description="Package a finished run into an immutable release directory: parquet "
                                            "and .bin shards split by document hash, MANIFEST.json, README.md. With "
                                            "--input (and --config), run the pipeline first.",
                                epilog=EPILOG_BUILD, formatter_class=fmt)
    build.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a finished `ccpipe run` output directory")
    build.add_argument("--name", required=True, help="dataset name (letters, digits, '.', '_', '-')")
    build.add_argument("--version", required=True, metavar="X.Y.Z", help="release version")
    build.add_argument("--output", required=True, metavar="RELEASE_DIR", help="release directory (must not exist)")
    build.add_argument("--validation-fraction", type=float, default=0.01, metavar="F",
                       help="share of documents in validation, by hash of their text (default 0.01)")
    build.add_argument("--shard-tokens", type=int, metavar="N",
                       help="tokens per training .bin shard (default: the run's output.shard_tokens)")
    build.add_argument("--workers", type=int, default=1, help="parallel processes (the release does not depend on it)")
    build.add_argument("--license", default="odc-by", help="license in the card (default odc-by, as FineWeb)")
    build.add_argument("--tokenizer", metavar="PATH", help="vocabulary, when the run's work/tokens are gone or to run")
    build.add_argument("--config", help="with --input: YAML config of the run")
    build.add_argument("--input", nargs="+", metavar="PATH", help="run the pipeline on these WARC inputs first")
    build.add_argument("--keep-run", metavar="DIR", help="with --input: keep the run in DIR (default: a temporary one)")
    build.add_argument("--no-progress", action="store_true", help="no progress bars")
    build.set_defaults(func=cmd_build)
    verify = commands.add_parser("verify", help="recompute every checksum and count of a release",
                                 description="Recompute checksums, parquet schema, .bin headers and sizes, per-file "
                                             "and total counts, the split, and card/manifest agreement.",
                                 epilog=EPILOG_VERIFY, formatter_class=fmt)
    verify.add_argument("release_dir", metavar="RELEASE_DIR")
    verify.set_defaults(func=cmd_verify)
    diff = commands.add_parser("diff", help="what changed between two releases",
                               description="Counts, tokens, funnel, config, version and file differences between "
                                           "two releases.", epilog=EPILOG_DIFF, formatter_class=fmt)
    diff.add_argument("old", metavar="OLD")
    diff.add_argument("new", metavar="NEW")
    diff.add_argument("--json", action="store_true", help="the differences as JSON")
    diff.set_defaults(func=cmd_diff)
