"""Token ids replayed from another run (`ccpipe run --reuse`): the same text, the same tokenizer, the same ids.

Beside each token file, `Tokenize` writes which text each document's ids are: `{language}/{rank:05d}.keys`,
one 20-byte record per document in the token file's order, the text's 128-bit digest (`token_key`) and its
number of tokens (uint32, little-endian). A run started with `--reuse RUN` whose tokenizer is RUN's
(pipeline/plan/reuse.py: the `bpe_tokens` key) takes a kept document's ids from RUN's files of the same task
when RUN kept the same text, and encodes the others. Files missing, or that do not agree with each other (a
partly deleted `work/`), make the task encode every document.

On bench, a re-decided quality threshold keeps 256 texts of RUN's and 21 new ones: tiktoken took ~0.09 s of a
~2.2 s reuse run to encode them all again.
"""

from __future__ import annotations

import hashlib
import os
import sys
from array import array

from stages.tokens import binformat

KEY_BYTES = 16
RECORD_BYTES = KEY_BYTES + 4


def token_key(text: str) -> bytes:
    """A text's 128-bit digest: a pair of distinct texts collides with odds ~3e-39."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=KEY_BYTES).digest()


def keys_file_name(language: str, rank: int) -> str:
    return f"{language}/{rank:05d}.keys"


def key_record(key: bytes, n_tokens: int) -> bytes:
    return key + n_tokens.to_bytes(4, "little")


class TokenIds:
    """The ids of task `rank`'s documents in another run's token files (`folder`: its work/tokens), every
    language, by text digest: `get(key)` gives a document's ids or None. Each language's ids are held once
    (a task's token file: ~10 MB at 30,000 records), a document's copied out when asked for."""

    def __init__(self, spans: dict[bytes, tuple[array, int, int]]):
        self.spans = spans

    def get(self, key: bytes) -> array | None:
        found = self.spans.get(key)
        return None if found is None else found[0][found[1]:found[2]]


def read_token_ids(folder: str, rank: int, fmt: binformat.BinFormat, typecode: str, eot: int) -> TokenIds | None:
    """Task `rank`'s ids in another run's work/tokens (`folder`); None when a language's two files are not both
    there or do not agree."""
    out: dict[bytes, tuple[array, int, int]] = {}
    try:
        languages = sorted(e for e in os.listdir(folder) if os.path.isdir(os.path.join(folder, e)))
    except OSError:
        return None
    for language in languages:
        keys_path = os.path.join(folder, keys_file_name(language, rank))
        tokens_path = os.path.join(folder, binformat.token_file_name(f"{language}/{rank:05d}", fmt))
        if not os.path.exists(keys_path) and not os.path.exists(tokens_path):
            continue  # that task kept nothing in this language
        try:
            with open(keys_path, "rb") as f:
                keys = f.read()
            ids = array(typecode)
            with open(tokens_path, "rb") as f:
                ids.frombytes(f.read())
        except (OSError, ValueError):  # missing, or not a whole number of ids
            return None
        if sys.byteorder != "little":
            ids.byteswap()
        if len(keys) % RECORD_BYTES:
            return None
        pos = 0
        for i in range(0, len(keys), RECORD_BYTES):
            n = int.from_bytes(keys[i + KEY_BYTES:i + RECORD_BYTES], "little")
            if pos + n >= len(ids) or ids[pos] != eot:  # each document's ids follow its <|endoftext|>
                return None
            out[keys[i:i + KEY_BYTES]] = (ids, pos + 1, pos + 1 + n)
            pos += 1 + n
        if pos != len(ids):
            return None
    return TokenIds(out)
