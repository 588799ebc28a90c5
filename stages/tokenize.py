"""BPE tokenization: GPT-2 through tiktoken (default), or any Hugging Face `tokenizer.json`.

tiktoken's GPT-2 encodes ~15 MB/s on one thread, about 7x Hugging Face tokenizers (datatrove's
choice), so it is the default path. Each task writes its documents' tokens, each document preceded by
`<|endoftext|>`, as raw uint16 to `{output}/{language}/{rank:05d}.tokens`, in document order; the run's
last step concatenates them in rank order into llm.c `.bin` shards (`pipeline/shards.py`).

`token_count` on the document is the number of BPE tokens of its text (without the separator).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import sys
from array import array
from functools import cached_property

from datatrove.data import DocumentsPipeline
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.batching import batched

from stages.io import sha256_file

# the pre-tokenizer regex of GPT-2 (tiktoken's r50k_base / gpt2 encodings)
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
GPT2_TIKTOKEN_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
# OpenAI's gpt2.tiktoken (MIT, from openai/whisper), gzip-compressed: `gpt2` works offline (assets/README.md)
GPT2_BUNDLED = os.path.join(os.path.dirname(__file__), "assets", "gpt2.tiktoken.gz")


def bundled_gpt2_ranks() -> dict[bytes, int]:
    """The GPT-2 ranks from the shipped vocabulary, checked against the sha256 tiktoken expects for r50k."""
    with gzip.open(GPT2_BUNDLED, "rb") as f:
        data = f.read()
    if hashlib.sha256(data).hexdigest() != GPT2_TIKTOKEN_SHA256:
        raise TokenizerError(f"{GPT2_BUNDLED}: not the published gpt2.tiktoken (sha256 differs); reinstall ccpipe")
    return {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines() if line)}


class TokenizerError(ValueError):
    pass


class BPETokenizer:
    """One interface over tiktoken and Hugging Face tokenizers: `encode_batch`, `decode`, `eot`, `n_vocab`."""

    def __init__(self, name: str = "gpt2", eot_token: str = "<|endoftext|>"):
        self.name = name
        self.eot_token = eot_token
        if name != "gpt2" and not os.path.isfile(name):
            raise TokenizerError(f"tokenizer {name!r}: expected 'gpt2' or a path to a .tiktoken or tokenizer.json file")
        if name.endswith(".json"):
            self.kind = "huggingface"
        else:
            self.kind = "tiktoken"

    @cached_property
    def _impl(self):
        if self.kind == "huggingface":
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(self.name)
            if tok.token_to_id(self.eot_token) is None:
                raise TokenizerError(f"{self.name}: has no {self.eot_token!r} token (set tokenizer.eot_token)")
            return tok
        import tiktoken

        if self.name == "gpt2":
            # tiktoken's own `gpt2` encoding, built from the shipped file instead of a download: same ranks
            # (sha256-checked), pattern and special token, so the same ids
            return tiktoken.Encoding(name="gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=bundled_gpt2_ranks(),
                                     special_tokens={"<|endoftext|>": 50256}, explicit_n_vocab=50257)
        from tiktoken.load import load_tiktoken_bpe

        ranks = load_tiktoken_bpe(self.name)
        return tiktoken.Encoding(
            name=os.path.basename(self.name), pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
            special_tokens={self.eot_token: len(ranks)},
        )

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_impl", None)
        return state

    @property
    def eot(self) -> int:
        if self.kind == "huggingface":
            return self._impl.token_to_id(self.eot_token)
        return self._impl.eot_token if self.name == "gpt2" else self._impl.encode_single_token(self.eot_token)

    @property
    def n_vocab(self) -> int:
        return self._impl.get_vocab_size() if self.kind == "huggingface" else self._impl.n_vocab

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        if self.kind == "huggingface":
            return [e.ids for e in self._impl.encode_batch(texts, add_special_tokens=False)]
        # the same tokens as encode_ordinary_batch(texts, num_threads=1), which hands every text to a thread
        # pool and waits for it: calling the encoder here is 4x faster on short documents (bench_tokenize.py).
        # One thread: parallelism comes from tasks, and a thread pool per worker would oversubscribe cores.
        encode = self._impl.encode_ordinary
        return [encode(text) for text in texts]

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
        if self.kind == "huggingface":
            return self._impl.decode(ids, skip_special_tokens=False)
        return self._impl.decode(ids)

    def provenance(self) -> dict:
        info = {"name": self.name, "kind": self.kind, "eot": self.eot, "n_vocab": self.n_vocab}
        if os.path.isfile(self.name):
            info["sha256"] = sha256_file(self.name)
        else:
            info["sha256"] = GPT2_TIKTOKEN_SHA256
        return info


class Tokenize(PipelineStep):
    """Counts and stores each document's tokens; the documents themselves pass through unchanged."""

    name = "🔢 Tokenize"
    stage = "tokenize"
    type = "🔢 - TOKENIZER"

    def __init__(self, tokenizer: BPETokenizer, output_folder: str, batch_size: int = 256):
        super().__init__()
        self.tokenizer = tokenizer
        self.output_folder = get_datafolder(output_folder)
        self.batch_size = batch_size

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        tok = self.tokenizer
        if tok.n_vocab > 65536:
            raise TokenizerError(f"{tok.name}: {tok.n_vocab} tokens do not fit llm.c's uint16 .bin format")
        eot = tok.eot
        with self.output_folder.get_output_file_manager(mode="wb") as files:
            for batch in batched(data, self.batch_size):
                with self.track_time("batch"):
                    encoded = tok.encode_batch([doc.text for doc in batch])
                    by_language: dict[str, array] = {}  # one write per language per batch, in document order
                    n_tokens = 0
                    for doc, ids in zip(batch, encoded):
                        doc.metadata["token_count"] = len(ids)
                        n_tokens += len(ids) + 1
                        buf = by_language.setdefault(doc.metadata["language"], array("H"))
                        buf.append(eot)
                        buf.extend(ids)  # uint16: checked above that every id fits
                    for language, buf in by_language.items():
                        if sys.byteorder != "little":
                            buf.byteswap()
                        files.get_file(f"{language}/{rank:05d}.tokens").write(buf.tobytes())
                self.stat_update("tokens", value=n_tokens)
                yield from batch
