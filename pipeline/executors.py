"""Where the phases run: datatrove's local, Slurm and Ray executors, chosen by `run.executor`.

    local  one process per task on this machine; a task process that dies stops the run (exit 1) and
           rerunning the same command redoes only the tasks without a completion marker
    ray    each phase's tasks on a running Ray cluster (`run.ray.address`); Ray resubmits a task whose
           worker died; phases run one after the other, then this process writes the shards
    slurm  each phase a job array depending on the one before (`sbatch --dependency=afterok`), then one
           job running `ccpipe finalize DIR`: `ccpipe run` submits and returns, `ccpipe status DIR` follows

Every engine runs the same datatrove tasks on the same ranks with the same completion markers
(`DIR/logs/{phase}/completions/{rank}`), so the output does not depend on the engine. Nothing here
schedules anything: the engines do.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, wait
from pathlib import Path

from datatrove.executor.ray import RayPipelineExecutor
from datatrove.executor.slurm import SlurmPipelineExecutor, launch_slurm_job
from datatrove.utils.stats import PipelineStats

from pipeline.build import Phase, RunLayout
from pipeline.config import Config, SlurmConfig
from pipeline.run import QuietLocalExecutor, RunError, quiet_console

log = logging.getLogger(__name__)

DIED = "ERROR    | task process died (SIGKILL, or killed for memory): rerun the same command to redo this task"


def incomplete_tasks(layout: RunLayout, phase: Phase) -> list[int]:
    """Ranks of `phase` without a completion marker."""
    done_dir = layout.logs / phase.name / "completions"
    done = {p.name for p in done_dir.iterdir()} if done_dir.is_dir() else set()
    return [rank for rank in range(phase.tasks) if f"{rank:05d}" not in done]


def merge_stats(layout: RunLayout, phase: Phase) -> None:
    """`logs/{phase}/stats.json`, the sum of every task's stats (the local and Ray executors write it
    themselves; Slurm tasks only write theirs)."""
    folder = layout.logs / phase.name
    total = PipelineStats()
    for path in sorted((folder / "stats").glob("*.json")):
        total += PipelineStats.from_json(json.loads(path.read_text()))
    with open(folder / "stats.json", "w") as f:
        total.save_to_disk(f)


# ---------------------------------------------------------------------------------------------- local


def _init_worker(pickled: bytes) -> None:
    import dill

    # a process group per worker, which the children it forks (the extraction sandbox) join: when a worker
    # dies, the pool terminates the others, and their children would otherwise live on as orphans
    os.setpgid(0, 0)
    global _WORKER_EXECUTOR
    _WORKER_EXECUTOR = dill.loads(pickled)


def _kill_groups(pids: set[int]) -> None:
    import signal

    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # the group is gone: the worker and its children exited


def _run_rank(rank: int):
    import copy

    # fresh steps per task, as datatrove's executor: step stats would otherwise add up across tasks
    return copy.deepcopy(_WORKER_EXECUTOR)._run_for_rank(rank)


class LocalExecutor(QuietLocalExecutor):
    """datatrove's local executor on `concurrent.futures`, whose pool notices a task process that dies
    (`multiprocess.Pool`, which datatrove uses, waits forever for its result).

    A failed or killed task does not stop the others already running; the run then fails naming them, and
    the same command redoes only the tasks that have no completion marker.
    """

    def run(self):
        ranks = self.get_incomplete_ranks(range(self.tasks))
        if not ranks:
            return PipelineStats()
        self.save_executor_as_json()
        import multiprocessing

        import dill  # as datatrove: steps may hold what pickle cannot (bound-method adapters)

        failed: dict[int, str] = {}
        stats = []
        context = multiprocessing.get_context(self.start_method)
        pool = ProcessPoolExecutor(min(self.workers, len(ranks)), mp_context=context,
                                   initializer=_init_worker, initargs=(dill.dumps(self),))
        workers: set[int] = set()
        try:
            futures = {pool.submit(_run_rank, rank): rank for rank in ranks}
            workers = set(pool._processes or {})  # workers start with the submissions
            wait(futures)
        except BaseException:  # Ctrl-C: workers have their own process groups, so stop them here
            _kill_groups(workers | set(pool._processes or {}))
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            _kill_groups(workers)  # after a worker died: what is left of the others' process groups
        for future, rank in futures.items():
            exc = future.exception()
            if exc is None:
                stats.append(future.result())
            else:
                failed[rank] = type(exc).__name__
        died = [rank for rank, kind in failed.items() if kind == "BrokenProcessPool"]
        for rank in died:
            logfile = Path(self.logging_dir.resolve_paths(f"logs/task_{rank:05d}.log"))
            if logfile.exists():  # it had started: say so where `ccpipe status` looks
                with open(logfile, "a") as f:
                    f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} | {DIED}\n")
        if failed:
            what = "a task process died" if died else "tasks failed"
            raise RuntimeError(f"{what}: ranks {sorted(failed)} did not complete")
        total = sum(stats, start=PipelineStats())
        with self.logging_dir.open("stats.json", "wt") as f:
            total.save_to_disk(f)
        return total


# ------------------------------------------------------------------------------------------------ ray


class QuietRayExecutor(RayPipelineExecutor):
    """datatrove's Ray executor with task logs in their files only."""

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        quiet_console()
        try:
            return super()._run_for_rank(rank, local_rank + 1, node_rank)
        finally:
            quiet_console()


def _ray_init(config: Config) -> bool:
    """Connect to the configured Ray cluster (or start one here); True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    # workers import ccpipe from this environment; keep Ray's own console chatter off ours
    ray.init(address=config.run.ray.address, log_to_driver=False, logging_level=logging.WARNING,
             configure_logging=True)
    return True


def make_executor(config: Config, layout: RunLayout, phase: Phase):
    """The executor of one phase on the local machine or Ray (Slurm: see `submit_slurm`)."""
    logs = str(layout.logs / phase.name)
    run = config.run
    if run.executor == "ray":
        import ray
        from loguru import logger

        r = run.ray
        slots = max(1, int(ray.cluster_resources().get("CPU", 1) // r.cpus_per_task))
        # datatrove warns on every phase that a local logging dir must be shared by the nodes: the README says so
        logger.disable("datatrove.executor.ray")
        return QuietRayExecutor(phase.steps, tasks=phase.tasks, workers=min(slots, phase.tasks), logging_dir=logs,
                                skip_completed=True, randomize_start_duration=run.random_start_seconds,
                                cpus_per_task=r.cpus_per_task, mem_per_cpu_gb=r.mem_per_task_gb / r.cpus_per_task)
    return LocalExecutor(phase.steps, tasks=phase.tasks, workers=min(run.workers, phase.tasks), logging_dir=logs,
                         skip_completed=True, randomize_start_duration=run.random_start_seconds)


def engine_session(config: Config):
    """A context manager around the phases: a Ray connection for `ray`, nothing for `local`."""
    import contextlib

    @contextlib.contextmanager
    def ray_session():
        started = _ray_init(config)
        try:
            yield
        finally:
            if started:
                import ray

                ray.shutdown()

    return ray_session() if config.run.executor == "ray" else contextlib.nullcontext()


# ---------------------------------------------------------------------------------------------- slurm


def _sbatch_options(options: tuple[str, ...]) -> dict:
    """["--account=cc", "--exclusive"] -> {"account": "cc", "exclusive": ""} (datatrove's sbatch_args)."""
    parsed = {}
    for option in options:
        key, _, value = option.lstrip("-").partition("=")
        parsed[key] = value
    return parsed


def _env_command(s: SlurmConfig) -> str:
    if s.env_command:
        return s.env_command
    if s.container:
        return ""
    venv = s.venv or (sys.prefix if sys.prefix != sys.base_prefix else None)
    return f"source {shlex.quote(os.path.join(venv, 'bin', 'activate'))}" if venv else ""


class CcpipeSlurmExecutor(SlurmPipelineExecutor):
    """datatrove's Slurm executor: directives from `run.slurm`, quiet task logs, stats merged by the
    finalize job (datatrove's separate merge-stats job is not submitted)."""

    def __init__(self, phase: Phase, layout: RunLayout, config: Config, **kwargs):
        s = config.run.slurm
        srun_args = None
        if s.container:
            mounts = ",".join(sorted({f"{p}:{p}" for p in (str(layout.root.resolve()),)}))
            srun_args = {"container-image": s.container, "container-mounts": mounts}
        super().__init__(phase.steps, tasks=phase.tasks, time=s.time, partition=s.partition,
                         cpus_per_task=s.cpus_per_task, job_name=f"ccpipe-{phase.name}",
                         env_command=_env_command(s) or None, logging_dir=str(layout.logs / phase.name),
                         skip_completed=True, max_array_size=s.max_array_size, srun_args=srun_args,
                         randomize_start_duration=config.run.random_start_seconds,
                         workers=s.array_throttle or -1, qos=None, **kwargs)
        self.settings = s

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        quiet_console()
        return super()._run_for_rank(rank, local_rank + 1, node_rank)

    def sbatch_directives(self, array_size: int) -> dict:
        """The `#SBATCH` lines, without touching the disk (for --dry-run)."""
        s = self.settings
        logfile = os.path.join(self.slurm_logs_folder, "%A_%a.out")
        mem_mb = math.ceil(s.mem_per_task_gb * 1024 / s.cpus_per_task)
        directives = {
            "job-name": self.job_name,
            **({"partition": s.partition} if s.partition else {}),
            "time": s.time,
            "cpus-per-task": s.cpus_per_task,
            "mem-per-cpu": f"{mem_mb}M",
            "output": logfile,
            "error": logfile,
            "array": f"0-{array_size - 1}" + (f"%{s.array_throttle}" if s.array_throttle else ""),
            "requeue": "",  # preempted tasks go back to the queue (datatrove requeues on SIGUSR1)
            **_sbatch_options(s.sbatch_args or ()),
        }
        return directives

    def get_sbatch_args(self, max_array: int = 1) -> dict:
        os.makedirs(self.slurm_logs_folder, exist_ok=True)
        return self.sbatch_directives(max_array)

    def run_script(self) -> str:
        srun = " ".join(f"--{k}={v}" for k, v in (self.srun_args or {}).items())
        return f"srun {srun} -l -n 1 launch_pickled_pipeline {self.logging_dir.resolve_paths('executor.pik')}"

    def launch_merge_stats(self):
        pass  # `ccpipe finalize` merges the stats: one job fewer per phase

    def render(self, array_size: int) -> str:
        return self.get_launch_file_contents(self.sbatch_directives(array_size), self.run_script())


def _finalize_script(ex: CcpipeSlurmExecutor, layout: RunLayout) -> str:
    directives = ex.sbatch_directives(1)
    del directives["array"]
    logfile = str(layout.logs / "finalize" / "slurm-%j.out")
    directives.update({"job-name": "ccpipe-finalize", "output": logfile, "error": logfile, "requeue": ""})
    srun = " ".join(f"--{k}={v}" for k, v in (ex.srun_args or {}).items())
    return ex.get_launch_file_contents(directives, f"srun {srun} -n 1 ccpipe finalize {shlex.quote(str(layout.root))}")


def _slurm_executors(config: Config, layout: RunLayout, phases: list[Phase]) -> list[CcpipeSlurmExecutor]:
    executors: list[CcpipeSlurmExecutor] = []
    for phase in phases:
        executors.append(CcpipeSlurmExecutor(phase, layout, config, depends=executors[-1] if executors else None))
    return executors


def _jobs_file(layout: RunLayout) -> Path:
    return layout.logs / "slurm_jobs.json"


# squeue -j also lists recently finished jobs (COMPLETED, FAILED, ...) for MinJobAge: only these are alive
ALIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "RESIZING",
         "SIGNALING", "STAGE_OUT"}


def queued_jobs(layout: RunLayout) -> list[tuple[str, str, str]] | None:
    """(job id, state, reason) of the run's Slurm jobs still alive; None when the run was not submitted to
    Slurm or squeue cannot say."""
    path = _jobs_file(layout)
    if not path.exists():
        return None
    ids = [str(i) for i in json.loads(path.read_text()).values() if i not in (None, -1)]
    if not ids:
        return []
    try:
        out = subprocess.run(["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i %T %r"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    jobs = []
    for line in out.stdout.splitlines():
        job, state, reason = (line.split(None, 2) + ["", ""])[:3]
        if state in ALIVE:
            jobs.append((job.split("_")[0], state, reason))
    return jobs


def _previous_jobs_still_queued(layout: RunLayout) -> None:
    """Refuse to submit twice; clear jobs left waiting forever on a dependency that failed."""
    stale, active = set(), set()
    for job, state, reason in queued_jobs(layout) or []:
        (stale if state == "PENDING" and "DependencyNeverSatisfied" in reason else active).add(job)
    if active - stale:
        raise RunError(f"{layout.root}: jobs {', '.join(sorted(active))} of this run are still queued or "
                       "running; wait for them (`ccpipe status`) or scancel them before resubmitting")
    if stale:
        subprocess.run(["scancel", *sorted(stale)], check=False)


def submit_slurm(config: Config, layout: RunLayout, phases: list[Phase]) -> dict:
    """Submit every phase as a dependent job array, then the finalize job; returns {phase: job id}."""
    _previous_jobs_still_queued(layout)
    executors = _slurm_executors(config, layout, phases)
    try:
        executors[-1].launch_job()  # datatrove launches the ones it depends on first
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        raise RunError(f"sbatch failed: {exc}") from exc
    jobs = {phase.name: ex.job_id for phase, ex in zip(phases, executors)}
    # the executors forget their dependency once launched: the final phase's id is what finalize waits on
    last = executors[-1].job_id
    (layout.logs / "finalize").mkdir(parents=True, exist_ok=True)
    script = _finalize_script(executors[-1], layout)
    args = [f"--dependency=afterok:{last}"] if last not in (None, -1) else []
    try:
        jobs["finalize"] = launch_slurm_job(script, executors[-1].job_id_retriever, *args)
    except subprocess.CalledProcessError as exc:
        raise RunError(f"sbatch failed for the finalize job: {exc}") from exc
    (layout.logs / "finalize" / "launch_script.slurm").write_text(script)
    _jobs_file(layout).write_text(json.dumps(jobs, indent=1))
    (layout.logs / "submitted.json").write_text(json.dumps({"time": time.time()}))
    return jobs


# ------------------------------------------------------------------------------------------- dry run


def describe_plan(config: Config, layout: RunLayout, phases: list[Phase], publish_to: str | None = None) -> str:
    """What `ccpipe run` would run or submit, without running, submitting or writing anything."""
    run = config.run
    lines = [f"# ccpipe run: executor {run.executor}, run directory {layout.root}"]
    if run.executor == "slurm":
        executors = _slurm_executors(config, layout, phases)
        previous = None
        for phase, ex in zip(phases, executors):
            todo = incomplete_tasks(layout, phase)
            arrays = math.ceil(len(todo) / ex.max_array_size) if todo else 0
            dep = f" --dependency=afterok:<{previous} job>" if previous else ""
            lines.append(f"\n# phase {phase.name}: {len(todo)}/{phase.tasks} tasks to run, "
                         f"{arrays} job array(s): sbatch{dep}")
            if todo:
                lines.append(ex.render(min(len(todo), ex.max_array_size)).rstrip())
                previous = phase.name
        dep = f" --dependency=afterok:<{previous} job>" if previous else ""
        lines.append(f"\n# then: sbatch{dep}")
        lines.append(_finalize_script(executors[-1], layout).rstrip())
        if publish_to:
            lines.append(f"# the finalize job publishes the outputs to {publish_to}")
        return "\n".join(lines) + "\n"
    if run.executor == "ray":
        r = run.ray
        lines.append(f"# Ray cluster: {r.address or 'a new local Ray instance'}; per task {r.cpus_per_task} CPU, "
                     f"{r.mem_per_task_gb:g} GB; tasks whose worker dies are resubmitted (3 times)")
    else:
        lines.append(f"# {run.workers} local process(es)")
    if run.random_start_seconds:
        lines.append(f"# each task first sleeps 0-{run.random_start_seconds} s")
    for phase in phases:
        todo = incomplete_tasks(layout, phase)
        steps = " -> ".join(type(s).__name__ for s in phase.steps)
        lines.append(f"phase {phase.name:<13} {len(todo):>6}/{phase.tasks} tasks to run: {steps}")
    url = publish_to
    lines.append("then on this machine: .bin shards, summary.json" + (f", published to {url}" if url else ""))
    return "\n".join(lines) + "\n"
