"""A run's identity: the resolved config written beside its outputs, and whether a rerun may resume it.

`config.resolved.yaml` holds the config with every default filled in, the input files, the task count, the
funnel's stages, package versions, the version and sha256 of every model, list and vocabulary, a digest per
reusable stage (`reuse_keys`) and, for a `--reuse` run, which stages came from where (`reused`). A rerun
into the same directory resumes only when all of that (but the engine settings, `run.*`) is the same.
"""

from __future__ import annotations

import hashlib
import json
import logging
from importlib.metadata import version

import yaml

import pipeline
from pipeline.core.errors import Refused
from pipeline.core.layout import RunLayout
from pipeline.core.lock import LOCK_NAME
from pipeline.plan.config import Config, config_to_dict
from pipeline.plan.phases import Phase, early_drops, flat_steps, stage_order, task_count
from pipeline.plan.reuse import stage_keys
from stages.utils.io import read_yaml, write_text_atomic

log = logging.getLogger(__name__)


def _versions() -> dict:
    return {name: version(name) for name in
            ("datatrove", "trafilatura", "warcio", "presidio-analyzer", "tiktoken", "pyarrow", "fasttext-predict", "spacy")}


def provenance(phases: list[Phase]) -> dict:
    """Version and sha256 of every model, list and vocabulary the steps use."""
    found = {}
    for phase in phases:
        for step in flat_steps(phase):
            if hasattr(step, "provenance"):
                found[type(step).__name__] = step.provenance()
            if hasattr(step, "tokenizer"):
                found["tokenizer"] = step.tokenizer.provenance()
    return found


def resolved_config(config: Config, files: list[str], phases: list[Phase]) -> dict:
    resolved = {
        "ccpipe_version": pipeline.__version__,
        "config": config_to_dict(config),
        "inputs": files,
        "tasks": task_count(config, files),
        "stages": stage_order(phases),
        "early_drops": early_drops(phases),
        "versions": _versions(),
        "provenance": provenance(phases),
    }
    resolved["reuse_keys"] = stage_keys(resolved)  # what `--reuse` compares (pipeline/plan/reuse.py)
    return resolved


def _identity(resolved: dict) -> str:
    """What must match for a rerun to resume a run in place: everything that changes the output."""
    same = {k: v for k, v in resolved.items() if k != "reused"}  # where work came from does not change the output
    same["config"] = {k: v for k, v in resolved["config"].items() if k != "run"}
    if "input" in same["config"]:  # how remote inputs are retried and cached does not change the output
        same["config"]["input"] = {k: v for k, v in same["config"]["input"].items() if k not in ("retry", "cache_gb")}
    return hashlib.sha256(json.dumps(same, sort_keys=True).encode()).hexdigest()


def _what_changed(previous: dict, resolved: dict) -> str:
    before, now = previous.get("inputs") or [], resolved["inputs"]
    if before != now:  # first: other inputs change the task count too, but the inputs are what the user changed
        gone, new = [f for f in before if f not in now], [f for f in now if f not in before]
        if not gone and not new:
            return "the same input files in another order"
        first = (new or gone)[0]
        return (f"other input files ({len(before)} -> {len(now)} files; {len(new)} new, e.g. {first}, "
                f"{len(gone)} no longer read)" if new else
                f"other input files ({len(before)} -> {len(now)} files; {len(gone)} no longer read, e.g. {first})")
    if previous.get("tasks") != resolved["tasks"]:
        return (f"the task count changed ({previous.get('tasks')} -> {resolved['tasks']}): task r of N reads input "
                "files r, r+N, r+2N, ..., so the tasks already completed cover another split of the files and "
                "the output would silently lose or repeat documents")
    old, new = _identity({**previous, "inputs": [], "tasks": 0}), _identity({**resolved, "inputs": [], "tasks": 0})
    if old != new and previous.get("config", {}) != resolved["config"]:
        keys = []
        for section, values in resolved["config"].items():
            before = previous.get("config", {}).get(section)
            if section == "run" or before == values:
                continue
            if isinstance(values, dict):  # a section: name its keys; a top-level value (`recipe`): itself
                keys += [f"{section}.{key}" for key in values if (before or {}).get(key) != values[key]]
            else:
                keys.append(section)
        if keys:
            return "another config (" + ", ".join(keys) + ")"
    return "other package versions, models, blocklists or tokenizer"


def check_resumable(layout: RunLayout, resolved: dict) -> bool:
    """True when `layout.root` holds this very run (resume it), False when it is new; raises otherwise."""
    path = layout.resolved_config
    if layout.root.exists() and not layout.root.is_dir():
        raise Refused(f"{layout.root}: exists and is not a directory; choose another --output")
    if path.exists():
        previous = read_yaml(path)
        if _identity(previous) != _identity(resolved):
            raise Refused(f"{layout.root}: holds a run with other inputs, config or task count: "
                           f"{_what_changed(previous, resolved)}; rerun it as it was started, or use another "
                           "--output (or delete it) to start afresh")
        return True
    if layout.root.exists() and any(p.name != LOCK_NAME for p in layout.root.iterdir()):
        raise Refused(f"{layout.root}: exists and is not a ccpipe run directory; choose an empty or new --output")
    return False


def prepare_output(layout: RunLayout, resolved: dict) -> None:
    if check_resumable(layout, resolved):
        log.info("resuming the run in %s: completed tasks are skipped", layout.root)
    try:
        layout.root.mkdir(parents=True, exist_ok=True)
        # libyaml's emitter where PyYAML has it: the same text, 2 ms instead of 9
        text = yaml.dump(resolved, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False,
                         allow_unicode=True)
        write_text_atomic(layout.resolved_config, text)
    except OSError as exc:  # a read-only mount, an immutable directory, a file on the way, no space
        raise Refused(f"{layout.root}: cannot write the run directory here ({exc.strerror or exc})") from None
