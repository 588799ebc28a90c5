"""`ccpipe release diff OLD NEW`: documents, tokens and bytes per split and language, the funnel, the config
key by key, versions and checksums, and the files added, removed or changed."""

from __future__ import annotations


def _flatten(data, prefix: str = "") -> dict:
    if isinstance(data, dict):
        out = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(data, list) and any(isinstance(v, dict) for v in data):
        out = {}
        for i, v in enumerate(data):
            out.update(_flatten(v, f"{prefix}[{v.get('name', i) if isinstance(v, dict) else i}]"))
        return out
    return {prefix: data}


def _changes(old, new) -> list[dict]:
    a, b = _flatten(old), _flatten(new)
    return [{"key": k, "old": a.get(k), "new": b.get(k)} for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def diff_manifests(old: dict, new: dict) -> dict:
    """What changed between two releases: counts and tokens, the funnel, config, versions, inputs, files."""
    counts = []
    for key in ["documents", "tokens", "bytes"]:
        counts.append({"key": key, "old": old["totals"][key], "new": new["totals"][key]})
    for scope in ("by_split", "by_language"):
        for c in _changes(old["totals"][scope], new["totals"][scope]) or []:
            counts.append({**c, "key": f"{scope}.{c['key']}"})
    funnel_keys = ("records_total", "kept", "dropped_total", "dropped", "pii")
    old_files = {f["path"]: f["sha256"] for f in old["files"]}
    new_files = {f["path"]: f["sha256"] for f in new["files"]}
    return {
        "old": f"{old['name']} {old['version']}",
        "new": f"{new['name']} {new['version']}",
        "counts": counts,
        "funnel": _changes({k: old["funnel"].get(k) for k in funnel_keys},
                           {k: new["funnel"].get(k) for k in funnel_keys}),
        "split": _changes(old["split"], new["split"]),
        "config": _changes(old["config"], new["config"]),
        "versions": _changes({k: old[k] for k in ("versions", "built_with", "provenance")},
                             {k: new[k] for k in ("versions", "built_with", "provenance")}),
        "inputs": {"added": sorted(set(new["inputs"]) - set(old["inputs"])),
                   "removed": sorted(set(old["inputs"]) - set(new["inputs"]))},
        "files": {"added": sorted(set(new_files) - set(old_files)), "removed": sorted(set(old_files) - set(new_files)),
                  "changed": sorted(p for p in set(old_files) & set(new_files) if old_files[p] != new_files[p]),
                  "same": sum(1 for p in set(old_files) & set(new_files) if old_files[p] == new_files[p])},
    }


def _number(x, sign: str = "") -> str:
    """1,234 or 0.15 (floats rounded to 6 decimals: a difference of 0.65 and 0.8 is not 0.15000000000000002)."""
    return format(round(x, 6) if isinstance(x, float) else x, f"{sign},")


def _delta(c: dict, absent_is_zero: bool) -> str:
    old, new = c["old"], c["new"]
    if absent_is_zero:  # a drop reason or language missing on one side counted none there
        old, new = (0 if old is None else old), (0 if new is None else new)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (old, new)):
        pct = f" ({100 * (new - old) / old:+.1f}%)" if old else ""
        return f"{_number(old)} -> {_number(new)}  {_number(new - old, '+')}{pct}"
    return " -> ".join("(absent)" if v is None else repr(v) for v in (old, new))


def format_diff(d: dict) -> str:
    lines = [f"{d['old']} -> {d['new']}"]
    for section in ("counts", "funnel", "split", "config", "versions"):
        changed = [c for c in d[section] if c["old"] != c["new"]]
        lines.append(f"{section}: {'no change' if not changed else ''}".rstrip())
        lines += [f"  {c['key']}: {_delta(c, section in ('counts', 'funnel', 'split'))}" for c in changed]
    for section in ("inputs", "files"):
        parts = [f"{len(v) if isinstance(v, list) else v} {k}" for k, v in d[section].items()]
        lines.append(f"{section}: {', '.join(parts)}")
        for k in ("added", "removed", "changed"):
            lines += [f"  {k} {p}" for p in d[section].get(k, [])[:10]]
    return "\n".join(lines)
