"""Token ids replayed from another run (`ccpipe run --reuse`): the same text, the same tokenizer, the same ids.

A task writes its kept documents, in one order, to its token files (`work/tokens/{language}/{rank:05d}.tokens`:
each document's ids after an <|endoftext|>) and to its parquet files (`parquet/{language}/NNN_{rank:05d}.parquet`:
each document's text and `token_count`). A run started with `--reuse RUN` whose tokenizer is RUN's
(pipeline/plan/reuse.py: the `bpe_tokens` key) reads both of the same task and takes a kept document's ids
from there when RUN kept the same text (by its 128-bit digest), and encodes the others: nothing is kept for it
beyond RUN's outputs. Files missing, or that do not agree with each other (a partly deleted run), make the
task encode every document.

On bench, a re-decided quality threshold keeps 256 texts of RUN's and 21 new ones: tiktoken took ~0.1 s of a
~2.2 s reuse run to encode them all again.
"""

from __future__ import annotations

import os
import re
import sys
from array import array

import pyarrow as pa
import pyarrow.parquet as pq

from stages.tokens import binformat
from stages.utils.memo import text_key


def token_key(text: str) -> bytes:
    return text_key(text, 16)


class TokenIds:
    """A task's ids in another run, by text digest: `get(key)` gives a document's ids or None. Each language's
    ids are held once (a task's token file: ~10 MB at 30,000 records), a document's copied out when asked for."""

    def __init__(self, spans: dict[bytes, tuple[array, int, int]]):
        self.spans = spans

    def get(self, key: bytes) -> array | None:
        found = self.spans.get(key)
        return None if found is None else found[0][found[1]:found[2]]


def parquet_parts(folder: str, rank: int) -> list[str]:
    """Task `rank`'s parquet files in `folder`, in the order it wrote them: datatrove's writer names them
    `{rank}.parquet`, or `{n:03d}_{rank}.parquet` when it starts a new file past its size limit."""
    name = re.compile(rf"(?:(\d+)_)?{rank:05d}\.parquet")
    try:
        found = [(m.group(1) or "", e) for e in os.listdir(folder) if (m := name.fullmatch(e))]
    except OSError:
        return []
    return [os.path.join(folder, e) for _, e in sorted(found, key=lambda f: int(f[0] or -1))]


def read_token_ids(tokens: str, parquet: str, rank: int, fmt: binformat.BinFormat, typecode: str, eot: int
                   ) -> TokenIds | None:
    """Task `rank`'s ids in another run, from its work/tokens (`tokens`) and its texts in its parquet output
    (`parquet`); None when a language's files are not all there or do not agree."""
    out: dict[bytes, tuple[array, int, int]] = {}
    try:
        languages = sorted(e for e in os.listdir(tokens) if os.path.isdir(os.path.join(tokens, e)))
    except OSError:
        return None
    for language in languages:
        tokens_path = os.path.join(tokens, binformat.token_file_name(f"{language}/{rank:05d}", fmt))
        parts = parquet_parts(os.path.join(parquet, language), rank)
        if not parts and not os.path.exists(tokens_path):
            continue  # that task kept nothing in this language
        pos = 0
        try:
            ids = array(typecode)
            with open(tokens_path, "rb") as f:
                ids.frombytes(f.read())
            if sys.byteorder != "little":
                ids.byteswap()
            for text, n in _kept_texts(parts):
                if text is None or n is None or pos + n >= len(ids) or ids[pos] != eot:
                    return None  # each document's ids follow its <|endoftext|>
                out[token_key(text)] = (ids, pos + 1, pos + 1 + n)
                pos += 1 + n
        except (OSError, ValueError, KeyError, pa.ArrowException):  # missing, cut, or not a parquet of texts
            return None
        if pos != len(ids):
            return None
    return TokenIds(out)


def _kept_texts(parts: list[str]):
    """(text, token_count) of each row of the parquet files `parts`, a batch of rows at a time: a task's texts
    are never all held (tens of MB at 30,000 records)."""
    for path in parts:
        with pq.ParquetFile(path) as f:
            for batch in f.iter_batches(batch_size=1024, columns=["text", "token_count"]):
                yield from zip(batch.column("text").to_pylist(), batch.column("token_count").to_pylist())
