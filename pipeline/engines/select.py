"""The executor for a phase, and the session around all phases, by `run.executor` (local or Ray;
Slurm submits instead: `pipeline.engines.slurm.submit_slurm`)."""

from __future__ import annotations

from pipeline.core.layout import RunLayout
from pipeline.engines.local import LocalExecutor, worker_pool
from pipeline.engines.ray import ray_executor, ray_session  # they import Ray itself only when called
from pipeline.plan.config import Config
from pipeline.plan.phases import Phase


def make_executor(config: Config, layout: RunLayout, phase: Phase):
    """The executor of one phase on the local machine or Ray."""
    if config.run.executor == "ray":
        return ray_executor(config, layout, phase)
    run = config.run
    return LocalExecutor(phase.steps, tasks=phase.tasks, workers=min(run.workers, phase.tasks),
                         logging_dir=str(layout.logs / phase.name), skip_completed=True,
                         randomize_start_duration=run.random_start_seconds)


def engine_session(config: Config):
    """A context manager around the phases: a Ray connection for `ray`, the worker processes for `local`."""
    if config.run.executor == "ray":
        return ray_session(config)
    return worker_pool(config.run.workers)
