"""BPE tokenization: GPT-2 through tiktoken (default), tiktoken's published encodings (`cl100k_base`,
`o200k_base`, or their `.tiktoken` files: stages/tokens/vocabularies.py), any other `.tiktoken` file with
`tokenizer.pattern`, or any Hugging Face `tokenizer.json`.

tiktoken's GPT-2 encodes ~15 MB/s on one thread, about 7x Hugging Face tokenizers (datatrove's
choice), so it is the default path. Each task writes its documents' tokens, each document preceded by
`<|endoftext|>`, as raw uint16 to `{output}/{language}/{rank:05d}.tokens` (uint32 to `.u32.tokens` when the
vocabulary has more than 65,536 ids: stages/tokens/binformat.py), in document order; the run's last step
concatenates them in rank order into llm.c `.bin` shards (`pipeline/finalize/shards.py`).

`token_count` on the document is the number of BPE tokens of its text (without the separator). A document
whose encoding takes over `record_timeout` seconds (`run.record_timeout`: stages/utils/deadline.py) is dropped
under `tokenize` as `timeout`, as every stage after the reader does.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
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

from stages.tokens import binformat
from stages.tokens.replay import read_token_ids, token_key
from stages.tokens.vocabularies import NAMED, PUBLISHED, locate
from stages.utils.deadline import DEFAULT_RECORD_TIMEOUT, RecordTimeout, record_deadline
from stages.utils.io import sha256_file
from stages.utils.loading import load_once
from stages.writers.ledger import drop

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
    return read_ranks(data)


def read_ranks(data: bytes) -> dict[bytes, int]:
    """The ranks of a well-formed .tiktoken file (`{base64 token} {rank}` a line): the dict tiktoken's
    `load_tiktoken_bpe` makes, in C loops (GPT-2's 50,256 lines: ~20 ms instead of ~40 ms of every run's start).
    Only for files known by their sha256: a malformed file is tiktoken's to report, line by line."""
    fields = data.split()
    return dict(zip(map(binascii.a2b_base64, fields[0::2]), map(int, fields[1::2])))


class TokenizerError(ValueError):
    pass


def _looks_like_tiktoken(path: str) -> bool:
    """The first line of a .tiktoken file is a base64 token and its integer rank (`IQ== 0`)."""
    try:
        with open(path, "rb") as f:
            token, rank = f.readline().split()
        base64.b64decode(token, validate=True)
        return int(rank) >= 0
    except (OSError, ValueError, binascii.Error):
        return False


class BPETokenizer:
    """One interface over tiktoken and Hugging Face tokenizers: `encode_batch`, `decode`, `eot`, `n_vocab`."""

    def __init__(self, name: str = "gpt2", eot_token: str = "<|endoftext|>", pattern: str | None = None):
        self.name = name
        self.eot_token = eot_token
        self.pattern = pattern  # the pre-tokenizer regex of a .tiktoken file that is not a published encoding
        self.path = name
        if name in NAMED:
            self.path = locate(name)
            if self.path is None:
                raise TokenizerError(f"tokenizer {name!r}: not in tiktoken's cache and not in $CCPIPE_TOKENIZERS, and "
                                     f"ccpipe never downloads: pass --tokenizer PATH/{name}.tiktoken")
        elif name != "gpt2" and not os.path.isfile(name):
            raise TokenizerError(f"tokenizer {name!r}: expected 'gpt2' or a path to a .tiktoken or tokenizer.json "
                                 f"file, or one of {list(NAMED)}")
        if name.endswith(".json"):
            self.kind = "huggingface"
            if pattern is not None:
                raise TokenizerError(f"{name}: tokenizer.pattern is for .tiktoken files (tokenizer.json has its own)")
        else:
            self.kind = "tiktoken"
        if self.kind == "tiktoken" and name != "gpt2" and pattern is None and self.published is None:
            if not _looks_like_tiktoken(self.path):
                raise TokenizerError(f"{name}: not a .tiktoken vocabulary (lines of base64 token and rank)")
            raise TokenizerError(f"{name}: not one of tiktoken's published encodings (sha256 {self.sha256[:12]}...): "
                                 "set tokenizer.pattern to its pre-tokenizer regex")

    @cached_property
    def sha256(self) -> str:
        return sha256_file(self.path) if os.path.isfile(self.path) else GPT2_TIKTOKEN_SHA256

    @property
    def published(self):
        """The tiktoken encoding this vocabulary file is, by its sha256 (None: another file, or HF)."""
        return PUBLISHED.get(self.sha256) if self.kind == "tiktoken" and self.name != "gpt2" else None

    @property
    def bin_format(self) -> binformat.BinFormat:
        """llm.c's uint16 format up to 65,536 ids, its uint32 one above."""
        return binformat.for_vocab(self.n_vocab)

    @cached_property
    def _impl(self):
        stat = os.stat(self.path) if os.path.isfile(self.path) else None
        key = ("bpe", self.name, self.path, stat and (stat.st_mtime_ns, stat.st_size), self.eot_token, self.pattern)
        return load_once(key, self._load)

    def _load(self):
        if self.kind == "huggingface":
            from tokenizers import Tokenizer  # one of the two libraries, by the vocabulary's kind

            tok = Tokenizer.from_file(self.path)
            if tok.token_to_id(self.eot_token) is None:
                raise TokenizerError(f"{self.name}: has no {self.eot_token!r} token (set tokenizer.eot_token)")
            return tok
        import tiktoken  # one of the two libraries, by the vocabulary's kind

        if self.name == "gpt2":
            # tiktoken's own `gpt2` encoding, built from the shipped file instead of a download: same ranks
            # (sha256-checked), pattern and special token, so the same ids
            return tiktoken.Encoding(name="gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=bundled_gpt2_ranks(),
                                     special_tokens={"<|endoftext|>": 50256}, explicit_n_vocab=50257)
        from tiktoken.load import load_tiktoken_bpe

        published, ranks = self.published, None
        if published is not None:  # a file of known bytes (cl100k_base.tiktoken, ...): read here, parsed in C
            with open(self.path, "rb") as f:
                data = f.read()
            if hashlib.sha256(data).hexdigest() == published.sha256:
                ranks = read_ranks(data)
        if ranks is None:
            ranks = load_tiktoken_bpe(self.path)
        if published is not None:  # r50k_base (gpt2.tiktoken), cl100k_base, ...: its own pattern and special tokens
            if self.eot_token not in published.special_tokens:
                raise TokenizerError(f"{self.name}: {published.name} has no {self.eot_token!r} token "
                                     f"(it has {list(published.special_tokens)})")
            return tiktoken.Encoding(name=published.name, pat_str=self.pattern or published.pattern,
                                     mergeable_ranks=ranks, special_tokens=dict(published.special_tokens))
        return tiktoken.Encoding(
            name=os.path.basename(self.name), pat_str=self.pattern or GPT2_PATTERN, mergeable_ranks=ranks,
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

    def encode(self, text: str) -> list[int]:
        """The tokens of one text, as `encode_batch([text])[0]`."""
        if self.kind == "huggingface":
            return self._impl.encode(text, add_special_tokens=False).ids
        return self._impl.encode_ordinary(text)

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
        if self.kind == "huggingface":
            return self._impl.decode(ids, skip_special_tokens=False)
        return self._impl.decode(ids)

    def provenance(self) -> dict:
        info = {"name": self.name, "kind": self.kind, "eot": self.eot, "n_vocab": self.n_vocab, "sha256": self.sha256}
        if self.bin_format is not binformat.GPT2:  # GPT-2-sized vocabularies: the same record as before
            info["bin_format"] = self.bin_format.name
            info["path"] = self.path
            if self.published is not None:
                info["encoding"] = self.published.name
        if self.pattern is not None:
            info["pattern"] = self.pattern
        return info


class Tokenize(PipelineStep):
    """Counts and stores each document's tokens; the documents themselves pass through unchanged."""

    name = "🔢 Tokenize"
    stage = "tokenize"
    type = "🔢 - TOKENIZER"

    def __init__(self, tokenizer: BPETokenizer, output_folder: str, batch_size: int = 256, exclusion_writer=None,
                 record_timeout: float | None = DEFAULT_RECORD_TIMEOUT, replay_from: tuple[str, str] | None = None):
        super().__init__()
        self.tokenizer = tokenizer
        self.output_folder = get_datafolder(output_folder)
        self.batch_size = batch_size
        # a document over record_timeout is dropped as `timeout` (needs the writer: without one, no bound)
        self.exclusion_writer, self.record_timeout = exclusion_writer, record_timeout
        # (work/tokens, parquet/) of another run with this tokenizer (`--reuse`): the ids of the texts it kept
        # (stages/tokens/replay.py)
        self.replay_from = replay_from

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        tok = self.tokenizer
        fmt = tok.bin_format
        typecode = "H" if fmt.itemsize == 2 else "I"
        assert array(typecode).itemsize == fmt.itemsize, f"array({typecode!r}) is not {fmt.itemsize} bytes here"
        eot = tok.eot
        replay = None
        if self.replay_from:
            with self.track_time("replay"):
                replay = read_token_ids(*self.replay_from, rank, fmt, typecode, eot)
            if replay is None:
                self.stat_update("replay_files_unusable")
        with (self.output_folder.get_output_file_manager(mode="wb") as files,
              self.exclusion_writer or contextlib.nullcontext() as writer):
            for batch in batched(data, self.batch_size):
                with self.track_time("batch"):
                    by_language: dict[str, array] = {}  # one write per language per batch, in document order
                    n_tokens, kept = 0, []
                    for doc in batch:
                        ids = replay.get(token_key(doc.text)) if replay is not None else None
                        if ids is not None:
                            self.stat_update("tokens_replayed")
                        else:
                            try:
                                with record_deadline(self.record_timeout if writer is not None else None):
                                    ids = tok.encode(doc.text)
                            except RecordTimeout as exc:
                                self.stat_update("dropped", "dropped_timeout")
                                drop(writer, doc, rank, "timeout", str(exc))
                                continue
                        kept.append(doc)
                        doc.metadata["token_count"] = len(ids)
                        n_tokens += len(ids) + 1
                        buf = by_language.setdefault(doc.metadata["language"], array(typecode))
                        buf.append(eot)
                        buf.extend(ids)  # every id < n_vocab fits the format's width
                    for language, buf in by_language.items():
                        if sys.byteorder != "little":
                            buf.byteswap()
                        files.get_file(binformat.token_file_name(f"{language}/{rank:05d}", fmt)).write(buf.tobytes())
                self.stat_update("tokens", value=n_tokens)
                yield from kept
