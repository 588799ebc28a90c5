"""`run_pipeline`: plan -> engine -> finalize, and nothing else.

    plan      pipeline.plan     config + inputs -> phases of datatrove steps, the resolved config
    engine    pipeline.engines  each phase's tasks on the local machine, Ray, or submitted to Slurm
    finalize  pipeline.finalize .bin shards and the ledger (two more phases of tasks on the same engine), then
                                summary.json and publishing to an --output URL
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from pathlib import Path

import yaml
from tqdm import tqdm

from pipeline.core.errors import Interrupted, Refused, RunError
from pipeline.core.layout import RunLayout, run_root
from pipeline.core.lock import run_lock
from pipeline.engines.plan import describe_plan
from pipeline.engines.select import engine_session, make_executor
from pipeline.engines.slurm import submit_slurm
from pipeline.engines.tasks import incomplete_tasks
from pipeline.finalize.finish import finalize_phases, finalize_run
from pipeline.finalize.publish import set_publish_target
from pipeline.plan.config import Config
from pipeline.plan.inputs import expand_inputs
from pipeline.plan.phases import Phase, build_phases
from pipeline.plan.probe import probe_inputs
from pipeline.plan.resolved import check_resumable, prepare_output, resolved_config
from pipeline.plan.reuse import plan_reuse
from stages.readers.warc import failed_reads


def start_run(config: Config, inputs: list[str], output: str | Path, write: bool = True,
              reuse: str | Path | None = None) -> tuple[RunLayout, list[Phase]]:
    """Expand the inputs, build the phases, check (and with `write`, create) the run directory.

    With a URL `--output` (s3://...), the run directory is `run.work_dir` and the outputs are published to
    the URL when the run finishes (`pipeline.finalize.publish`). `reuse`: a run directory whose work the
    base phase starts from where the config allows it (`pipeline.plan.reuse`); no inputs: that run's."""
    if reuse is not None and not inputs:
        inputs = reused_inputs(reuse)
    files = expand_inputs(inputs, config.input.cc_base_url)
    if write:
        probe_inputs(files)  # an unreachable input is refused now, not after four phases over nothing
    root, publish_to = run_root(str(output), config.run.work_dir)
    layout = RunLayout(root)
    phases = build_phases(config, files, layout.root)
    resolved = resolved_config(config, files, phases)
    if reuse is not None:
        plan, resolved["reused"] = plan_reuse(reuse, resolved)
        phases = build_phases(config, files, layout.root, plan)
        if write and plan is None:
            print(f"reuse: nothing of {reuse} reused ({resolved['reused']['recomputed_because']}): every stage "
                  "recomputed", file=sys.stderr, flush=True)
        elif write and plan.missing:
            print(f"reuse: base tasks {', '.join(map(str, plan.missing))} of {phases[0].tasks} have no store in "
                  f"{plan.store} (work/ partly deleted): recomputed from the WARC files", file=sys.stderr, flush=True)
        if write and plan is not None and plan.unsigned:
            print(f"reuse: base tasks {', '.join(map(str, plan.unsigned))} of {phases[0].tasks} have no MinHash "
                  f"signatures in {plan.source} (work/ partly deleted): computed", file=sys.stderr, flush=True)
    if write:
        prepare_output(layout, resolved)
        if publish_to:
            set_publish_target(layout, publish_to)
    else:
        check_resumable(layout, resolved)
    return layout, phases


def reused_inputs(run: str | Path) -> list[str]:
    """The input files of the run at `run` (its config.resolved.yaml): `--reuse RUN` without `--input`."""
    try:
        return list(RunLayout(Path(run)).read_resolved()["inputs"])
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise Refused(f"--reuse {run}: not a ccpipe run directory (no readable config.resolved.yaml with its "
                      f"inputs: {getattr(exc, 'strerror', None) or exc})") from None


def run_pipeline(config: Config, inputs: list[str], output: str | Path, progress: bool = False,
                 reuse: str | Path | None = None) -> dict:
    """Run every phase, write the shards and `summary.json`; returns the summary (local and Ray executors).
    `reuse`: start from that run's work (`start_run`)."""
    if config.run.executor == "slurm":
        raise RunError("the Slurm executor submits jobs and returns: use submit_pipeline()")
    started = time.monotonic()
    with run_lock(run_root(str(output), config.run.work_dir)[0]):  # first: a second run is refused at once
        layout, phases = start_run(config, inputs, output, reuse=reuse)
        try:
            run_phases(config, layout, phases + finalize_phases(config, layout, phases), progress)
            return finalize_run(config, layout, phases, time.monotonic() - started)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted: {_tasks_done(layout, phases)}; rerunning the same command resumes "
                              "from there") from None


def _tasks_done(layout: RunLayout, phases: list[Phase]) -> str:
    """'4 of 8 base tasks done' (and the phases after it that have begun), from the completion markers."""
    done = [(phase, phase.tasks - len(incomplete_tasks(layout, phase))) for phase in phases]
    started = [f"{n} of {phase.tasks} {phase.name} tasks done" for phase, n in done if n]
    return ", ".join(started) or "no task done yet"


def submit_pipeline(config: Config, inputs: list[str], output: str | Path,
                    reuse: str | Path | None = None) -> tuple[RunLayout, dict]:
    """Slurm: submit every phase as dependent job arrays and a last job that finalizes; returns the job ids."""
    if not shutil.which("sbatch"):  # before the run directory exists: nothing is left half-submitted
        raise Refused("sbatch not found: `--executor slurm` submits with Slurm's sbatch, which is not on PATH "
                      "here (`--dry-run` prints the job scripts without it)")
    with run_lock(run_root(str(output), config.run.work_dir)[0]):  # while submitting; the jobs check markers
        layout, phases = start_run(config, inputs, output, reuse=reuse)
        return layout, submit_slurm(config, layout, phases + finalize_phases(config, layout, phases))


def plan_pipeline(config: Config, inputs: list[str], output: str | Path, reuse: str | Path | None = None) -> str:
    """--dry-run: what would run or be submitted (the sbatch scripts, the Ray task plan); writes nothing."""
    layout, phases = start_run(config, inputs, output, write=False, reuse=reuse)
    return describe_plan(config, layout, phases + finalize_phases(config, layout, phases), run_root(str(output), config.run.work_dir)[1])


def run_phases(config: Config, layout: RunLayout, phases: list[Phase], progress: bool = False) -> None:
    """Each phase in turn on the local or Ray executor; completed tasks (from an earlier, interrupted run)
    are skipped, and a phase with a task that did not complete stops the run."""
    if any(len(incomplete_tasks(layout, phase)) < phase.tasks for phase in phases):
        print(f"resuming: {_tasks_done(layout, phases)}", file=sys.stderr, flush=True)
    if config.run.executor == "local":  # what the steps load, loaded once here: the workers fork with it
        for step in (step for phase in phases for step in phase.steps if hasattr(step, "warm")):
            step.warm()
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
                               f"{failed_reads(layout.files_report)} ({where}); rerunning the same command redoes "
                               "only them")


def read_progress(folder: Path) -> tuple[int, float]:
    """(records read, tasks' worth of work done) over the reader's per-task counters (`{records} {share}`,
    refreshed once a second; a share of -1 is unknown: a remote file without --max-records)."""
    records, share = 0, 0.0
    for counter in (p for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else ():  # not *.tmp
        try:
            fields = counter.read_text().split()
            records += int(fields[0])
            share += max(0.0, float(fields[1])) if len(fields) > 1 else 0.0
        except (OSError, ValueError, IndexError):
            pass  # replaced while we read it: counted at the next refresh
    return records, share


def _progress(phase: Phase, layout: RunLayout, stop: threading.Event, enabled: bool) -> None:
    """Per phase: tasks done (datatrove's completion markers) and the ETA; in the base phase, the bar moves
    within a task: records read and records/s, and the share of each running task's files read."""
    if not enabled:
        return
    done_dir = layout.completions(phase.name)
    base = phase.name == "base"
    window: list[tuple[float, int]] = []  # (time, records read) over the last ~10 s, for records/s

    def refresh(bar) -> None:
        done = len(list(done_dir.glob("*"))) if done_dir.is_dir() else 0
        position: float = done
        if base:
            records, share = read_progress(layout.progress)
            position = max(float(done), min(share, float(phase.tasks)))  # a finished task's share is 1.0
            window.append((time.monotonic(), records))
            while window[-1][0] - window[0][0] > 10:
                window.pop(0)
            (t0, r0), (t1, r1) = window[0], window[-1]
            rate = f"{(r1 - r0) / (t1 - t0):,.0f} records/s" if t1 > t0 else "? records/s"
            bar.set_postfix_str(f"{done}/{phase.tasks} tasks, {records:,} records read, {rate}", refresh=False)
        bar.update(position - bar.n)  # displays, even when nothing moved (the clock and the rate do)

    # the base phase counts in tasks' worth of work (fractions of a task), so its percentage and ETA move
    # while one long task runs; the others in whole tasks
    fmt = ("{desc}: |{bar:20}| {percentage:3.0f}%{postfix} [{elapsed}, ETA {remaining}]" if base else
           "{desc}: |{bar:20}| {percentage:3.0f}%, {n_fmt}/{total_fmt} tasks [{elapsed}, ETA {remaining}]")
    with tqdm(total=phase.tasks, desc=f"{phase.name:<14}", file=sys.stderr, leave=True, bar_format=fmt) as bar:
        while not stop.wait(1.0):
            refresh(bar)
        refresh(bar)
