"""A release's MANIFEST.json: every file (bytes, sha256, documents, tokens), totals, config, versions and
checksums, inputs and the run's funnel; and reading it back."""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import distribution
from pathlib import Path

import pipeline
from pipeline.release.card import CARD_VERSION
from stages.utils.io import sha256_file
from stages.writers.output import FINEWEB_SCHEMA

FORMAT = "ccpipe-release/1"


# the run summary's keys that describe the data, not the machine it ran on (no timings, no shard list)
FUNNEL_KEYS = ("records_total", "kept", "dropped", "dropped_total", "conservation_ok", "kept_by_language",
               "tokens", "tokens_by_language", "pii", "files", "errors")


class ReleaseError(ValueError):
    """A release that cannot be built or read: the message names the file or option."""


def canonical_json(data) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _portable(value):
    """Local paths reduced to their file name: a release names no directory of the machine that built it."""
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_portable(v) for v in value]
    if isinstance(value, str) and "://" not in value and value.startswith(("/", "./", "../", "~")):
        return os.path.basename(value)
    return value


def make_manifest(root: Path, entries: list[dict], resolved: dict, summary: dict, *, name: str, version: str,
                  dumps: list[str], split: dict, license: str, workers: int) -> dict:
    paths = [e["path"] for e in entries]
    with ThreadPoolExecutor(max(1, workers)) as pool:  # hashlib releases the GIL on large buffers
        digests = list(pool.map(sha256_file, paths))
    files = sorted(({**e, "path": Path(e["path"]).relative_to(root).as_posix(), "bytes": os.path.getsize(e["path"]),
                     "sha256": d} for e, d in zip(entries, digests)), key=lambda f: f["path"])
    config = _portable(resolved["config"])
    config.get("run", {}).pop("workers", None)  # parallelism does not change the output
    funnel = {k: summary[k] for k in FUNNEL_KEYS if k in summary}
    funnel["errors"] = [{"path": _portable(e["path"]), "error": e["error"].replace(e["path"], _portable(e["path"]))}
                        for e in summary.get("errors", [])]
    dropped = summary.get("dropped", {})
    # the run's own funnel (pipeline.finalize.summary), with each stage's reasons
    stages = [{"stage": row["stage"], "in": row["in"], "dropped": row["dropped"],
               "reasons": row.get("reasons", dropped.get(row["stage"], {}))}
              for row in summary.get("funnel", [])]
    funnel["stages"] = stages
    return {
        "format": FORMAT,
        "card_version": CARD_VERSION,
        "name": name,
        "version": version,
        "license": license,
        "files": files,
        "totals": totals(files),
        "split": split,
        "schema": [{"name": f.name, "type": str(f.type)} for f in FINEWEB_SCHEMA],
        "config": config,
        "config_sha256": hashlib.sha256(canonical_json(config)).hexdigest(),
        "versions": {"ccpipe": resolved.get("ccpipe_version"), **resolved.get("versions", {})},
        "built_with": installed_versions(),
        "provenance": _portable(resolved.get("provenance", {})),
        "inputs": _portable(resolved.get("inputs", [])),
        "dumps": dumps,
        "funnel": funnel,
    }


def installed_versions() -> dict:
    """Version and sha256 of the code that built the release: for ccpipe its source files, for a wheel its
    RECORD (which lists the sha256 of every installed file)."""
    root = Path(pipeline.__file__).resolve().parent.parent
    source = hashlib.sha256()
    for path in sorted(p for package in ("pipeline", "stages") for p in (root / package).rglob("*.py")):
        source.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    found = {"ccpipe": {"version": pipeline.__version__, "sha256": source.hexdigest()}}
    for name in ("datatrove", "trafilatura", "pyarrow", "numpy"):
        dist = distribution(name)
        record = dist.read_text("RECORD")
        found[name] = {"version": dist.version, "sha256": hashlib.sha256(record.encode()).hexdigest() if record else None}
    return found


def totals(files: list[dict]) -> dict:
    """Documents and tokens per split and language (from the parquet files; the .bin files must agree)."""
    out = {"files": len(files), "bytes": sum(f["bytes"] for f in files), "documents": 0, "tokens": 0,
           "by_split": {}, "by_language": {}}
    for f in files:
        if f["format"] != "parquet":
            continue
        for group in (out["by_split"].setdefault(f["split"], {}),
                      out["by_language"].setdefault(f["language"], {}).setdefault(f["split"], {})):
            group["documents"] = group.get("documents", 0) + f["documents"]
            group["tokens"] = group.get("tokens", 0) + f["tokens"]
        out["documents"] += f["documents"]
        out["tokens"] += f["tokens"]
    return out


def read_manifest(release_dir: str | Path) -> dict:
    path = Path(release_dir) / "MANIFEST.json"
    if not Path(release_dir).is_dir():
        raise ReleaseError(f"{release_dir}: no such release directory")
    try:
        manifest = json.loads(path.read_text())
    except OSError as exc:
        raise ReleaseError(f"{path}: cannot read ({exc.strerror})") from exc
    except json.JSONDecodeError as exc:
        raise ReleaseError(f"{path}: not valid JSON (line {exc.lineno})") from exc
    if manifest.get("format") != FORMAT:
        raise ReleaseError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


def bin_files(release_dir: str | Path, split: str, language: str | None = None) -> list[Path]:
    """The `.bin` shards of one split (and language), in shard order, as the manifest lists them."""
    manifest = read_manifest(release_dir)
    langs = sorted({f["language"] for f in manifest["files"]})
    language = language or langs[0]
    if language not in langs:
        raise ReleaseError(f"{release_dir}: no language {language!r} (has {', '.join(langs)})")
    return [Path(release_dir) / f["path"] for f in manifest["files"]
            if f["format"] == "bin" and f["split"] == split and f["language"] == language]
