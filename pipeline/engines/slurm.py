"""The Slurm engine: each phase a job array depending on the one before, then one `ccpipe finalize` job."""

from __future__ import annotations

import copy
import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from datatrove.executor.slurm import SlurmPipelineExecutor, launch_slurm_job

from pipeline.core.errors import RunError
from pipeline.core.layout import RunLayout
from pipeline.engines.local import quiet_console
from pipeline.plan.config import Config, SlurmConfig
from pipeline.plan.phases import Phase
from stages.utils.io import write_text_atomic
from stages.utils.stack import run_deep


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
                         cpus_per_task=phase.cpus or s.cpus_per_task, job_name=f"ccpipe-{phase.name}",
                         env_command=_env_command(s) or None, logging_dir=str(layout.logs / phase.name),
                         skip_completed=True, max_array_size=s.max_array_size, srun_args=srun_args,
                         randomize_start_duration=config.run.random_start_seconds,
                         workers=s.array_throttle or -1, qos=None, **kwargs)
        self.settings = s
        self.mem_gb = phase.mem_gb or s.mem_per_task_gb

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        quiet_console()
        return run_deep(super()._run_for_rank, rank, local_rank + 1, node_rank)

    def sbatch_directives(self, array_size: int) -> dict:
        """The `#SBATCH` lines, without touching the disk (for --dry-run)."""
        s = self.settings
        logfile = os.path.join(self.slurm_logs_folder, "%A_%a.out")
        mem_mb = math.ceil(self.mem_gb * 1024 / self.cpus_per_task)
        directives = {
            "job-name": self.job_name,
            **({"partition": s.partition} if s.partition else {}),
            "time": s.time,
            "cpus-per-task": self.cpus_per_task,
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
    ex = copy.copy(ex)  # the final phase's settings, under the finalize job's name (datatrove echoes it)
    ex.job_name = "ccpipe-finalize"
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
    # read back by the next submission (jobs still queued?) and by `ccpipe finalize` (the run's start)
    write_text_atomic(layout.logs / "finalize" / "launch_script.slurm", script)
    write_text_atomic(_jobs_file(layout), json.dumps(jobs, indent=1))
    write_text_atomic(layout.logs / "submitted.json", json.dumps({"time": time.time()}))
    return jobs
