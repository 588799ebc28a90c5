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

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from pipeline.core.lock import live_writer
from pipeline.finalize.shards import write_split_shards
from pipeline.release.card import SPLITS, render_card
from pipeline.release.manifest import ReleaseError, _portable, make_manifest
from stages.tokens import binformat
from stages.tokens.tokenize import BPETokenizer
from stages.utils.io import sha256_file
from stages.writers.output import FINEWEB_SCHEMA

log = logging.getLogger(__name__)


SPLIT_RULE = ("validation iff int.from_bytes(sha256(text.encode('utf-8')).digest()[:8], 'big') "
              "< validation_fraction * 2**64")


PARQUET_DOCUMENTS = 100_000  # rows per parquet file (FineWeb's files hold ~1M rows; viewers prefer smaller)


ROW_GROUP_ROWS = 10_000


NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")


def validation_mask(texts: list[str], fraction: float) -> np.ndarray:
    """True for the documents of the validation split (see SPLIT_RULE)."""
    cut = int(fraction * 2**64)
    return np.array([int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "big") < cut for t in texts], dtype=bool)


def _run_lengths(token_counts: np.ndarray) -> np.ndarray:
    return np.asarray(token_counts, dtype=np.int64) + 1  # + the <|endoftext|> before each document


def _tasks(run_dir: Path) -> list[dict]:
    """The run's tasks per language: parquet files `{counter:03d}_{rank:05d}.parquet` grouped by rank."""
    tasks = []
    for lang_dir in sorted(p for p in (run_dir / "parquet").glob("*") if p.is_dir()):
        by_rank: dict[str, list[str]] = {}
        for path in sorted(lang_dir.glob("*.parquet")):
            by_rank.setdefault(path.stem.rsplit("_", 1)[-1], []).append(str(path))
        for rank, files in sorted(by_rank.items(), key=lambda item: int(item[0])):  # rank 100000 after 99999
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

    run_dir = Path(run_dir)
    if (holder := live_writer(run_dir)) is not None:  # a rerun rewrites what it would package
        raise ReleaseError(f"{run_dir}: the run is still being written (by {holder}); wait for it to end")
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
    run_dir, output = Path(run_dir), Path(output)
    _check_options(output, name, version, validation_fraction,
                   (("--workers", workers), ("--shard-tokens", shard_tokens), ("parquet_documents", parquet_documents)))
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
            entries += _language_files(staging, lang, {s: [r[s] for r in mine] for s in SPLITS}, validation_fraction,
                                       parquet_documents, shard_tokens)
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


def _check_options(output: Path, name: str, version: str, validation_fraction: float, counts) -> None:
    if not NAME_RE.match(name):
        raise ReleaseError(f"--name {name!r}: letters, digits, '.', '_' and '-' only")
    if not VERSION_RE.match(version):
        raise ReleaseError(f"--version {version!r}: expected X.Y.Z (semantic versioning)")
    if not 0 < validation_fraction < 1:
        raise ReleaseError(f"--validation-fraction {validation_fraction}: expected a number between 0 and 1")
    for option, value in counts:
        if value is not None and value < 1:
            raise ReleaseError(f"{option} {value}: expected at least 1")
    check_release_output(output)


def check_release_output(output: str | Path) -> None:
    """Refuse, before any work, an `--output` the final rename could not land on: anything that exists, a
    symbolic link too (a dangling one or a loop `exists()` calls absent), or a parent that is no directory."""
    output = Path(output)
    if output.is_symlink():
        target = os.readlink(output)
        raise ReleaseError(f"{output}: is a symbolic link (to {target}); a release is built into a new directory")
    if output.exists():
        raise ReleaseError(f"{output}: exists; a release is immutable, build a new version into a new directory")
    for parent in output.absolute().parents:
        if parent.is_symlink() and not parent.exists():  # a link loop or a dangling link on the way
            raise ReleaseError(f"{output}: {parent} is a symbolic link that leads nowhere")
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise ReleaseError(f"{output}: {parent} is not a directory")
            break


def _language_files(staging: Path, lang: str, split_parts: dict[str, list[dict]], validation_fraction: float,
                    parquet_documents: int, shard_tokens: int) -> list[dict]:
    """One language's parquet files per split and its `.bin` shards (validation first), as manifest rows."""
    entries = []
    for split in SPLITS:
        files = _write_parquet([p["arrow"] for p in split_parts[split]], staging / "data" / lang, split,
                               parquet_documents)
        if not files:
            change = "lower" if split == "train" else "raise"
            raise ReleaseError(f"the {split} split of {lang!r} is empty: {change} --validation-fraction "
                               f"({validation_fraction})")
        entries += [{**f, "language": lang, "split": split, "format": "parquet"} for f in files]
    shards = write_split_shards([p["tokens"] for p in split_parts["validation"]],
                                [p["tokens"] for p in split_parts["train"]], staging / "bin", lang, shard_tokens)
    return entries + _bin_entries(staging / "bin", lang, shards,
                                  {s: _doc_starts([p["arrow"] for p in split_parts[s]]) for s in SPLITS})


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
