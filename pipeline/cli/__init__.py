"""The `ccpipe` command line: a thin layer that parses arguments, calls library functions and turns their
errors into one clear message and a non-zero exit (2: bad config or arguments, 1: the run failed)."""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys

import pipeline
from pipeline.plan.configfile import ConfigFileError, read_config_file
from stages.utils import patches
from stages.utils.stack import run_deep

# each command and its module, which adds it through `add_commands(subparsers)`; imported by name once
# TQDM_DISABLE is set (tqdm reads it when first imported, and every command module brings it in), and only the
# command's own: `ccpipe run` imported the audit, release and train modules too (~5% of its ~0.8 s of imports)
COMMANDS = {"run": "pipeline.cli.run", "status": "pipeline.cli.run", "finalize": "pipeline.cli.run",
            "audit": "pipeline.cli.audit", "blocklist": "pipeline.cli.blocklist", "release": "pipeline.cli.release",
            "train-smoke": "pipeline.cli.train", "classifier": "pipeline.cli.classifier"}
COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or with `command` (one of `COMMANDS`), of the commands of its module only."""
    parser = argparse.ArgumentParser(
        prog="ccpipe",
        description="Common Crawl WARC files to training-ready token shards (parquet + llm.c .bin), the FineWeb way.",
        epilog="example:\n  ccpipe run --input CC-MAIN-2024-22.warc.gz --output out/ --max-records 1000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ccpipe {pipeline.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (COMMANDS[command],) if command in COMMANDS else COMMAND_MODULES:
        importlib.import_module(module).add_commands(sub)
    return parser


def config_file_problem(argv: list[str]) -> str | None:
    """The one-line error of a `--config` file that is no YAML mapping (too large, not UTF-8, an alias bomb,
    a list), found before the command modules import datatrove, spaCy and the rest: 0.1 s and ~30 MB instead
    of ~2.3 s and ~140 MB. A file that reads well is validated again, in full, by the command itself."""
    for i, arg in enumerate(argv):
        path = arg.partition("=")[2] if arg.startswith("--config=") else (
            argv[i + 1] if arg == "--config" and i + 1 < len(argv) else None)
        if path is None:
            continue
        try:
            read_config_file(path)
        except OSError as exc:
            return f"{path}: cannot read the config file ({exc.strerror})"
        except ConfigFileError as exc:
            return f"{path}: {exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    return run_deep(_main, sys.argv[1:] if argv is None else argv)


def _main(argv: list[str]) -> int:
    if (problem := config_file_problem(argv)) is not None:
        print(f"ccpipe: config error: {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # a library that sets its own logger to DEBUG (jieba) would
        handler.setLevel(logging.WARNING)  # propagate every record here, in each worker forked from this process
    if "--no-progress" in argv:
        # also datatrove's own bars; tqdm reads this when first imported, so before the command modules
        # (which build_parser imports) bring in datatrove
        os.environ["TQDM_DISABLE"] = "1"
    # the command: the first word (the only options before it are --help and --version); none or another
    # word: every command's parser, for the list of commands or argparse's "invalid choice"
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    # no garbage collection while the command's modules import (datatrove, numpy, pydantic, pyarrow, ...): they
    # make ~150,000 objects that all live as long as the process, and the collector walked them over and over,
    # a full collection included (~60 ms of `ccpipe run`'s ~0.75 s of imports). Then frozen: later collections,
    # this process's and its forked workers', skip them, the last one at exit too (~0.2 s). Once per process (a
    # second call imports nothing new, and would freeze whatever garbage was waiting). Nothing a command writes
    # depends on collection times.
    first = gc.get_freeze_count() == 0
    gc.disable()
    try:
        args = build_parser(command).parse_args(argv)
    finally:
        if first:
            gc.freeze()
        gc.enable()
    patches.apply()  # before any step is built: datatrove checks each step's dependencies as it is made
    try:
        return args.func(args)
    except BrokenPipeError:  # `ccpipe audit ... | head`: the reader left, which is no error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:  # `ccpipe run` says what was done itself; the other commands have nothing to resume
        print("\nccpipe: interrupted", file=sys.stderr)
        return 130


