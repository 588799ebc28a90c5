"""Dataset releases: a finished run packaged into an immutable directory that anyone can verify.

    RELEASE_DIR/
      README.md                                       dataset card (Hugging Face format), rendered from the manifest
      MANIFEST.json                                   every file (bytes, sha256, documents, tokens), totals, config,
                                                      versions and checksums, inputs, the run's funnel
      data/{lang}/{split}-{i:05d}-of-{n:05d}.parquet  FineWeb's schema, rows in the run's order
      bin/{lang}_val_000000.bin                       llm.c shards: every validation token in shard 0,
      bin/{lang}_train_{i:06d}.bin                    then the training tokens from shard 1

The split is a function of the text alone: a document is in validation when the first 8 bytes of
sha256(text), as a big-endian integer, are below `validation_fraction * 2**64`. Identical texts never straddle
the split, and a document keeps its side from one release to the next.

Tokens come from the run's own token files (`work/tokens/{lang}/{rank}.tokens`), cut at the document
boundaries that the parquet rows' `token_count` give (each document is `<|endoftext|>` + its tokens): on the
bench run, 0.016 s for 294k tokens against 0.18 s to re-tokenize the text, and the very tokens of the run.
When `work/` was deleted, the text is re-tokenized with the run's vocabulary (its sha256 must match) and must
reproduce every row's `token_count`.

The card is a pure function of MANIFEST.json, so `verify` checks their agreement by rendering it again.
Nothing in a release depends on the machine, the time or `--workers`: two builds are byte-identical.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from pipeline.card import CARD_VERSION, SPLITS, card_front_matter, render_card
from stages import binformat

log = logging.getLogger(__name__)

FORMAT = "ccpipe-release/1"
SPLIT_RULE = ("validation iff int.from_bytes(sha256(text.encode('utf-8')).digest()[:8], 'big') "
              "< validation_fraction * 2**64")
PARQUET_DOCUMENTS = 100_000  # rows per parquet file (FineWeb's files hold ~1M rows; viewers prefer smaller)
ROW_GROUP_ROWS = 10_000
# the run summary's keys that describe the data, not the machine it ran on (no timings, no shard list)
FUNNEL_KEYS = ("records_total", "kept", "dropped", "dropped_total", "conservation_ok", "kept_by_language",
               "tokens", "tokens_by_language", "pii", "files", "errors")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")


class ReleaseError(ValueError):
    """A release that cannot be built or read: the message names the file or option."""


# ---------------------------------------------------------------------------------------------- small pieces

def canonical_json(data) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_file(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def validation_mask(texts: list[str], fraction: float) -> np.ndarray:
    """True for the documents of the validation split (see SPLIT_RULE)."""
    cut = int(fraction * 2**64)
    return np.array([int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "big") < cut for t in texts], dtype=bool)


def _portable(value):
    """Local paths reduced to their file name: a release names no directory of the machine that built it."""
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_portable(v) for v in value]
    if isinstance(value, str) and "://" not in value and value.startswith(("/", "./", "../", "~")):
        return os.path.basename(value)
    return value


def _run_lengths(token_counts: np.ndarray) -> np.ndarray:
    return np.asarray(token_counts, dtype=np.int64) + 1  # + the <|endoftext|> before each document



def _tasks(run_dir: Path) -> list[dict]:
    """The run's tasks per language: parquet files `{counter:03d}_{rank:05d}.parquet` grouped by rank."""
    tasks = []
    for lang_dir in sorted(p for p in (run_dir / "parquet").glob("*") if p.is_dir()):
        by_rank: dict[str, list[str]] = {}
        for path in sorted(lang_dir.glob("*.parquet")):
            by_rank.setdefault(path.stem.rsplit("_", 1)[-1], []).append(str(path))
        for rank, files in sorted(by_rank.items()):
            tokens = binformat.find_token_file(run_dir / "work" / "tokens" / lang_dir.name, rank)  # 16 or 32 bits
            tasks.append({"language": lang_dir.name, "rank": rank, "parquet": files,
                          "tokens": str(tokens) if tokens is not None else None})
    return tasks


def _task_tokens(task: dict, table, tokenizer: dict | None) -> np.ndarray:
    """The task's token stream: from its token file, else re-tokenized; checked against the rows' token_count."""
    counts = table.column("token_count").to_numpy()
    lengths = _run_lengths(counts)
    if task["tokens"] is not None:
        source = task["tokens"]
        tokens = binformat.read_token_file(source)
    else:
        from stages.tokenize import BPETokenizer

        source = f"re-tokenized {task['parquet'][0]}"
        tok = BPETokenizer(tokenizer["path"], tokenizer["eot_token"], tokenizer.get("pattern"))
        ids = tok.encode_batch(table.column("text").to_pylist())
        if any(len(i) != c for i, c in zip(ids, counts)):
            raise ReleaseError(f"{tokenizer['path']}: does not reproduce the token_count of {task['parquet'][0]}")
        dtype = tok.bin_format.dtype
        tokens = np.concatenate([np.asarray([tok.eot, *doc], dtype=dtype) for doc in ids] or [np.zeros(0, dtype)])
    if len(tokens) != lengths.sum():
        raise ReleaseError(f"{source}: {len(tokens)} tokens, but the token_count of the rows of "
                           f"{', '.join(task['parquet'])} add up to {int(lengths.sum())}")
    starts = np.cumsum(lengths) - lengths
    if len(starts) and (tokens[starts] != tokenizer["eot"]).any():
        raise ReleaseError(f"{source}: documents do not start with <|endoftext|> where the rows' token_count say")
    return tokens


def split_task(task: dict, fraction: float, parts: str, tokenizer: dict) -> dict:
    """One task of the run into its train and validation parts (Arrow rows + raw tokens). Runs in a worker."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.summary import FINEWEB_SCHEMA

    tables = []
    for path in task["parquet"]:
        table = pq.read_table(path)
        if not table.schema.equals(FINEWEB_SCHEMA):
            raise ReleaseError(f"{path}: schema differs from FineWeb's ({table.schema.names})")
        tables.append(table)
    table = pa.concat_tables(tables)
    tokens = _task_tokens(task, table, tokenizer)
    # the WARC as given to `ccpipe run`: URLs stay, local paths become file names (no host paths in a release)
    paths = pa.array([_portable(p) for p in table.column("file_path").to_pylist()], pa.string())
    table = table.set_column(table.schema.get_field_index("file_path"), "file_path", paths)
    lengths = _run_lengths(table.column("token_count").to_numpy())
    in_val = validation_mask(table.column("text").to_pylist(), fraction)
    out = Path(parts) / task["language"]
    out.mkdir(parents=True, exist_ok=True)
    result = {"dumps": sorted(set(table.column("dump").to_pylist()) - {None})}
    for split, mask in (("train", ~in_val), ("validation", in_val)):
        stem = out / f"{task['rank']}.{split}"
        with pa.ipc.new_file(f"{stem}.arrow", FINEWEB_SCHEMA) as writer:
            writer.write_table(table.filter(pa.array(mask)))
        name = binformat.token_file_name(str(stem), binformat.GPT2 if tokens.itemsize == 2 else binformat.LLAMA3)
        tokens[np.repeat(mask, lengths)].tofile(name)
        result[split] = {"arrow": f"{stem}.arrow", "tokens": name}
    return result


def _write_parquet(parts: list[str], out_dir: Path, split: str, docs_per_file: int) -> list[dict]:
    """Concatenate Arrow parts, in order, into parquet files of at most `docs_per_file` rows, fixed settings."""
    import pyarrow.parquet as pq

    from pipeline.summary import FINEWEB_SCHEMA

    tables = [_read_part(p) for p in parts]
    n_files = -(-sum(t.num_rows for t in tables) // docs_per_file)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, writer, rows, tokens = [], None, 0, 0
    for table in tables:
        while table.num_rows:
            if writer is None:
                path = out_dir / f"{split}-{len(written):05d}-of-{n_files:05d}.parquet"
                writer = pq.ParquetWriter(path, FINEWEB_SCHEMA, compression="zstd", compression_level=3,
                                          version="2.6", write_statistics=True)
            chunk = table.slice(0, docs_per_file - rows)
            writer.write_table(chunk, row_group_size=ROW_GROUP_ROWS)
            rows += chunk.num_rows
            tokens += int(_run_lengths(chunk.column("token_count").to_numpy()).sum())
            table = table.slice(chunk.num_rows)
            if rows == docs_per_file:
                writer.close()
                written.append({"path": path, "documents": rows, "tokens": tokens})
                writer, rows, tokens = None, 0, 0
    if writer is not None:
        writer.close()
        written.append({"path": path, "documents": rows, "tokens": tokens})
    return written


def _read_part(path: str):
    """An Arrow part, memory-mapped: concatenating a split costs page cache, not memory."""
    import pyarrow as pa

    return pa.ipc.open_file(pa.memory_map(path)).read_all()


def _doc_starts(parts: list[str]) -> np.ndarray:
    """Offsets of the documents in the concatenated token stream of these parts."""
    counts = [_read_part(p).column("token_count").to_numpy() for p in parts]
    lengths = _run_lengths(np.concatenate(counts)) if counts else np.zeros(0, dtype=np.int64)
    return np.cumsum(lengths) - lengths


def _run_tokenizer(resolved: dict, override: str | None, needed: bool) -> dict:
    """The run's vocabulary and `<|endoftext|>` id; when its token files are gone (`needed`), the vocabulary
    must be a file with the run's sha256, to re-tokenize with."""
    recorded = resolved.get("provenance", {}).get("tokenizer", {})
    info = {"path": override or resolved["config"]["tokenizer"]["name"],
            "eot_token": resolved["config"]["tokenizer"]["eot_token"], "eot": recorded.get("eot", 50256),
            "pattern": resolved["config"]["tokenizer"].get("pattern")}
    if needed and not os.path.isfile(info["path"]):
        raise ReleaseError(f"the run's token files (work/tokens) are gone and its vocabulary {info['path']!r} is "
                           "not a file: pass --tokenizer PATH to re-tokenize")
    if needed and recorded.get("sha256") and sha256_file(info["path"]) != recorded["sha256"]:
        raise ReleaseError(f"{info['path']}: sha256 differs from the run's vocabulary ({recorded['sha256']})")
    return info


def load_run(run_dir: str | Path) -> tuple[dict, dict]:
    """A finished run's resolved config and summary, or ReleaseError saying what is missing."""
    import yaml

    run_dir = Path(run_dir)
    for name in ("config.resolved.yaml", "summary.json"):
        if not (run_dir / name).is_file():
            raise ReleaseError(f"{run_dir}: not a finished ccpipe run (no {name})")
    resolved = yaml.safe_load((run_dir / "config.resolved.yaml").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    if not summary.get("conservation_ok", False):
        raise ReleaseError(f"{run_dir / 'summary.json'}: conservation_ok is false; a run with unaccounted records "
                           "is not released")
    return resolved, summary


def build_release(run_dir: str | Path, output: str | Path, name: str, version: str, *,
                  validation_fraction: float = 0.01, shard_tokens: int | None = None,
                  parquet_documents: int = PARQUET_DOCUMENTS, workers: int = 1, tokenizer: str | None = None,
                  license: str = "odc-by") -> dict:
    """Package a finished run into `output` (which must not exist); returns the manifest.

    `workers` processes split the run's tasks (hashing, cutting tokens, re-tokenizing if need be) and threads
    hash the files written; the result does not depend on it.
    """
    from pipeline.shards import write_split_shards

    run_dir, output = Path(run_dir), Path(output)
    if not NAME_RE.match(name):
        raise ReleaseError(f"--name {name!r}: letters, digits, '.', '_' and '-' only")
    if not VERSION_RE.match(version):
        raise ReleaseError(f"--version {version!r}: expected X.Y.Z (semantic versioning)")
    if not 0 < validation_fraction < 1:
        raise ReleaseError(f"--validation-fraction {validation_fraction}: expected a number between 0 and 1")
    counts = (("--workers", workers), ("--shard-tokens", shard_tokens), ("parquet_documents", parquet_documents))
    for option, value in counts:
        if value is not None and value < 1:
            raise ReleaseError(f"{option} {value}: expected at least 1")
    if output.exists():
        raise ReleaseError(f"{output}: exists; a release is immutable, build a new version into a new directory")
    resolved, summary = load_run(run_dir)
    tasks = _tasks(run_dir)
    if not tasks:
        raise ReleaseError(f"{run_dir}: no parquet files under parquet/")
    tok = _run_tokenizer(resolved, tokenizer, needed=any(t["tokens"] is None for t in tasks))
    shard_tokens = shard_tokens or resolved["config"]["output"]["shard_tokens"]

    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.building-", dir=output.parent))
    try:
        parts = staging / "parts"
        args = [(t, validation_fraction, str(parts), tok) for t in tasks]
        if workers > 1:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                results = list(pool.map(split_task, *zip(*args)))
        else:
            results = [split_task(*a) for a in args]
        entries = []
        for lang in sorted({t["language"] for t in tasks}):
            mine = [r for t, r in zip(tasks, results) if t["language"] == lang]
            split_parts = {s: [r[s] for r in mine] for s in SPLITS}
            for split in SPLITS:
                files = _write_parquet([p["arrow"] for p in split_parts[split]], staging / "data" / lang, split,
                                       parquet_documents)
                if not files:
                    change = "lower" if split == "train" else "raise"
                    raise ReleaseError(f"the {split} split of {lang!r} is empty: {change} --validation-fraction "
                                       f"({validation_fraction})")
                entries += [{**f, "language": lang, "split": split, "format": "parquet"} for f in files]
            shards = write_split_shards([p["tokens"] for p in split_parts["validation"]],
                                        [p["tokens"] for p in split_parts["train"]], staging / "bin", lang,
                                        shard_tokens)
            entries += _bin_entries(staging / "bin", lang, shards,
                                    {s: _doc_starts([p["arrow"] for p in split_parts[s]]) for s in SPLITS})
        shutil.rmtree(parts)
        dumps = sorted({d for r in results for d in r["dumps"]})
        manifest = make_manifest(staging, entries, resolved, summary, name=name, version=version, dumps=dumps,
                                 split={"validation_fraction": validation_fraction, "rule": SPLIT_RULE,
                                        "shard_tokens": shard_tokens, "parquet_documents": parquet_documents},
                                 license=license, workers=workers)
        text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        manifest = json.loads(text)  # the card is rendered from what verify will read back
        (staging / "MANIFEST.json").write_text(text)
        (staging / "README.md").write_text(render_card(manifest))
        os.rename(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _bin_entries(bin_dir: Path, lang: str, shards: list[dict], starts: dict[str, np.ndarray]) -> list[dict]:
    """Manifest rows of a language's shards; `documents` counts the documents that start in each shard."""
    entries, offset = [], 0
    for i, shard in enumerate(shards):
        split = "validation" if i == 0 else "train"
        if i == 1:
            offset = 0  # the training stream starts again at 0
        s = starts[split]
        docs = int(np.searchsorted(s, offset + shard["tokens"]) - np.searchsorted(s, offset))
        entries.append({"path": bin_dir / shard["file"], "documents": docs, "tokens": shard["tokens"],
                        "language": lang, "split": split, "format": "bin"})
        offset += shard["tokens"]
    return entries


def make_manifest(root: Path, entries: list[dict], resolved: dict, summary: dict, *, name: str, version: str,
                  dumps: list[str], split: dict, license: str, workers: int) -> dict:
    from pipeline.ledger import STAGES
    from pipeline.summary import FINEWEB_SCHEMA

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
    remaining, stages = summary.get("records_total", 0), []
    c = resolved["config"]
    ran = {"reader": True, "blocklist": c["blocklist"]["enabled"], "extract": True, "langid": True,
           "quality": any(c["quality"].values()), "dedup": c["dedup"]["enabled"], "pii": c["pii"]["enabled"],
           "tokenize": True}
    for stage in [s for s in STAGES if s in dropped or ran.get(s)] + sorted(set(dropped) - set(STAGES)):
        n = sum(dropped.get(stage, {}).values())
        stages.append({"stage": stage, "in": remaining, "dropped": n, "reasons": dropped.get(stage, {})})
        remaining -= n
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
    from importlib.metadata import distribution

    import pipeline

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


# ---------------------------------------------------------------------------------------------- reading

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



# ---------------------------------------------------------------------------------------------- verify

def verify_release(release_dir: str | Path) -> list[str]:
    """Recompute everything the manifest and the card claim; returns the problems, each `path: what differs`."""
    import pyarrow.parquet as pq

    from pipeline.shards import ShardError, read_header, read_tokens
    from pipeline.summary import FINEWEB_SCHEMA

    root = Path(release_dir)
    m = read_manifest(root)
    problems: list[str] = []
    listed = {f["path"]: f for f in m["files"]}
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {"MANIFEST.json", "README.md"}
    problems += [f"{p}: not listed in MANIFEST.json" for p in sorted(present - set(listed))]
    problems += [f"{p}: listed in MANIFEST.json but missing" for p in sorted(set(listed) - present)]
    fraction = m["split"]["validation_fraction"]
    eot = m["provenance"].get("tokenizer", {}).get("eot", 50256)
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
    # .bin files: header, size and count, and a <|endoftext|> wherever the parquet rows say a document starts
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
    problems += _check_manifest(m)
    return problems + _check_card(root / "README.md", m)


def _check_card(path: Path, m: dict) -> list[str]:
    """The card must be the one this manifest renders; a card of another CARD_VERSION (an older or newer
    ccpipe's wording) is held to its front matter only."""
    import yaml

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
    if front != card_front_matter(m):
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


# ---------------------------------------------------------------------------------------------- diff

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


def format_diff(d: dict) -> str:
    def delta(c):
        if isinstance(c["old"], (int, float)) and isinstance(c["new"], (int, float)) and not isinstance(c["old"], bool):
            pct = f" ({100 * (c['new'] - c['old']) / c['old']:+.1f}%)" if c["old"] else ""
            return f"{c['old']:,} -> {c['new']:,}  {c['new'] - c['old']:+,}{pct}"
        return f"{c['old']!r} -> {c['new']!r}"

    lines = [f"{d['old']} -> {d['new']}"]
    for section in ("counts", "funnel", "split", "config", "versions"):
        changed = [c for c in d[section] if c["old"] != c["new"]]
        lines.append(f"{section}: {'no change' if not changed else ''}".rstrip())
        lines += [f"  {c['key']}: {delta(c)}" for c in changed]
    for section in ("inputs", "files"):
        parts = [f"{len(v) if isinstance(v, list) else v} {k}" for k, v in d[section].items()]
        lines.append(f"{section}: {', '.join(parts)}")
        for k in ("added", "removed", "changed"):
            lines += [f"  {k} {p}" for p in d[section].get(k, [])[:10]]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- command line

EPILOG_RELEASE = """example:
  ccpipe release build out/bench --name bench --version 1.0.0 --output releases/bench-1.0.0"""
EPILOG_BUILD = """A release directory is immutable: building into an existing one is refused.

example:
  ccpipe release build out/bench --name bench --version 1.0.0 --output releases/bench-1.0.0 \\
      --validation-fraction 0.1 --workers 2"""
EPILOG_VERIFY = """Exit codes: 0 everything agrees; 1 a mismatch (each printed as `file: what differs`); 2 no release.

example:
  ccpipe release verify releases/bench-1.0.0"""
EPILOG_DIFF = """example:
  ccpipe release diff releases/bench-1.0.0 releases/bench-1.1.0"""


def cmd_build(args: argparse.Namespace) -> int:
    from pipeline.config import ConfigError, load_config
    from pipeline.inputs import InputError
    from pipeline.run import RunError, quiet_console, run_pipeline
    from stages.tokenize import TokenizerError

    if bool(args.run_dir) == bool(args.input):
        print("ccpipe: release build: give a finished RUN_DIR, or --input (and --config) to run first", file=sys.stderr)
        return 2
    if Path(args.output).exists():
        print(f"ccpipe: {args.output}: exists; a release is immutable, build into a new directory", file=sys.stderr)
        return 2
    options = {"name": args.name, "version": args.version, "validation_fraction": args.validation_fraction,
               "shard_tokens": args.shard_tokens, "workers": args.workers, "tokenizer": args.tokenizer,
               "license": args.license}
    run_dir, temporary = args.run_dir, None
    try:
        if args.input:
            overrides = {"run": {"workers": args.workers}}
            if args.tokenizer:
                overrides["tokenizer"] = {"name": args.tokenizer}
            config = load_config(args.config, overrides)
            quiet_console()
            run_dir = args.keep_run
            if run_dir is None:  # beside the release: same disk, removed at the end
                parent = Path(args.output).resolve().parent
                parent.mkdir(parents=True, exist_ok=True)
                run_dir = temporary = tempfile.mkdtemp(prefix=".ccpipe-run-", dir=parent)
            run_pipeline(config, args.input, run_dir, progress=not args.no_progress)
        manifest = build_release(run_dir, args.output, **options)
    except (ReleaseError, ConfigError, InputError, TokenizerError) as exc:
        print(f"ccpipe: {exc}", file=sys.stderr)
        return 2
    except RunError as exc:
        print(f"ccpipe: {exc}", file=sys.stderr)
        return 1
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
    t = manifest["totals"]
    for split in SPLITS:
        group = t["by_split"][split]
        print(f"{split:<11} {group['documents']:>9,} documents {group['tokens']:>13,} tokens")
    print(f"wrote {args.output}: {t['files']} files, {t['bytes']:,} bytes, MANIFEST.json, README.md")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        problems = verify_release(args.release_dir)
    except ReleaseError as exc:
        print(f"ccpipe: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"ccpipe: release verify: {len(problems)} problem(s) in {args.release_dir}", file=sys.stderr)
        return 1
    t = read_manifest(args.release_dir)["totals"]
    print(f"OK {args.release_dir}: {t['files']} files, {t['documents']:,} documents, {t['tokens']:,} tokens verified")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    try:
        d = diff_manifests(read_manifest(args.old), read_manifest(args.new))
    except ReleaseError as exc:
        print(f"ccpipe: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(d, indent=2, sort_keys=True) if args.json else format_diff(d))
    return 0


def add_commands(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    release = sub.add_parser("release", help="build, verify and compare dataset releases",
                             description="Versioned, verifiable dataset releases: parquet and .bin shards with a "
                                         "train/validation split, MANIFEST.json and a dataset card.",
                             epilog=EPILOG_RELEASE, formatter_class=fmt)
    commands = release.add_subparsers(dest="release_command", required=True, metavar="COMMAND")
    build = commands.add_parser("build", help="package a finished run (or run and package) into a release",
                                description="Package a finished run into an immutable release directory: parquet "
                                            "and .bin shards split by document hash, MANIFEST.json, README.md. With "
                                            "--input (and --config), run the pipeline first.",
                                epilog=EPILOG_BUILD, formatter_class=fmt)
    build.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a finished `ccpipe run` output directory")
    build.add_argument("--name", required=True, help="dataset name (letters, digits, '.', '_', '-')")
    build.add_argument("--version", required=True, metavar="X.Y.Z", help="release version")
    build.add_argument("--output", required=True, metavar="RELEASE_DIR", help="release directory (must not exist)")
    build.add_argument("--validation-fraction", type=float, default=0.01, metavar="F",
                       help="share of documents in validation, by hash of their text (default 0.01)")
    build.add_argument("--shard-tokens", type=int, metavar="N",
                       help="tokens per training .bin shard (default: the run's output.shard_tokens)")
    build.add_argument("--workers", type=int, default=1, help="parallel processes (the release does not depend on it)")
    build.add_argument("--license", default="odc-by", help="license in the card (default odc-by, as FineWeb)")
    build.add_argument("--tokenizer", metavar="PATH", help="vocabulary, when the run's work/tokens are gone or to run")
    build.add_argument("--config", help="with --input: YAML config of the run")
    build.add_argument("--input", nargs="+", metavar="PATH", help="run the pipeline on these WARC inputs first")
    build.add_argument("--keep-run", metavar="DIR", help="with --input: keep the run in DIR (default: a temporary one)")
    build.add_argument("--no-progress", action="store_true", help="no progress bars")
    build.set_defaults(func=cmd_build)
    verify = commands.add_parser("verify", help="recompute every checksum and count of a release",
                                 description="Recompute checksums, parquet schema, .bin headers and sizes, per-file "
                                             "and total counts, the split, and card/manifest agreement.",
                                 epilog=EPILOG_VERIFY, formatter_class=fmt)
    verify.add_argument("release_dir", metavar="RELEASE_DIR")
    verify.set_defaults(func=cmd_verify)
    diff = commands.add_parser("diff", help="what changed between two releases",
                               description="Counts, tokens, funnel, config, version and file differences between "
                                           "two releases.", epilog=EPILOG_DIFF, formatter_class=fmt)
    diff.add_argument("old", metavar="OLD")
    diff.add_argument("new", metavar="NEW")
    diff.add_argument("--json", action="store_true", help="the differences as JSON")
    diff.set_defaults(func=cmd_diff)
