"""Running a built pipeline: the local executor, resumption, the `.bin` shards and the summary."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sys
import threading
import time
from pathlib import Path

import yaml
from datatrove.executor.local import LocalPipelineExecutor

import pipeline
from pipeline.build import Phase, RunLayout, build_phases, task_count
from pipeline.config import Config, config_to_dict
from pipeline.inputs import expand_inputs
from pipeline.ledger import consolidate
from pipeline.shards import write_shards
from pipeline.summary import build_summary, write_json_atomic
from stages.reader import failed_reads

log = logging.getLogger(__name__)


class RunError(RuntimeError):
    """A run that cannot start or did not finish; the message says why and where to look."""


# crawled pages are messy: these libraries log every page they cannot parse, which our ledger counts
NOISY_LOGGERS = ("trafilatura", "htmldate", "courlan", "justext", "warcio", "presidio-analyzer")


def quiet_console() -> None:
    """Only warnings on the console; datatrove's task logs still go to their files under DIR/logs.

    Called in the main process and again in each task, since worker processes do not inherit it.
    """
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING", format="{level}: {message}")
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


class QuietLocalExecutor(LocalPipelineExecutor):
    """datatrove's local executor, with task logs kept in their files instead of on the console."""

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        quiet_console()
        try:
            # datatrove prints a task's log on the console only for local_rank 0
            return super()._run_for_rank(rank, local_rank + 1, node_rank)
        finally:
            quiet_console()  # datatrove re-adds its console logger when a task ends


def _versions() -> dict:
    from importlib.metadata import version

    return {name: version(name) for name in
            ("datatrove", "trafilatura", "warcio", "presidio-analyzer", "tiktoken", "pyarrow", "fasttext-predict")}


def provenance(phases: list[Phase]) -> dict:
    """Version and sha256 of every model, list and vocabulary the steps use."""
    found = {}
    for phase in phases:
        for step in phase.steps:
            if hasattr(step, "provenance"):
                found[type(step).__name__] = step.provenance()
            if hasattr(step, "tokenizer"):
                found["tokenizer"] = step.tokenizer.provenance()
    return found


def resolved_config(config: Config, files: list[str], phases: list[Phase]) -> dict:
    return {
        "ccpipe_version": pipeline.__version__,
        "config": config_to_dict(config),
        "inputs": files,
        "tasks": task_count(config, files),
        "versions": _versions(),
        "provenance": provenance(phases),
    }


def _identity(resolved: dict) -> str:
    """What must match for a rerun to resume a run in place: everything that changes the output."""
    same = dict(resolved)
    same["config"] = {k: v for k, v in resolved["config"].items() if k != "run"}
    if "input" in same["config"]:  # how remote inputs are retried and cached does not change the output
        same["config"]["input"] = {k: v for k, v in same["config"]["input"].items() if k not in ("retry", "cache_gb")}
    return hashlib.sha256(json.dumps(same, sort_keys=True).encode()).hexdigest()


def _what_changed(previous: dict, resolved: dict) -> str:
    if previous.get("tasks") != resolved["tasks"]:
        return (f"the task count changed ({previous.get('tasks')} -> {resolved['tasks']}): task r of N reads input "
                "files r, r+N, r+2N, ..., so the tasks already completed cover another split of the files and "
                "the output would silently lose or repeat documents")
    if previous.get("inputs") != resolved["inputs"]:
        return "other input files"
    old, new = _identity({**previous, "inputs": [], "tasks": 0}), _identity({**resolved, "inputs": [], "tasks": 0})
    if old != new and previous.get("config", {}) != resolved["config"]:
        keys = [f"{section}.{key}" for section, values in resolved["config"].items() if section != "run"
                for key in values if previous.get("config", {}).get(section, {}).get(key) != values[key]]
        if keys:
            return "another config (" + ", ".join(keys) + ")"
    return "other package versions, models, blocklists or tokenizer"


def check_resumable(layout: RunLayout, resolved: dict) -> bool:
    """True when `layout.root` holds this very run (resume it), False when it is new; raises otherwise."""
    path = layout.root / "config.resolved.yaml"
    if path.exists():
        previous = yaml.safe_load(path.read_text())
        if _identity(previous) != _identity(resolved):
            raise RunError(f"{layout.root}: holds a run with other inputs, config or task count: "
                           f"{_what_changed(previous, resolved)}; rerun it as it was started, or use another "
                           "--output (or delete it) to start afresh")
        return True
    if layout.root.exists() and any(layout.root.iterdir()):
        raise RunError(f"{layout.root}: exists and is not a ccpipe run directory; choose an empty or new --output")
    return False


def prepare_output(layout: RunLayout, resolved: dict) -> None:
    path = layout.root / "config.resolved.yaml"
    if check_resumable(layout, resolved):
        log.info("resuming the run in %s: completed tasks are skipped", layout.root)
    layout.root.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True))
    tmp.replace(path)


def _progress(phase: Phase, layout: RunLayout, stop: threading.Event, enabled: bool) -> None:
    """Tasks done per phase, from datatrove's completion markers; in the base phase also the WARC records
    read so far, from the reader's per-task counters."""
    if not enabled:
        return
    from tqdm import tqdm

    done_dir = layout.logs / phase.name / "completions"

    def refresh(bar) -> None:
        done = len(list(done_dir.glob("*"))) if done_dir.is_dir() else 0
        if phase.name == "base" and layout.progress.is_dir():
            records = 0
            for counter in (p for p in layout.progress.iterdir() if p.name.isdigit()):  # not the *.tmp being written
                try:
                    records += int(counter.read_text())
                except (OSError, ValueError):
                    pass  # replaced while we read it: counted at the next refresh
            bar.set_postfix_str(f"{records:,} records read", refresh=False)
        bar.update(done - bar.n)
        bar.refresh()

    with tqdm(total=phase.tasks, desc=f"{phase.name:<13}", unit="task", file=sys.stderr, leave=True) as bar:
        while not stop.wait(0.5):
            refresh(bar)
        refresh(bar)


def _stage_of(step) -> str:
    from datatrove.pipeline.dedup.minhash import MinhashDedupSignature
    from datatrove.pipeline.writers.disk_base import DiskWriter

    from pipeline.build import TaskFileReader
    from stages.blocklist import URLBlocklist
    from stages.extract import Extractor
    from stages.langid import LanguageID
    from stages.pii import PIIScrubber
    from stages.reader import WarcReader
    from stages.tokenize import Tokenize

    from pipeline.ledger import KeptLedger

    kinds = [(KeptLedger, "ledger"), (WarcReader, "reader"), (URLBlocklist, "blocklist"), (Extractor, "extract"), (LanguageID, "langid"),
             (PIIScrubber, "pii"), (Tokenize, "tokenize"), (DiskWriter, "write"), (TaskFileReader, "write")]
    for cls, stage in kinds:
        if isinstance(step, cls):
            return stage
    if type(step).__module__.startswith("datatrove.pipeline.dedup") or isinstance(step, MinhashDedupSignature):
        return "dedup"
    if type(step).__module__ == "stages.quality":
        return "quality"
    return "other"


def _stage_seconds(layout: RunLayout, phases: list[Phase]) -> dict[str, float]:
    """CPU-side seconds per stage, summed over tasks, from datatrove's per-phase stats.

    datatrove times MinhashDedupSignature around its whole input loop, which includes every step before it
    in the phase; its own share is what remains after subtracting theirs.
    """
    from datatrove.pipeline.dedup.minhash import MinhashDedupSignature

    seconds: dict[str, float] = {}
    for phase in phases:
        stats_file = layout.logs / phase.name / "stats.json"
        if not stats_file.exists():
            continue
        upstream = 0.0
        for step, stats in zip(phase.steps, json.loads(stats_file.read_text())):
            timing = stats.get("time_stats")
            total = timing.get("total", 0.0) if isinstance(timing, dict) else 0.0
            if isinstance(step, MinhashDedupSignature):
                total = max(0.0, total - upstream)
            upstream += total
            stage = _stage_of(step)
            seconds[stage] = seconds.get(stage, 0.0) + total
    return {stage: round(t, 3) for stage, t in seconds.items()}


def start_run(config: Config, inputs: list[str], output: str | Path, write: bool = True) -> tuple[RunLayout, list[Phase]]:
    """Expand the inputs, build the phases, check (and with `write`, create) the run directory.

    With a URL `--output` (s3://...), the run directory is `run.work_dir` and the outputs are published to
    the URL when the run finishes (`pipeline.remote`)."""
    from pipeline.remote import run_root

    files = expand_inputs(inputs, config.input.cc_base_url)
    root, publish_to = run_root(config, str(output))
    layout = RunLayout(root)
    phases = build_phases(config, files, layout.root)
    resolved = resolved_config(config, files, phases)
    if write:
        prepare_output(layout, resolved)
        if publish_to:
            from pipeline.remote import set_publish_target

            set_publish_target(layout, publish_to)
    else:
        check_resumable(layout, resolved)
    return layout, phases


def run_pipeline(config: Config, inputs: list[str], output: str | Path, progress: bool = False) -> dict:
    """Run every phase, write the shards and `summary.json`; returns the summary (local and Ray executors)."""
    if config.run.executor == "slurm":
        raise RunError("the Slurm executor submits jobs and returns: use submit_pipeline()")
    started = time.monotonic()
    layout, phases = start_run(config, inputs, output)
    run_phases(config, layout, phases, progress)
    return finalize_run(config, layout, phases, time.monotonic() - started)


def submit_pipeline(config: Config, inputs: list[str], output: str | Path) -> tuple[RunLayout, dict]:
    """Slurm: submit every phase as dependent job arrays and a last job that finalizes; returns the job ids."""
    from pipeline.executors import submit_slurm

    layout, phases = start_run(config, inputs, output)
    return layout, submit_slurm(config, layout, phases)


def plan_pipeline(config: Config, inputs: list[str], output: str | Path) -> str:
    """--dry-run: what would run or be submitted (the sbatch scripts, the Ray task plan); writes nothing."""
    from pipeline.executors import describe_plan

    from pipeline.remote import run_root

    layout, phases = start_run(config, inputs, output, write=False)
    return describe_plan(config, layout, phases, run_root(config, str(output))[1])


def run_phases(config: Config, layout: RunLayout, phases: list[Phase], progress: bool = False) -> None:
    """Each phase in turn on the local or Ray executor; completed tasks (from an earlier, interrupted run)
    are skipped, and a phase with a task that did not complete stops the run."""
    from pipeline.executors import engine_session, incomplete_tasks, make_executor

    with engine_session(config):
        for phase in phases:
            stop = threading.Event()
            bar = threading.Thread(target=_progress, args=(phase, layout, stop, progress), daemon=True)
            bar.start()
            where = f"task logs: {layout.logs / phase.name / 'logs'}; `ccpipe status {layout.root}`"
            try:
                make_executor(config, layout, phase).run()
            except Exception as exc:
                raise RunError(f"phase {phase.name!r} failed: {exc}{failed_reads(layout.files_report)} ({where}); "
                               "rerunning the same command redoes only the tasks that did not complete") from exc
            finally:
                stop.set()
                bar.join()
            missing = incomplete_tasks(layout, phase)
            if missing:
                raise RunError(f"phase {phase.name!r}: tasks {missing} did not complete"
                               f"{failed_reads(layout.files_report)} ({where}); rerunning the same command redoes only them")


def finalize_run(config: Config, layout: RunLayout, phases: list[Phase], elapsed: float) -> dict:
    """After the last phase: the `.bin` shards and `summary.json`. Reruns give the same bytes."""
    shards = finalize_shards(layout, config.output.shard_tokens)
    started = time.monotonic()
    consolidate(layout.decisions, layout.ledger)
    seconds = _stage_seconds(layout, phases)
    seconds["ledger"] = round(seconds.get("ledger", 0.0) + time.monotonic() - started, 3)
    summary = build_summary(layout.root, shards, elapsed, seconds)
    write_json_atomic(layout.root / "summary.json", summary)
    from pipeline.remote import publish_outputs

    publish_outputs(layout)  # to the --output URL, when there is one
    return summary


def finalize_shards(layout: RunLayout, shard_tokens: int) -> list[dict]:
    """Concatenate every task's token file, in rank order, into `.bin` shards per language."""
    if layout.bin.exists():
        shutil.rmtree(layout.bin)  # rebuilt whole from the token files: a rerun gives the same bytes
    shards = []
    for lang_dir in sorted(p for p in layout.tokens.glob("*") if p.is_dir()):
        ranked = sorted(lang_dir.glob("*.tokens"), key=lambda p: int(p.stem))  # rank 100000 after 99999
        written = write_shards(ranked, layout.bin, lang_dir.name, shard_tokens)
        shards += [{"language": lang_dir.name, **s} for s in written]
    return shards
