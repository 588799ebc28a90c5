"""The Ray engine: each phase's tasks on a running Ray cluster (`run.ray.address`), or a Ray started here."""

from __future__ import annotations

import contextlib
import logging

from datatrove.executor.ray import RayPipelineExecutor
from loguru import logger

from pipeline.core.layout import RunLayout
from pipeline.engines.local import quiet_console
from pipeline.plan.config import Config
from pipeline.plan.phases import Phase
from stages.utils.stack import run_deep


class QuietRayExecutor(RayPipelineExecutor):
    """datatrove's Ray executor with task logs in their files only."""

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        quiet_console()
        try:
            return run_deep(super()._run_for_rank, rank, local_rank + 1, node_rank)
        finally:
            quiet_console()


def _ray_init(config: Config) -> bool:
    """Connect to the configured Ray cluster (or start one here); True when this call started it."""
    import ray  # optional (the `cluster` extra), and slow to import: only for `--executor ray`

    if ray.is_initialized():
        return False
    # workers import ccpipe from this environment; keep Ray's own console chatter off ours
    ray.init(address=config.run.ray.address, log_to_driver=False, logging_level=logging.WARNING,
             configure_logging=True)
    return True


def ray_executor(config: Config, layout: RunLayout, phase: Phase) -> QuietRayExecutor:
    import ray  # optional (the `cluster` extra), and slow to import: only for `--executor ray`

    r = config.run.ray
    total = max(1, int(ray.cluster_resources().get("CPU", 1)))
    # the finalize phases ask for run.slurm.finalize_cpus: never more than the cluster has, or nothing runs
    cpus, mem_gb = min(phase.cpus or r.cpus_per_task, total), phase.mem_gb or r.mem_per_task_gb
    slots = max(1, total // cpus)
    # datatrove warns on every phase that a local logging dir must be shared by the nodes: the README says so
    logger.disable("datatrove.executor.ray")
    return QuietRayExecutor(phase.steps, tasks=phase.tasks, workers=min(slots, phase.tasks),
                            logging_dir=str(layout.logs / phase.name), skip_completed=True,
                            randomize_start_duration=config.run.random_start_seconds,
                            cpus_per_task=cpus, mem_per_cpu_gb=mem_gb / cpus)


@contextlib.contextmanager
def ray_session(config: Config):
    """Connected to the cluster around the phases; a Ray started here is shut down after them."""
    started = _ray_init(config)
    try:
        yield
    finally:
        if started:
            import ray

            ray.shutdown()
