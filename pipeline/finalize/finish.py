"""After the last phase: the `.bin` shards, the consolidated ledger, `summary.json`, and publishing.

The shards and the ledger are written by two phases of tasks on the run's own engine (`finalize_phases`,
`pipeline.finalize.steps`), which `pipeline.run` runs after the others (Slurm: two more job arrays). Then
one small step, `finalize_run`, counts `summary.json` from the ledger with DuckDB and publishes. For a run
whose phases ran elsewhere (the last job of a Slurm run, `ccpipe finalize DIR`), `finalize_dir` runs the
finalize phases still missing on this machine first.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pipeline.core.errors import RunError
from pipeline.core.layout import RunLayout
from pipeline.core.lock import run_lock
from pipeline.engines.select import make_executor
from pipeline.engines.tasks import incomplete_tasks, merge_stats
from pipeline.finalize.publish import publish_outputs
from pipeline.finalize.steps import FinalizeIndex, FinalizeParts, shard_plan
from pipeline.finalize.summary import build_summary, stage_seconds
from pipeline.plan.config import Config, config_from_dict
from pipeline.plan.phases import Phase, build_phases, early_drops, stage_order
from pipeline.plan.reuse import reuse_of
from stages.utils.io import write_json_atomic

FINALIZE_LOCK_WAIT = 60.0  # seconds `ccpipe finalize` waits for a live writer of the run before it is refused


def finalize_phases(config: Config, layout: RunLayout, phases: list[Phase]) -> list[Phase]:
    """The index (one task), then the ledger parts and shards (`run.finalize_tasks`, by default one per
    base task), with the finalize resources of `run.slurm`."""
    parts = phases[0].tasks
    s = config.run.slurm
    resources = {"cpus": s.finalize_cpus, "mem_gb": s.finalize_mem_gb}
    out = config.output
    index = FinalizeIndex(str(layout.root), out.shard_tokens, out.val_tokens, out.val_fraction)
    return [Phase("finalize_index", [index], 1, **resources),
            Phase("finalize_parts", [FinalizeParts(str(layout.root), parts)],
                  max(1, min(config.run.finalize_tasks or parts, parts)), **resources)]


def finalize_run(config: Config, layout: RunLayout, phases: list[Phase], elapsed: float) -> dict:
    """Once every phase, the finalize ones included, is done: `summary.json`, then publishing."""
    shards = shard_plan(layout)
    seconds = stage_seconds(layout, phases + finalize_phases(config, layout, phases))
    summary = build_summary(layout, stage_order(phases), shards, elapsed, seconds, early_drops(phases))
    write_json_atomic(layout.summary, summary)
    if checks_passed(summary, config.run.strict):  # a run that does not add up is never uploaded
        publish_outputs(layout, config)  # to the --output URL, when there is one
    return summary


def checks_passed(summary: dict, strict: bool) -> bool:
    """What a run must pass to be published: it read something, its books balance, and with `run.strict`
    no file had an error. The command line says which failed (and exits 1)."""
    return not summary.get("run_failed") and summary["conservation_ok"] and not (strict and summary["errors"])


def _run_missing(config: Config, layout: RunLayout, phase: Phase) -> None:
    if incomplete_tasks(layout, phase):
        make_executor(config, layout, phase).run()
        if missing := incomplete_tasks(layout, phase):
            raise RunError(f"phase {phase.name!r}: tasks {missing} did not complete (task logs: "
                           f"{layout.logs / phase.name / 'logs'}); rerunning redoes only them")


def finalize_dir(root: Path) -> dict:
    """Shards, ledger and summary.json of a run whose phases are all done (on any engine): `ccpipe finalize`."""
    # the Slurm run's last job, or by hand: never beside a live writer of the run (but the command that
    # submitted that job may still be writing its last files: up to a minute)
    with run_lock(root, wait_seconds=FINALIZE_LOCK_WAIT):
        return _finalize_dir(RunLayout(root))


def _finalize_dir(layout: RunLayout) -> dict:
    root = layout.root
    resolved = layout.read_resolved()
    config = config_from_dict(resolved["config"])
    phases = build_phases(config, resolved["inputs"], root, reuse_of(resolved))  # the steps whose stats were kept
    missing = {p.name: incomplete_tasks(layout, p) for p in phases}
    if any(missing.values()):
        raise RunError("tasks did not complete: " + "; ".join(f"{k} {v}" for k, v in missing.items() if v))
    if config.run.executor == "slurm":  # the finalize job runs what is missing here, one process
        config = config.model_copy(update={"run": config.run.model_copy(update={"executor": "local"})})
    for phase in finalize_phases(config, layout, phases):
        _run_missing(config, layout, phase)
    for phase in phases + finalize_phases(config, layout, phases):
        if not (layout.logs / phase.name / "stats.json").exists():
            merge_stats(layout, phase)
    submitted = layout.logs / "submitted.json"
    started = json.loads(submitted.read_text())["time"] if submitted.exists() else time.time()
    return finalize_run(config, layout, phases, time.time() - started)
