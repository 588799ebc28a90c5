"""llm.c's two `.bin` token formats, and the raw token files a run writes before its shards: one place for both.

llm.c's `dev/data/data_common.py` (HEADERS_INFO) defines them: a header of 256 little-endian int32
`[magic, version, n_tokens, 0, ...]` (1024 bytes), then the tokens.

    "gpt-2"    magic 20240520, version 1, uint16 tokens   vocabularies up to 65,536 ids (GPT-2: 50,257)
    "llama-3"  magic 20240801, version 7, uint32 tokens   larger ones (cl100k_base 100,277; o200k_base 200,019)

A GPT-2-sized vocabulary is always written in the uint16 format, byte for byte as before the 32-bit one
existed; a larger one in the uint32 format. Readers take the format from the header.

The intermediate token files (`work/tokens/{lang}/{rank:05d}.tokens`) have no header: uint16 ones keep that
name, uint32 ones are `{rank:05d}.u32.tokens`, so the dtype travels with the file (and `*.tokens` finds both).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4


class BinFormatError(ValueError):
    """A token file that is not in a known format; the message names the file."""


@dataclass(frozen=True)
class BinFormat:
    name: str  # llm.c's model_desc
    magic: int
    version: int
    dtype: str  # numpy, little-endian
    token_suffix: str  # of the raw intermediate token files

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    @property
    def max_vocab(self) -> int:
        return 1 << (8 * self.itemsize)

    def header(self, n_tokens: int) -> bytes:
        header = np.zeros(HEADER_INTS, dtype="<i4")
        header[:3] = (self.magic, self.version, n_tokens)
        return header.tobytes()

    def describe(self) -> str:
        return f"llm.c {self.name} (magic {self.magic}, version {self.version}, {np.dtype(self.dtype).name} tokens)"


GPT2 = BinFormat("gpt-2", 20240520, 1, "<u2", ".tokens")
LLAMA3 = BinFormat("llama-3", 20240801, 7, "<u4", ".u32.tokens")
FORMATS = (GPT2, LLAMA3)


def for_vocab(n_vocab: int) -> BinFormat:
    """The smallest format whose tokens hold every id below `n_vocab`."""
    return GPT2 if n_vocab <= GPT2.max_vocab else LLAMA3


def by_name(name: str) -> BinFormat:
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    raise BinFormatError(f"unknown .bin format {name!r}; known: {[f.name for f in FORMATS]}")


def read_header(path: str | Path) -> tuple[BinFormat, int]:
    """Validate a shard's header and size as llm.c's loader does: its format and token count."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        header = np.frombuffer(f.read(HEADER_BYTES), dtype="<i4")
    if len(header) != HEADER_INTS:
        raise BinFormatError(f"{path}: too short for a .bin header ({size} bytes)")
    fmt = next((f for f in FORMATS if f.magic == header[0]), None)
    if fmt is None:
        raise BinFormatError(f"{path}: bad magic number {header[0]} "
                             f"(expected {' or '.join(str(f.magic) for f in FORMATS)})")
    if header[1] != fmt.version:
        raise BinFormatError(f"{path}: unsupported version {header[1]} (expected {fmt.version} for magic {fmt.magic})")
    n_tokens = int(header[2])
    expected = HEADER_BYTES + fmt.itemsize * n_tokens
    if size != expected:
        raise BinFormatError(f"{path}: size {size} bytes does not match its {n_tokens} tokens (expected {expected})")
    return fmt, n_tokens


def read_tokens(path: str | Path) -> np.ndarray:
    """A shard's tokens, memory-mapped, in the dtype its header says."""
    fmt, n_tokens = read_header(path)
    return np.memmap(path, dtype=fmt.dtype, mode="r", offset=HEADER_BYTES, shape=(n_tokens,))


def token_file_format(path: str | Path) -> BinFormat:
    """The format of a raw intermediate token file, from its name."""
    return LLAMA3 if str(path).endswith(LLAMA3.token_suffix) else GPT2


def token_file_name(stem: str, fmt: BinFormat) -> str:
    return f"{stem}{fmt.token_suffix}"


def find_token_file(folder: str | Path, stem: str) -> Path | None:
    """`{stem}.tokens` or `{stem}.u32.tokens` in `folder`, whichever exists."""
    for fmt in FORMATS:
        path = Path(folder) / token_file_name(stem, fmt)
        if path.is_file():
            return path
    return None


def read_token_file(path: str | Path) -> np.ndarray:
    return np.fromfile(path, dtype=token_file_format(path).dtype)


def token_file_length(path: str | Path) -> int:
    """Tokens in a raw token file, from its size."""
    size = os.path.getsize(path)
    itemsize = token_file_format(path).itemsize
    if size % itemsize:
        raise BinFormatError(f"{path}: {size} bytes is not a whole number of {8 * itemsize}-bit tokens")
    return size // itemsize
