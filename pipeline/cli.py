"""The `ccpipe` command line: a thin layer that parses arguments, calls library functions and turns their
errors into one clear message and a non-zero exit (2: bad config or arguments, 1: the run failed)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# modules that add their own subcommands through `add_commands(subparsers)`; each imports its heavy
# dependencies inside its command functions, so `ccpipe --help` stays fast
COMMAND_MODULES = ("pipeline.audit", "pipeline.release", "pipeline.trainer", "pipeline.status")

EPILOG_RUN = """example:
  ccpipe run --input ../shared/corpus/warc/bench --output out/bench \\
      --tokenizer ../shared/corpus/tokenizers/gpt2/gpt2.tiktoken --workers 2"""


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.config import ConfigError, load_config
    from pipeline.inputs import InputError
    from pipeline.run import RunError, quiet_console, run_pipeline
    from pipeline.summary import funnel_table
    from stages.tokenize import TokenizerError

    overrides: dict = {}
    if args.workers is not None:
        overrides.setdefault("run", {})["workers"] = args.workers
    if args.max_records is not None:
        overrides.setdefault("input", {})["max_records"] = args.max_records
    if args.tokenizer is not None:
        overrides.setdefault("tokenizer", {})["name"] = args.tokenizer
    try:
        config = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"ccpipe: config error: {exc}", file=sys.stderr)
        return 2
    quiet_console()
    try:
        summary = run_pipeline(config, args.input, args.output, progress=not args.no_progress)
    except (InputError, TokenizerError) as exc:
        print(f"ccpipe: {exc}", file=sys.stderr)
        return 2
    except RunError as exc:
        print(f"ccpipe: {exc}", file=sys.stderr)
        return 1
    print(funnel_table(summary))
    print(f"wrote {args.output}/summary.json ({summary['elapsed_seconds']:.1f} s)")
    for error in summary["errors"]:
        print(f"ccpipe: {error['error']}", file=sys.stderr)
    if summary["errors"] and len(summary["errors"]) == summary["files"]:
        print("ccpipe: no input file could be read", file=sys.stderr)
        return 1
    if not summary["conservation_ok"]:
        print("ccpipe: the ledger does not add up (records read, ledger rows, kept + dropped, tokens): "
              "see summary.json", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ccpipe",
        description="Common Crawl WARC files to training-ready token shards (parquet + llm.c .bin), the FineWeb way.",
        epilog="example:\n  ccpipe run --input CC-MAIN-2024-22.warc.gz --output out/ --max-records 1000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser(
        "run", help="run the pipeline on WARC files",
        description="Read WARC files, filter, deduplicate, scrub PII, tokenize; write parquet and .bin shards "
                    "and summary.json to --output. Rerunning the same command resumes an interrupted run.",
        epilog=EPILOG_RUN, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", help="YAML config file (defaults reproduce FineWeb's recipe)")
    run.add_argument("--input", nargs="+", required=True, metavar="PATH",
                     help="WARC files, directories, globs, s3:// or https:// URLs, or a warc.paths.gz listing")
    run.add_argument("--output", required=True, metavar="DIR", help="run directory (created; resumed if it holds this run)")
    run.add_argument("--workers", type=int, help="parallel worker processes (output does not depend on it)")
    run.add_argument("--max-records", type=int, help="stop each WARC file after N response records")
    run.add_argument("--tokenizer", metavar="NAME_OR_PATH",
                     help="'gpt2' (default), a .tiktoken vocabulary or a Hugging Face tokenizer.json")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.set_defaults(func=cmd_run)
    for module in COMMAND_MODULES:
        try:
            importlib.import_module(module).add_commands(sub)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "no_progress", False):
        # also datatrove's own bars; tqdm reads this when first imported, so before any pipeline import
        os.environ["TQDM_DISABLE"] = "1"
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
