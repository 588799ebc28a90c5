"""`ccpipe status RUN` (tasks done / running / failed per phase, from the run's logging folder) and
`ccpipe finalize RUN` (the `.bin` shards and summary.json once every phase is done: the last Slurm job).

A task is done when datatrove wrote its completion marker (`logs/{phase}/completions/{rank}`), failed when
its log (`logs/{phase}/logs/task_{rank}.log`) holds an ERROR line, running when it has a log and neither,
pending otherwise. On Slurm, a task with a log, no marker and no job of the run left in the queue died
without a word (time limit, out of memory): it counts as failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

EPILOG_STATUS = """example:
  ccpipe status out/bench"""
EPILOG_FINALIZE = """example:
  ccpipe finalize /shared/runs/CC-MAIN-2024-22"""
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
    from pipeline.build import RunLayout
    from pipeline.executors import queued_jobs

    jobs = queued_jobs(RunLayout(root))
    return None if jobs is None else bool(jobs)


def _phase_tasks(root: Path) -> list[tuple[str, int]]:
    """(phase, task count) in run order, from the run's resolved config."""
    import yaml

    from pipeline.build import build_phases
    from pipeline.config import config_from_dict

    resolved = yaml.safe_load((root / "config.resolved.yaml").read_text())
    phases = build_phases(config_from_dict(resolved["config"]), resolved["inputs"], root)
    return [(p.name, p.tasks) for p in phases]


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


def _run_dir(arg: str) -> Path:
    from pipeline.config import Config
    from pipeline.remote import run_root

    return run_root(Config(), arg)[0]  # a URL: the default work dir of a run with that --output


def cmd_status(args: argparse.Namespace) -> int:
    root = Path(args.work_dir) if args.work_dir else _run_dir(args.run)
    if not (root / "config.resolved.yaml").exists():
        print(f"ccpipe: {root}: not a ccpipe run directory (no config.resolved.yaml)", file=sys.stderr)
        return 2
    phases = run_status(root)
    print(format_status(root, phases))
    return 1 if any(p.failed for p in phases) else 0


def finalize(root: Path) -> dict:
    """Shards, ledger and summary.json of a run whose phases are all done (on any engine)."""
    import yaml

    from pipeline.build import RunLayout, build_phases
    from pipeline.config import config_from_dict
    from pipeline.executors import incomplete_tasks, merge_stats
    from pipeline.run import RunError, finalize_run

    resolved = yaml.safe_load((root / "config.resolved.yaml").read_text())
    config = config_from_dict(resolved["config"])
    layout = RunLayout(root)
    phases = build_phases(config, resolved["inputs"], root)
    missing = {p.name: incomplete_tasks(layout, p) for p in phases}
    if any(missing.values()):
        raise RunError("tasks did not complete: " + "; ".join(f"{k} {v}" for k, v in missing.items() if v))
    for phase in phases:
        if not (layout.logs / phase.name / "stats.json").exists():
            merge_stats(layout, phase)
    submitted = layout.logs / "submitted.json"
    started = json.loads(submitted.read_text())["time"] if submitted.exists() else time.time()
    return finalize_run(config, layout, phases, time.time() - started)


def cmd_finalize(args: argparse.Namespace) -> int:
    from pipeline.run import RunError, quiet_console
    from pipeline.summary import funnel_table

    root = _run_dir(args.run)
    if not (root / "config.resolved.yaml").exists():
        print(f"ccpipe: {root}: not a ccpipe run directory (no config.resolved.yaml)", file=sys.stderr)
        return 2
    quiet_console()
    try:
        summary = finalize(root)
    except RunError as exc:
        print(f"ccpipe: {exc}", file=sys.stderr)
        return 1
    print(funnel_table(summary))
    print(f"wrote {root}/summary.json")
    return 0 if summary["conservation_ok"] else 1


def add_commands(subparsers) -> None:
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
