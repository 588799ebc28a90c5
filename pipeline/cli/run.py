"""`ccpipe run`, `ccpipe status`, `ccpipe finalize`: running a pipeline and following it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.core.errors import Interrupted, Refused, RunError
from pipeline.core.layout import RunLayout, run_root
from pipeline.engines.local import quiet_console
from pipeline.finalize.finish import finalize_dir
from pipeline.finalize.summary import funnel_table
from pipeline.plan.checks import check_config, notices
from pipeline.plan.config import ConfigError, as_written, load_config
from pipeline.plan.inputs import InputError
from pipeline.run import plan_pipeline, run_pipeline, submit_pipeline
from pipeline.status import format_status, run_status
from stages.tokens.tokenize import TokenizerError

EPILOG_STATUS = """example:
  ccpipe status out/bench"""
EPILOG_FINALIZE = """example:
  ccpipe finalize /shared/runs/CC-MAIN-2024-22"""

EPILOG_RUN = """on a cluster (see README, "Running on a cluster"):
  ccpipe run --executor slurm --partition cpu --input warc.paths.gz --output /shared/run --dry-run
  ccpipe run --executor ray --ray-address auto --input warc.paths.gz --output s3://bucket/run

another recipe, from a run's extracted text (README, "Changing the recipe"):
  ccpipe run --reuse out/bench --config new.yaml --output out/bench-new

example configs: pipeline/examples/*.yaml (README, "Example configs")

example:
  ccpipe run --input ../shared/corpus/warc/bench --output out/bench \\
      --tokenizer ../shared/corpus/tokenizers/gpt2/gpt2.tiktoken --workers 2
  ccpipe run --input ../shared/corpus/warc/zh --output out/enzh --languages zh,en --tokenizer cl100k_base"""


def cmd_run(args: argparse.Namespace) -> int:
    overrides: dict = {}
    if args.workers is not None:
        overrides.setdefault("run", {})["workers"] = args.workers
    if args.max_records is not None:
        overrides.setdefault("input", {})["max_records"] = args.max_records
    if args.tokenizer is not None:
        overrides.setdefault("tokenizer", {})["name"] = args.tokenizer
    if args.strict:
        overrides.setdefault("run", {})["strict"] = True
    if args.languages is not None:  # "zh,en" or "zh en": lid.176's labels
        overrides.setdefault("langid", {})["languages"] = [x for x in args.languages.replace(",", " ").split() if x]
    if args.recipe is not None:
        overrides["recipe"] = args.recipe
    if args.shard_tokens is not None:
        overrides.setdefault("output", {})["shard_tokens"] = args.shard_tokens
    _engine_overrides(args, overrides)
    try:
        config = load_config(args.config, overrides, FLAGS)
        check_config(config)
    except ConfigError as exc:
        print(f"ccpipe: config error: {as_written(exc, args.config, overrides, FLAGS)}", file=sys.stderr)
        return 2
    if not args.input and not args.reuse:
        print("ccpipe: --input: required (or --reuse RUN, which reads that run's inputs)", file=sys.stderr)
        return 2
    quiet_console()
    if not args.dry_run:
        for line in notices(config):
            print(f"ccpipe: note: {line}", file=sys.stderr)
    try:
        if args.dry_run:
            print(plan_pipeline(config, args.input, args.output, reuse=args.reuse), end="")
            return 0
        if config.run.executor == "slurm":
            layout, jobs = submit_pipeline(config, args.input, args.output, reuse=args.reuse)
            print("submitted to Slurm: " + ", ".join(f"{name} {job}" for name, job in jobs.items() if job != -1))
            print(f"follow it with: ccpipe status {layout.root}")
            return 0
        summary = run_pipeline(config, args.input, args.output, progress=not args.no_progress, reuse=args.reuse)
    except (InputError, TokenizerError, Refused) as exc:
        print(f"ccpipe: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"\nccpipe: {exc}", file=sys.stderr)
        return 130  # as a shell reports a command stopped by Ctrl-C (128 + SIGINT)
    except RunError as exc:
        print(f"ccpipe: {exc}", file=sys.stderr)
        return 1
    return _report(summary, args.output, config.run.strict)


def _report(summary: dict, output: str, strict: bool) -> int:
    print(funnel_table(summary))
    print(f"wrote {output}/summary.json ({summary['elapsed_seconds']:.1f} s)")
    for error in summary["errors"]:
        print(f"ccpipe: {error['error']}", file=sys.stderr)
    if summary.get("run_failed"):
        print(f"ccpipe: the run failed: {summary['run_failed']}", file=sys.stderr)
        return 1
    if summary["errors"] and strict:
        print(f"ccpipe: --strict: {len(summary['errors'])} file(s) had errors", file=sys.stderr)
        return 1
    if not summary["conservation_ok"]:
        print("ccpipe: the ledger does not add up (records read, ledger rows, kept + dropped, tokens): "
              "see summary.json", file=sys.stderr)
        return 1
    return 0


# --flag -> key under `run.` in the config: each engine's knobs, also settable in the config file
ENGINE_FLAGS = {
    "executor": "executor", "random_start": "random_start_seconds", "work_dir": "work_dir",
    "partition": "slurm.partition", "time": "slurm.time", "array_throttle": "slurm.array_throttle",
    "sbatch_arg": "slurm.sbatch_args", "venv": "slurm.venv", "container": "slurm.container",
    "ray_address": "ray.address",
    # per task, for whichever cluster engine runs
    "cpus_per_task": ("slurm.cpus_per_task", "ray.cpus_per_task"),
    "mem_per_task_gb": ("slurm.mem_per_task_gb", "ray.mem_per_task_gb"),
}


# config key -> the flag that sets it, so an error names what the user wrote (`--workers`, not `run.workers`)
FLAGS = {"run.workers": "--workers", "input.max_records": "--max-records", "tokenizer.name": "--tokenizer",
         "langid.languages": "--languages", "recipe": "--recipe", "output.shard_tokens": "--shard-tokens"} | {
    f"run.{key}": "--" + dest.replace("_", "-")
    for dest, keys in ENGINE_FLAGS.items() for key in ((keys,) if isinstance(keys, str) else keys)}


def _engine_overrides(args: argparse.Namespace, overrides: dict) -> None:
    run = overrides.setdefault("run", {})
    for dest, keys in ENGINE_FLAGS.items():
        value = getattr(args, dest, None)
        if value is None or value == []:
            continue
        for key in (keys,) if isinstance(keys, str) else keys:
            *sections, name = key.split(".")
            target = run
            for section in sections:
                target = target.setdefault(section, {})
            target[name] = value
    if not run:
        del overrides["run"]


def _add_engine_arguments(run: argparse.ArgumentParser) -> None:
    engine = run.add_argument_group("where it runs (also run.* in the config file)")
    engine.add_argument("--executor", choices=("local", "slurm", "ray"),
                        help="local processes (default), Slurm job arrays with dependencies, or a Ray cluster")
    engine.add_argument("--dry-run", action="store_true",
                        help="print what would run or be submitted (sbatch scripts, Ray task plan); run nothing")
    engine.add_argument("--random-start", type=int, metavar="SECONDS",
                        help="each task first sleeps 0..SECONDS, so thousands of tasks do not hit a bucket at once")
    engine.add_argument("--work-dir", metavar="DIR",
                        help="logs and intermediate files when --output is a URL (shared by all nodes on a cluster)")
    engine.add_argument("--cpus-per-task", type=int, help="Slurm/Ray: CPUs per task")
    engine.add_argument("--mem-per-task-gb", type=float, help="Slurm/Ray: memory per task, GB")
    engine.add_argument("--partition", help="Slurm partition")
    engine.add_argument("--time", help="Slurm time limit per task (HH:MM:SS)")
    engine.add_argument("--array-throttle", type=int, metavar="N", help="Slurm: at most N array tasks at once")
    engine.add_argument("--sbatch-arg", action="append", default=[], metavar="OPTION",
                        help="extra sbatch option, repeatable (--sbatch-arg=--account=cc)")
    engine.add_argument("--venv", help="Slurm: virtualenv to activate in each job (default: this one)")
    engine.add_argument("--container", metavar="IMAGE", help="Slurm: run tasks in IMAGE (srun --container-image)")
    engine.add_argument("--ray-address", metavar="ADDR", help="Ray: cluster address (default: a local Ray instance)")


def _run_dir(arg: str) -> Path:
    return run_root(arg, None)[0]  # a URL: the default work dir of a run with that --output


def cmd_status(args: argparse.Namespace) -> int:
    root = Path(args.work_dir) if args.work_dir else _run_dir(args.run)
    if not (root / "config.resolved.yaml").exists():
        print(f"ccpipe: {root}: not a ccpipe run directory (no config.resolved.yaml)", file=sys.stderr)
        return 2
    phases = run_status(root)
    print(format_status(root, phases))
    summary = RunLayout(root).summary
    failed = json.loads(summary.read_text()).get("run_failed") if summary.is_file() else None
    if failed:  # every phase done, over nothing: the run failed all the same
        print(f"run failed: {failed} (errors in {summary})")
    return 1 if failed or any(p.failed for p in phases) else 0


def cmd_finalize(args: argparse.Namespace) -> int:
    root = _run_dir(args.run)
    if not (root / "config.resolved.yaml").exists():
        print(f"ccpipe: {root}: not a ccpipe run directory (no config.resolved.yaml)", file=sys.stderr)
        return 2
    quiet_console()
    try:
        summary = finalize_dir(root)
    except Refused as exc:  # another command writes the run
        print(f"ccpipe: {exc}", file=sys.stderr)
        return 2
    except RunError as exc:
        print(f"ccpipe: {exc}", file=sys.stderr)
        return 1
    print(funnel_table(summary))
    print(f"wrote {root}/summary.json")
    if summary.get("run_failed"):
        print(f"ccpipe: the run failed: {summary['run_failed']}", file=sys.stderr)
        return 1
    return 0 if summary["conservation_ok"] else 1


def add_commands(subparsers) -> None:
    sub = subparsers
    run = sub.add_parser(
        "run", help="run the pipeline on WARC files",
        description="Read WARC files, filter, deduplicate, scrub PII, tokenize; write parquet and .bin shards "
                    "and summary.json to --output. Rerunning the same command resumes an interrupted run.",
        epilog=EPILOG_RUN, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", help="YAML config file (defaults reproduce FineWeb's recipe)")
    run.add_argument("--input", nargs="+", metavar="PATH",
                     help="WARC files, directories, globs, s3:// or https:// URLs, or a warc.paths.gz listing")
    run.add_argument("--reuse", metavar="RUN",
                     help="start from RUN's records, blocklist decisions, extracted text and language scores where "
                          "the config leaves those stages unchanged; recompute the rest (default --input: RUN's)")
    run.add_argument("--output", required=True, metavar="DIR", help="run directory (created; resumed if it holds this run)")
    run.add_argument("--workers", type=int, help="parallel worker processes (output does not depend on it)")
    run.add_argument("--max-records", type=int, help="stop each WARC file after N response records")
    run.add_argument("--tokenizer", metavar="NAME_OR_PATH",
                     help="'gpt2' (default), 'cl100k_base', 'o200k_base' (offline: tiktoken's cache or "
                          "$CCPIPE_TOKENIZERS), a .tiktoken vocabulary or a Hugging Face tokenizer.json")
    run.add_argument("--languages", metavar="LANGS",
                     help="languages kept, comma-separated lid.176 labels: 'zh,en' (langid.languages; default: en)")
    run.add_argument("--recipe", choices=("ccpipe", "fineweb"),
                     help="'ccpipe' (default) or 'fineweb': FineWeb's recipe step for step (recipe)")
    run.add_argument("--shard-tokens", type=int, metavar="N",
                     help="tokens per .bin training shard (output.shard_tokens; default 100,000,000)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--strict", action="store_true",
                     help="any file error (a damaged or unusable input file) fails the run with exit 1 (run.strict)")
    _add_engine_arguments(run)
    run.set_defaults(func=cmd_run)

    status = subparsers.add_parser(
        "status", help="tasks done / running / failed per phase of a run",
        description="Tasks done, running, failed and pending per phase, from the run's logging folder, with "
                    "the last error lines of each failed task. Exit code 1 when a task failed.",
        epilog=EPILOG_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    status.add_argument("run", metavar="RUN", help="the run's --output directory (or its URL, for its default work dir)")
    status.add_argument("--work-dir", help="the run's work dir, when --output was a URL with --work-dir")
    status.set_defaults(func=cmd_status)
    final = subparsers.add_parser(
        "finalize", help="write the shards and summary.json of a run whose phases are done",
        description="Concatenate the token files into .bin shards, write summary.json (and publish to the "
                    "run's --output URL). The last job of a Slurm run runs it; run it by hand if that job failed.",
        epilog=EPILOG_FINALIZE, formatter_class=argparse.RawDescriptionHelpFormatter)
    final.add_argument("run", metavar="RUN", help="the run directory (a URL: its default work dir)")
    final.set_defaults(func=cmd_finalize)
