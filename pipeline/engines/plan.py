"""`ccpipe run --dry-run`: what each engine would run or submit, without running or writing anything."""

from __future__ import annotations

import math

from pipeline.core.layout import RunLayout
from pipeline.engines.slurm import _finalize_script, _slurm_executors
from pipeline.engines.tasks import incomplete_tasks
from pipeline.plan.config import Config
from pipeline.plan.phases import Phase


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
                         f"{arrays} job array(s), {ex.cpus_per_task} CPU {ex.mem_gb:g} GB per task: sbatch{dep}")
            if todo:
                lines.append(ex.render(min(len(todo), ex.max_array_size)).rstrip())
                previous = phase.name
        dep = f" --dependency=afterok:<{previous} job>" if previous else ""
        lines.append(f"\n# then summary.json: sbatch{dep}")
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
    lines.append("then on this machine: summary.json" + (f", published to {url}" if url else ""))
    return "\n".join(lines) + "\n"
