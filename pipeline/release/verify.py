"""`ccpipe release verify`: recompute everything a release's manifest and card claim, name each file that differs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml

from pipeline.finalize.shards import ShardError, read_header, read_tokens
from pipeline.release.build import _run_lengths, validation_mask
from pipeline.release.card import CARD_VERSION, SPLITS, card_front_matter, render_card
from pipeline.release.manifest import canonical_json, read_manifest, totals
from stages.utils.io import sha256_file
from stages.writers.output import FINEWEB_SCHEMA


def verify_release(release_dir: str | Path) -> list[str]:
    """Recompute everything the manifest and the card claim; returns the problems, each `path: what differs`."""
    root = Path(release_dir)
    m = read_manifest(root)
    problems: list[str] = []
    listed = {f["path"]: f for f in m["files"]}
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {"MANIFEST.json", "README.md"}
    problems += [f"{p}: not listed in MANIFEST.json" for p in sorted(present - set(listed))]
    problems += [f"{p}: listed in MANIFEST.json but missing" for p in sorted(set(listed) - present)]
    starts, broken = _check_parquet(root, listed, present, m, problems)
    _check_bins(root, listed, present, m, starts, broken, problems)
    problems += _check_manifest(m)
    return problems + _check_card(root / "README.md", m)


def _check_parquet(root: Path, listed: dict, present: set, m: dict, problems: list[str]) -> tuple[dict, set]:
    """Bytes and sha256 of every file; schema, rows, tokens, language and split of every parquet file.
    Returns the documents' lengths per (language, split) and the (language, split) whose parquet is broken."""
    fraction = m["split"]["validation_fraction"]
    starts: dict[tuple, list[np.ndarray]] = {}  # (language, split) -> token_count+1 of each parquet file, in order
    broken: set[tuple] = set()  # (language, split) whose parquet could not be read: no structure check on its .bin
    for path, entry in sorted(listed.items()):
        full, key = root / path, (entry["language"], entry["split"])
        if path not in present:
            broken.add(key)
            continue
        if os.path.getsize(full) != entry["bytes"]:
            problems.append(f"{path}: {os.path.getsize(full)} bytes, MANIFEST.json says {entry['bytes']}")
        digest = sha256_file(full)
        if digest != entry["sha256"]:
            problems.append(f"{path}: sha256 {digest} differs from MANIFEST.json's {entry['sha256']}")
        if entry["format"] != "parquet":
            continue
        try:
            table = pq.read_table(full, columns=["text", "language", "token_count"])
            schema = pq.read_schema(full)
        except Exception as exc:  # noqa: BLE001 -- a damaged file raises anything from pyarrow: name it, go on
            problems.append(f"{path}: cannot be read as parquet ({type(exc).__name__}: {exc})")
            broken.add(key)
            continue
        if not schema.equals(FINEWEB_SCHEMA):
            problems.append(f"{path}: schema {schema.names} differs from FineWeb's {FINEWEB_SCHEMA.names}")
        lengths = _run_lengths(table.column("token_count").to_numpy())
        starts.setdefault(key, []).append(lengths)
        for what, got in (("documents", table.num_rows), ("tokens", int(lengths.sum()))):
            if got != entry[what]:
                problems.append(f"{path}: {got} {what}, MANIFEST.json says {entry[what]}")
        wrong_lang = sum(1 for x in table.column("language").to_pylist() if x != entry["language"])
        if wrong_lang:
            problems.append(f"{path}: {wrong_lang} rows are not in language {entry['language']!r}")
        in_val = validation_mask(table.column("text").to_pylist(), fraction)
        misplaced = int((in_val if entry["split"] == "train" else ~in_val).sum())
        if misplaced:
            problems.append(f"{path}: {misplaced} rows belong to the other split by their text's hash")
    return starts, broken


def _check_bins(root: Path, listed: dict, present: set, m: dict, starts: dict, broken: set,
                problems: list[str]) -> None:
    """`.bin` files: header, size and count, and a <|endoftext|> wherever the parquet rows say a document starts."""
    eot = m["provenance"].get("tokenizer", {}).get("eot", 50256)
    offsets: dict[tuple, int] = {}
    for path, entry in sorted(listed.items()):
        if entry["format"] != "bin" or path not in present:
            continue
        full, key = root / path, (entry["language"], entry["split"])
        try:
            n = read_header(full)
        except ShardError as exc:
            problems.append(str(exc).replace(str(full), path))
            broken.add(key)
            continue
        if n != entry["tokens"]:
            problems.append(f"{path}: header says {n} tokens, MANIFEST.json says {entry['tokens']}")
        offset = offsets.get(key, 0)
        offsets[key] = offset + n
        if key in broken or key not in starts:
            continue
        lengths = np.concatenate(starts[key])
        doc_starts = np.cumsum(lengths) - lengths
        mine = doc_starts[(doc_starts >= offset) & (doc_starts < offset + n)] - offset
        if len(mine) != entry["documents"]:
            problems.append(f"{path}: {len(mine)} documents start here by the parquet rows, MANIFEST.json says "
                            f"{entry['documents']}")
        bad = mine[read_tokens(full)[mine] != eot]
        if len(bad):
            problems.append(f"{path}: no <|endoftext|> at {len(bad)} document start(s), first at token {int(bad[0])}")


def _check_card(path: Path, m: dict) -> list[str]:
    """The card must be the one this manifest renders; a card of another CARD_VERSION (an older or newer
    ccpipe's wording) is held to its front matter only."""

    if not path.is_file():
        return ["README.md: missing"]
    card = path.read_text()
    if m.get("card_version") == CARD_VERSION:
        expected = render_card(m)
        return [] if card == expected else [f"README.md: {_first_difference(card, expected)}"]
    try:
        front = yaml.safe_load(card.split("---\n")[1])
    except (IndexError, yaml.YAMLError):
        return ["README.md: no YAML front matter between '---' lines"]
    if front != card_front_matter(m).to_dict():
        return ["README.md: front matter (license, language, size, configs) disagrees with MANIFEST.json"]
    return []


def _check_manifest(m: dict) -> list[str]:
    """The manifest's own sums: totals, parquet against .bin, release against the run's funnel, config hash."""
    problems = []
    recomputed = totals(m["files"])
    for key in ("files", "bytes", "documents", "tokens", "by_split", "by_language"):
        if recomputed[key] != m["totals"].get(key):
            problems.append(f"MANIFEST.json: totals.{key} is {m['totals'].get(key)}, "
                            f"its files add up to {recomputed[key]}")
    for split in SPLITS:
        bin_tokens = sum(f["tokens"] for f in m["files"] if f["format"] == "bin" and f["split"] == split)
        bin_docs = sum(f["documents"] for f in m["files"] if f["format"] == "bin" and f["split"] == split)
        group = recomputed["by_split"].get(split, {})
        if (bin_tokens, bin_docs) != (group.get("tokens", 0), group.get("documents", 0)):
            problems.append(f"MANIFEST.json: {split} .bin files hold {bin_docs} documents / {bin_tokens} tokens, "
                            f"its parquet files {group.get('documents', 0)} / {group.get('tokens', 0)}")
    for key in ("kept", "tokens"):
        got = recomputed["documents" if key == "kept" else "tokens"]
        if m["funnel"].get(key) != got:
            problems.append(f"MANIFEST.json: funnel.{key} is {m['funnel'].get(key)}, the release holds {got}")
    if hashlib.sha256(canonical_json(m["config"])).hexdigest() != m["config_sha256"]:
        problems.append("MANIFEST.json: config_sha256 does not match its config")
    return problems


def _first_difference(found: str, expected: str) -> str:
    a, b = found.splitlines(), expected.splitlines()
    for i, (x, y) in enumerate(zip(a, b), start=1):
        if x != y:
            return f"line {i} disagrees with MANIFEST.json: found {x[:120]!r}, expected {y[:120]!r}"
    return f"{len(a)} lines, the card rendered from MANIFEST.json has {len(b)}"
