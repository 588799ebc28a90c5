"""What every engine shares: which tasks of a phase are done, and the phase's merged stats."""

from __future__ import annotations

import json

from datatrove.utils.stats import PipelineStats

from pipeline.core.layout import RunLayout
from pipeline.plan.phases import Phase
from stages.utils.io import write_text_atomic


def incomplete_tasks(layout: RunLayout, phase: Phase) -> list[int]:
    """Ranks of `phase` without a completion marker."""
    done_dir = layout.completions(phase.name)
    done = {p.name for p in done_dir.iterdir()} if done_dir.is_dir() else set()
    return [rank for rank in range(phase.tasks) if f"{rank:05d}" not in done]


def merge_stats(layout: RunLayout, phase: Phase) -> None:
    """`logs/{phase}/stats.json`, the sum of every task's stats (the local and Ray executors write it
    themselves; Slurm tasks only write theirs)."""
    folder = layout.logs / phase.name
    total = PipelineStats()
    for path in sorted((folder / "stats").glob("*.json")):
        total += PipelineStats.from_json(json.loads(path.read_text()))
    write_text_atomic(folder / "stats.json", total.to_json())  # `ccpipe finalize` and the summary read it
