"""llm.c's `.bin` token shards: the format a GPU trainer reads directly.

    header: 256 little-endian int32 = [20240520 (magic), 1 (version), n_tokens, 0, ...]  (1024 bytes)
    body:   n_tokens uint16 (GPT-2's largest id, 50256, fits)
or, for vocabularies above 65,536 ids, llm.c's "llama-3" format: magic 20240801, version 7, uint32 tokens.
The formats live in `stages/tokens/binformat.py`; a shard's format is its token files' (`*.tokens` / `*.u32.tokens`).

As llm.c's `dev/data/fineweb.py`: every document is preceded by `<|endoftext|>`, shard 0 is the validation
shard (`{prefix}_val_000000.bin`) and the rest are `{prefix}_train_{i:06d}.bin`, filled to exactly
`shard_tokens` (a document may continue in the next shard). Shard 0 holds the first whole documents up to
`output.val_tokens` (default `shard_tokens`: llm.c's 100 M) and at most `output.val_fraction` of the language's
tokens (`validation_tokens`): a 1 B-token run gets llm.c's layout, a 100 k-token one 10 % validation and 90 %
training, and any language with two documents or more both a validation and a training shard.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from stages.tokens import binformat
from stages.tokens.binformat import GPT2, HEADER_BYTES, HEADER_INTS  # noqa: F401 -- part of this module's interface
from stages.tokens.binformat import (
    BinFormatError as ShardError,  # a `.bin` file that is not a valid llm.c shard
)
from stages.utils.io import atomic_path

MAGIC = GPT2.magic
VERSION = GPT2.version


def shard_name(prefix: str, index: int) -> str:
    return f"{prefix}_{'val' if index == 0 else 'train'}_{index:06d}.bin"


def write_shard(path: str | Path, tokens: np.ndarray, fmt: binformat.BinFormat = GPT2) -> None:
    """Write one shard atomically (temporary name, then rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(fmt.header(len(tokens)))
        f.write(np.asarray(tokens, dtype=fmt.dtype).tobytes())


def read_header(path: str | Path) -> int:
    """Validate a shard's header and size as llm.c's loader does (either format); returns its token count."""
    return binformat.read_header(path)[1]


def read_tokens(path: str | Path) -> np.ndarray:
    return binformat.read_tokens(path)


SCAN_TOKENS = 1 << 20  # tokens read at a time looking for a document start near the validation cap


def _read_span(token_files: list, lengths: list[int], start: int, count: int) -> np.ndarray:
    """Tokens [start, start + count) of the files concatenated."""
    parts, offset = [], 0
    for path, n in zip(token_files, lengths):
        lo, hi = max(start, offset), min(start + count, offset + n)
        if lo < hi:
            fmt = binformat.token_file_format(path)
            parts.append(np.fromfile(path, dtype=fmt.dtype, offset=(lo - offset) * fmt.itemsize, count=hi - lo))
        offset += n
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)


def validation_tokens(token_files: Iterable[str | Path], val_tokens: int, val_fraction: float) -> int:
    """Tokens of shard 0: the first whole documents whose tokens fit in min(`val_tokens`, `val_fraction` x the
    language's tokens), and at least one document; a language of one document is all validation.

    Documents start at `<|endoftext|>`, read off the first token (every document is preceded by it): only
    the tokens around the cap are read, backwards, then forwards when the first document alone exceeds it."""
    token_files = list(token_files)
    lengths = [token_file_length(p) for p in token_files]
    total = sum(lengths)
    if total == 0:
        return 0
    eot = _read_span(token_files, lengths, 0, 1)[0]
    cap = min(val_tokens, int(total * val_fraction), total - 1)
    end = cap + 1  # a document starting at `cap` ends the validation shard at exactly `cap` tokens
    while end > 1:  # the last document start in (0, cap]
        start = max(1, end - SCAN_TOKENS)
        hits = np.flatnonzero(_read_span(token_files, lengths, start, end - start) == eot)
        if len(hits):
            return start + int(hits[-1])
        end = start
    for start in range(cap + 1, total, SCAN_TOKENS):  # the first document is longer than the cap: it alone
        hits = np.flatnonzero(_read_span(token_files, lengths, start, SCAN_TOKENS) == eot)
        if len(hits):
            return start + int(hits[0])
    return total


def write_shards(token_files: Iterable[str | Path], out_dir: str | Path, prefix: str, shard_tokens: int,
                 first_shard: int | None = None) -> list[dict]:
    """Concatenate per-task token files, in the order given, into shards of `shard_tokens` tokens, the first
    of `first_shard` (the validation shard: `validation_tokens`; None: `shard_tokens` too).

    Streams file by file into the open shard and patches its header when it is full, so memory stays at
    one task's tokens whatever the shard size. Returns [{"file", "tokens"}].
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[dict] = []
    current, filled = None, 0
    token_files = list(token_files)
    formats = {binformat.token_file_format(p) for p in token_files}
    if len(formats) > 1:
        raise ShardError(f"{out_dir}: token files of both widths (16 and 32 bits) for one set of shards")
    fmt = formats.pop() if formats else GPT2

    def close_current():
        nonlocal current, filled
        current.seek(0)
        current.write(fmt.header(filled))
        current.close()
        name = shard_name(prefix, len(written))
        os.replace(out_dir / f"{name}.tmp", out_dir / name)
        written.append({"file": name, "tokens": int(filled)})
        current, filled = None, 0

    def size() -> int:
        return first_shard if first_shard is not None and not written else shard_tokens

    for path in token_files:
        tokens = binformat.read_token_file(path)
        pos = 0
        while pos < len(tokens):
            if current is None:
                current = open(out_dir / f"{shard_name(prefix, len(written))}.tmp", "wb")
                current.write(b"\0" * HEADER_BYTES)
            take = min(size() - filled, len(tokens) - pos)
            current.write(tokens[pos:pos + take].tobytes())
            filled, pos = filled + take, pos + take
            if filled == size():
                close_current()
    if current is not None:
        close_current()
    return written


def token_file_length(path: str | Path) -> int:
    """Tokens in a raw token file (the run's `work/tokens/*.tokens`, 16 or 32 bits by name), from its size."""
    return binformat.token_file_length(path)


def write_split_shards(val_files: list[str | Path], train_files: list[str | Path], out_dir: str | Path, prefix: str,
                       shard_tokens: int) -> list[dict]:
    """A release's shards: every validation token in shard 0 (`{prefix}_val_000000.bin`, where llm.c looks for
    it), then the training tokens in shards 1, 2, ... of exactly `shard_tokens` (the last one shorter).

    Returns [{"file", "tokens"}] in shard order.
    """
    out_dir = Path(out_dir)
    val_tokens = sum(token_file_length(p) for p in val_files)
    written = write_shards(val_files, out_dir, prefix, shard_tokens=max(1, val_tokens))
    # write_shards numbers from 0, the validation name: write the training shards aside, then renumber from 1
    aside = out_dir / f".{prefix}_train.partial"
    for i, shard in enumerate(write_shards(train_files, aside, prefix, shard_tokens), start=1):
        os.replace(aside / shard["file"], out_dir / shard_name(prefix, i))
        written.append({"file": shard_name(prefix, i), "tokens": shard["tokens"]})
    aside.rmdir()
    return written
