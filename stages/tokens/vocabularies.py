"""tiktoken's published encodings, recognized offline: by name (from tiktoken's cache or a local folder) or by
the sha256 of a `.tiktoken` file.

A `.tiktoken` file holds only the mergeable ranks; the pre-tokenizer pattern and the special tokens are code,
in `tiktoken_ext/openai_public.py`. They are copied below from tiktoken 0.14.0 with the URL and sha256
tiktoken pins for each file (tests/stages/tokens/test_vocabularies.py checks them against tiktoken's own
constructors, fed the same files through a private cache directory). A file whose sha256 is one of these
takes that encoding's pattern and special tokens; any other `.tiktoken` file needs `tokenizer.pattern`.

Names resolve without the network: tiktoken's cache (`$TIKTOKEN_CACHE_DIR`, `$DATA_GYM_CACHE_DIR`, or
`{tmp}/data-gym-cache`: the file named by the sha1 of its URL, as tiktoken stores it), else
`$CCPIPE_TOKENIZERS/{name}.tiktoken` or `$CCPIPE_TOKENIZERS/{name}/{name}.tiktoken`. Never a download.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field

from stages.utils.io import sha256_file

ENDOFTEXT, ENDOFPROMPT = "<|endoftext|>", "<|endofprompt|>"
FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX = "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"
_BLOB = "https://openaipublic.blob.core.windows.net/encodings/"

R50K_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
                  r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
O200K_PATTERN = "|".join([  # noqa: FLY002 -- as tiktoken writes it
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])


@dataclass(frozen=True)
class Published:
    name: str
    url: str
    sha256: str
    pattern: str
    special_tokens: dict = field(hash=False)


PUBLISHED = {p.sha256: p for p in [
    Published("r50k_base", _BLOB + "r50k_base.tiktoken",
              "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930", R50K_PATTERN, {ENDOFTEXT: 50256}),
    Published("p50k_base", _BLOB + "p50k_base.tiktoken",
              "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069", R50K_PATTERN, {ENDOFTEXT: 50256}),
    Published("cl100k_base", _BLOB + "cl100k_base.tiktoken",
              "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7", CL100K_PATTERN,
              {ENDOFTEXT: 100257, FIM_PREFIX: 100258, FIM_MIDDLE: 100259, FIM_SUFFIX: 100260, ENDOFPROMPT: 100276}),
    Published("o200k_base", _BLOB + "o200k_base.tiktoken",
              "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d", O200K_PATTERN,
              {ENDOFTEXT: 199999, ENDOFPROMPT: 200018}),
]}
BY_NAME = {p.name: p for p in PUBLISHED.values()}
NAMED = ("cl100k_base", "o200k_base")  # accepted as --tokenizer names (gpt2 keeps its own path: stages/tokens/tokenize.py)


def tiktoken_cache_dir() -> str:
    """Where tiktoken keeps downloaded files (tiktoken/load.py's read_file_cached)."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return os.environ[var]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def locate(name: str) -> str | None:
    """A local file holding the published encoding `name` with the right sha256, or None."""
    enc = BY_NAME[name]
    candidates = []
    cache = tiktoken_cache_dir()
    if cache:
        candidates.append(os.path.join(cache, hashlib.sha1(enc.url.encode()).hexdigest()))
    if os.environ.get("CCPIPE_TOKENIZERS"):
        root = os.environ["CCPIPE_TOKENIZERS"]
        candidates += [os.path.join(root, f"{name}.tiktoken"), os.path.join(root, name, f"{name}.tiktoken")]
    for path in candidates:
        if os.path.isfile(path) and sha256_file(path) == enc.sha256:
            return path
    return None
