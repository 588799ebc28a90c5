"""A run's status: tasks done / running / failed per phase, from the run's logging folder (`ccpipe status`).

A task is done when datatrove wrote its completion marker (`logs/{phase}/completions/{rank}`), failed when
its log (`logs/{phase}/logs/task_{rank}.log`) holds an ERROR line, running when it has a log and neither,
pending otherwise. On Slurm, a task with a log, no marker and no job of the run left in the queue died
without a word (time limit, out of memory): it counts as failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.layout import RunLayout
from pipeline.engines.slurm import queued_jobs
from pipeline.finalize.finish import finalize_phases
from pipeline.plan.config import config_from_dict
from pipeline.plan.phases import build_phases

ERROR_MARK = "| ERROR"
TAIL_LINES = 4


@dataclass
class PhaseStatus:
    name: str
    tasks: int
    done: list[int] = field(default_factory=list)
    running: list[int] = field(default_factory=list)
    failed: dict[int, list[str]] = field(default_factory=dict)  # rank -> last error lines

    @property
    def pending(self) -> int:
        return self.tasks - len(self.done) - len(self.running) - len(self.failed)


def _error_tail(log: Path) -> list[str] | None:
    """The last lines from the first ERROR line on, or None when the log has no error."""
    lines = log.read_text(errors="replace").splitlines()
    first = next((i for i, line in enumerate(lines) if ERROR_MARK in line), None)
    if first is None:
        return None
    tail = [line for line in lines[first:] if line.strip()]
    # loguru's traceback ends with the exception line: keep the ERROR line and the last lines
    return [tail[0]] + tail[1:][-(TAIL_LINES - 1):] if len(tail) > TAIL_LINES else tail


def _slurm_jobs_queued(root: Path) -> bool | None:
    """Whether any Slurm job of the run is still queued or running; None when the run is not on Slurm."""
    jobs = queued_jobs(RunLayout(root))
    return None if jobs is None else bool(jobs)


def _phase_tasks(root: Path) -> list[tuple[str, int]]:
    """(phase, task count) in run order, from the run's resolved config."""
    resolved = RunLayout(root).read_resolved()
    config = config_from_dict(resolved["config"])
    phases = build_phases(config, resolved["inputs"], root)
    return [(p.name, p.tasks) for p in phases + finalize_phases(config, RunLayout(root), phases)]


def run_status(root: Path) -> list[PhaseStatus]:
    logs = root / "logs"
    queued = _slurm_jobs_queued(root)
    result = []
    for name, tasks in _phase_tasks(root):
        status = PhaseStatus(name, tasks)
        folder = logs / name
        done = {p.name for p in (folder / "completions").glob("*")}
        for rank in range(tasks):
            log = folder / "logs" / f"task_{rank:05d}.log"
            if f"{rank:05d}" in done:
                status.done.append(rank)
            elif log.exists():
                tail = _error_tail(log)
                if tail is not None:
                    status.failed[rank] = tail
                elif queued is False:
                    status.failed[rank] = [f"no error logged and no job of the run left in Slurm's queue: killed "
                                           f"(time limit, memory?); see {folder / 'slurm_logs'}"]
                else:
                    status.running.append(rank)
        result.append(status)
    return result


def format_status(root: Path, phases: list[PhaseStatus]) -> str:
    lines = [f"{'phase':<14} {'tasks':>6} {'done':>6} {'running':>8} {'failed':>7} {'pending':>8}"]
    for p in phases:
        lines.append(f"{p.name:<14} {p.tasks:>6} {len(p.done):>6} {len(p.running):>8} {len(p.failed):>7} {p.pending:>8}")
    finished = (root / "summary.json").exists() and all(len(p.done) == p.tasks for p in phases)
    lines.append(f"{'finalize':<14} {'done: summary.json written' if finished else 'not yet':>40}")
    for p in phases:
        for rank, tail in sorted(p.failed.items()):
            lines.append(f"\nfailed: {p.name} task {rank} ({root / 'logs' / p.name / 'logs' / f'task_{rank:05d}.log'})")
            lines += [f"  {line}" for line in tail]
    if any(p.failed for p in phases):
        lines.append("\nrerun the same `ccpipe run` command to redo only the tasks that did not complete")
    return "\n".join(lines)
