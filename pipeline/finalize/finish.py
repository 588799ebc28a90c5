"""After the last phase: the `.bin` shards, the consolidated ledger, `summary.json`, and publishing.

`finalize_run` runs in the process that ran the phases (local, Ray); `finalize_dir` is the same for a run
directory whose phases ran elsewhere (the last job of a Slurm run, `ccpipe finalize DIR`).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import yaml

from pipeline.core.errors import RunError
from pipeline.core.layout import RunLayout
from pipeline.engines.tasks import incomplete_tasks, merge_stats
from pipeline.finalize.consolidate import consolidate
from pipeline.finalize.publish import publish_outputs
from pipeline.finalize.shards import write_shards
from pipeline.finalize.summary import build_summary, stage_seconds
from pipeline.plan.config import Config, config_from_dict
from pipeline.plan.phases import Phase, build_phases, early_drops, stage_order
from stages.io import write_json_atomic


def finalize_run(config: Config, layout: RunLayout, phases: list[Phase], elapsed: float) -> dict:
    """After the last phase: the `.bin` shards and `summary.json`. Reruns give the same bytes."""
    shards = finalize_shards(layout, config.output.shard_tokens)
    started = time.monotonic()
    consolidate(layout.decisions, layout.ledger)
    seconds = stage_seconds(layout, phases)
    seconds["ledger"] = round(seconds.get("ledger", 0.0) + time.monotonic() - started, 3)
    summary = build_summary(layout, stage_order(phases), shards, elapsed, seconds, early_drops(phases))
    write_json_atomic(layout.summary, summary)
    publish_outputs(layout)  # to the --output URL, when there is one
    return summary


def finalize_shards(layout: RunLayout, shard_tokens: int) -> list[dict]:
    """Concatenate every task's token file, in rank order, into `.bin` shards per language."""
    if layout.bin.exists():
        shutil.rmtree(layout.bin)  # rebuilt whole from the token files: a rerun gives the same bytes
    shards = []
    for lang_dir in sorted(p for p in layout.tokens.glob("*") if p.is_dir()):
        # `{rank}.tokens` or `{rank}.u32.tokens`; rank 100000 after 99999
        ranked = sorted(lang_dir.glob("*.tokens"), key=lambda p: int(p.name.split(".")[0]))
        written = write_shards(ranked, layout.bin, lang_dir.name, shard_tokens)
        shards += [{"language": lang_dir.name, **s} for s in written]
    return shards


def finalize_dir(root: Path) -> dict:
    """Shards, ledger and summary.json of a run whose phases are all done (on any engine): `ccpipe finalize`."""
    layout = RunLayout(root)
    resolved = yaml.safe_load(layout.resolved_config.read_text())
    config = config_from_dict(resolved["config"])
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
