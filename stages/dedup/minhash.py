"""MinHash deduplication across the whole run, as FineWeb ran it: datatrove's four MinHash steps, wired.

    base phase     Signature        one signature file per task (after the quality filters)
    dedup_buckets  Buckets          one task per bucket (14): duplicate pairs within the bucket
    dedup_cluster  Cluster          one task: union the pairs into clusters, one survivor per cluster
    final phase    Filter           drop every document of a cluster but its survivor

Each is datatrove's step, tagged `stage = "dedup"`; `CompleteClusterFiles` fills a gap datatrove leaves.

Signatures (`dedup.fast`, on by default): datatrove splits each document's simplified text into words with
a fresh spaCy pass inside a `memory_zone`, so every word is a new lexeme every time: 3.2 s of CPU for the
355 English bench pages that reach the quality stage, more than the quality filters themselves. The same
words come from the quality stage's chunk cache (`stages/text/words.shared_words`, equal to datatrove's
English split) in 0.3 s, so the signatures are bit for bit datatrove's; `fast: false` runs datatrove's split.

`LanguageSignature` cuts the shingles of a language with a FineWeb-2 profile by that language's word
segmenter, as FineWeb-2 does (`MinhashDedupSignature(language=lang_script)` in fineweb-2-pipeline.py): a
Chinese text has no spaces, and English word splitting would make each sentence one "word". FineWeb-2
deduplicates each language apart; here one signature step sees every kept language, so each profile's name
is mixed into its shingles' hashes: two documents of different languages share no shingle and never meet in
a bucket (64-bit hashes: a collision has odds ~1e-19 a pair), which is deduplication within each language.
English shingles are datatrove's own.

A time bound per record (`run.record_timeout`, stages/utils/deadline.py), as every other stage has: a document
whose shingles take longer gets no signature (it can meet no other document) and its index in the task goes
to `signatures/timeouts/{rank}.json`; the final phase's `Filter` drops it there as (dedup, `timeout`). Cutting
shingles is linear (the worst 1 MB page of tests/hostile_corpus.py: 0.46 s); the bound catches what is not.

With `--reuse`, the signatures of texts the reused run signed are taken from its files (stages/dedup/replay.py).

`Signature.get_signature` is datatrove's, a block of shingles at a time: datatrove hashes every shingle with
all 112 functions at once, an (N x 112) uint64 array and its temporaries, ~860 MB for the ~200,000 shingles
of a 1 MB page (tests/hostile_corpus.py's `many_lines`); by blocks of 4,096 shingles, ~4 MB, same minimums.
"""

from __future__ import annotations

import json
import logging
import struct
from pathlib import Path

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
    _mersenne_prime,
)
from datatrove.utils.hashing import HashConfig
from datatrove.utils.text import ngrams
from datatrove.utils.text import simplify_text as datatrove_simplify_text
from datatrove.utils.typeshelper import StatHints

from stages.dedup.replay import read_signatures, signature_key
from stages.text.normalize import simplify_text
from stages.text.words import shared_words, word_tokenizer
from stages.utils.deadline import DEFAULT_RECORD_TIMEOUT, RecordTimeout, record_deadline
from stages.utils.io import write_json_atomic
from stages.writers.ledger import drop

SIGNATURE_BLOCK = 4096  # shingles hashed at once: 4,096 x 112 hashes x 8 bytes = 3.7 MB per temporary
SIGNATURE_MEMORY = 32 << 20  # signature bytes a task holds before it writes them out (952 a document: 14 x 68)
NOT_REPLAYED = object()  # the document's signature is computed
NO_SHINGLES, ONE_SHINGLE = np.empty((0, 1), dtype=np.uint64), np.zeros((1, 1), dtype=np.uint64)
logger = logging.getLogger(__name__)


class Signature(MinhashDedupSignature):
    """datatrove's signature step; with `fast`, English words from the shared chunk cache (same words)."""

    stage = "dedup"

    def __init__(self, output_folder: str, config: MinhashConfig, fast: bool = True,
                 record_timeout: float | None = DEFAULT_RECORD_TIMEOUT, replay_from: tuple[str, str, str] | None = None):
        super().__init__(output_folder, config=config)
        self.fast, self.record_timeout = fast, record_timeout
        self.timeouts_folder = str(Path(output_folder) / "timeouts")
        # (signatures, base documents, base completions folders) of a run with these settings: its signatures
        # of the same texts are taken as they are (stages/dedup/replay.py)
        self.replay_from = replay_from
        self._index, self._timeouts = -1, []
        self._segmenter: tuple[str, str] | None = None  # the document being signed: its language's, None: English
        self._replay: dict | None = None
        self._replayed = NOT_REPLAYED

    def provenance(self) -> dict:
        """What a signature depends on besides the text (pipeline/plan/reuse.py: `minhash_signatures`)."""
        c = self.config
        return {"n_grams": c.n_grams, "buckets": c.num_buckets, "hashes_per_bucket": c.hashes_per_bucket,
                "seed": c.seed, "precision": c.hash_config.precision, "fast": self.fast,
                "segmenters": {k: list(v) for k, v in sorted(self.segmenters_by_language().items())}}

    def segmenters_by_language(self) -> dict[str, tuple[str, str]]:
        return {}

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1):
        def counted():  # datatrove's loop takes the shingles of each document right after taking it
            for self._index, doc in enumerate(data):
                self.before(doc)
                yield doc

        self._timeouts = []
        self._replay = None
        if self.replay_from:
            with self.track_time():
                self._replay = read_signatures(*self.replay_from, rank, self.config,
                                               lambda language: self.segmenters_by_language().get(language))
            if self._replay is None:
                self.stat_update("replay_files_unusable")
                logger.warning("MinHash signatures of task %d: %s's files are missing, incomplete or do not "
                               "agree: computed", rank, self.replay_from[0])
        self._sign(counted(), rank)
        if self._timeouts:
            write_json_atomic(Path(self.timeouts_folder) / f"{rank:05d}.json", self._timeouts)

    def _sign(self, data: DocumentsPipeline, rank: int) -> None:
        """datatrove's `MinhashDedupSignature.run`, each bucket's file written once: datatrove writes every bucket
        file, then reads each back, sorts it and writes it again (224 files opened to write for bench's 8 tasks,
        each new one 0.15-0.9 ms of system time on this disk). Here a bucket's records stay in memory until
        they are sorted, up to `SIGNATURE_MEMORY` bytes for all the buckets (~35,000 documents), then they go
        to the files as datatrove writes them, and the files are sorted as datatrove sorts them. The same bytes
        either way: records packed as datatrove packs them, sorted by the same fields. The files of a task that
        died while sorting are datatrove's to take up (`check_can_skip_sig_writing`)."""
        if self.check_can_skip_sig_writing(rank)[0]:
            return MinhashDedupSignature.run(self, data, rank)
        c = self.config
        record = struct.Struct(f"<{c.hashes_per_bucket}{c.hash_config.struct_format}I")
        dtype = np.dtype([(f"field{i + 1}", f"<{c.hash_config.struct_format}") for i in range(c.hashes_per_bucket)]
                         + [(f"field{c.hashes_per_bucket + 1}", "<I")])
        paths = [f"bucket_{bi:03d}/{rank:05d}.minhash.sig" for bi in range(c.num_buckets)]
        with self.track_time():
            buckets = [bytearray() for _ in paths]
            files = None
            for doc_idx, doc in enumerate(data):
                self.stat_update(StatHints.total)
                shingles = self.get_shingles(doc.text)
                if shingles.size == 0:
                    continue
                for bucket, bucket_sig in zip(buckets, self.get_signature(shingles)):
                    bucket += record.pack(*bucket_sig, doc_idx)
                if len(buckets[0]) * len(buckets) > SIGNATURE_MEMORY:
                    files = files or [self.output_folder.open(path, mode="wb") for path in paths]
                    for file, bucket in zip(files, buckets):
                        file.write(bucket)
                        bucket.clear()
            for file, bucket in zip(files or (), buckets):
                file.write(bucket)
                file.close()
            for path, bucket in zip(paths, buckets):
                if files:
                    with self.output_folder.open(path, mode="rb") as fi:
                        bucket = bytearray(fi.read())
                records = np.frombuffer(bucket, dtype=dtype)
                records.sort(order=dtype.names)
                with self.output_folder.open(path, mode="wb") as fo:
                    fo.write(memoryview(records.view(np.uint8)))

    def before(self, doc) -> None:
        """Called with each document before its shingles are taken: its segmenter, and its replayed signature."""
        self._segmenter = self.segmenters_by_language().get(doc.metadata.get("language"))
        self._replayed = NOT_REPLAYED
        if self._replay is not None:
            self._replayed = self._replay.get(signature_key(self._segmenter, doc.text), NOT_REPLAYED)

    def get_shingles(self, text: str) -> np.ndarray:
        if self._replayed is not NOT_REPLAYED:  # datatrove's loop signs a document with shingles, and only then
            self.stat_update("signatures_replayed")
            return NO_SHINGLES if self._replayed is None else ONE_SHINGLE
        if self.replay_from:
            self.stat_update("signatures_computed")
        try:
            with record_deadline(self.record_timeout):
                return self.shingles(text)
        except RecordTimeout:
            self._timeouts.append(self._index)
            return np.empty((0, 1), dtype=np.uint64)  # no signature: datatrove signs no empty document

    def get_signature(self, shingles: np.ndarray) -> list[list[int]]:
        """datatrove's signature (the minimum of each hash function over the shingles), by blocks."""
        if self._replayed is not NOT_REPLAYED:
            return self._replayed.tolist()  # read_signatures' row: the same lists as computed below
        a, b = self.parameters
        low = None
        for start in range(0, len(shingles), SIGNATURE_BLOCK):
            phv = (shingles[start:start + SIGNATURE_BLOCK] * a + b) % _mersenne_prime
            if self.config.hash_config.precision == 32:
                phv = np.bitwise_and(phv, self.config.hash_config.max)
            block = np.min(phv, axis=0)
            low = block if low is None else np.minimum(low, block)
        return [x.tolist() for x in np.split(low.astype(self.config.hash_config.np_dtype), self.config.num_buckets)]

    def shingles(self, text: str) -> np.ndarray:
        if not self.fast:
            return MinhashDedupSignature.get_shingles(self, text)
        return self._hashed(shared_words()(simplify_text(text, self.config.norm_config)))

    def _hashed(self, words: list[str], prefix: str = "") -> np.ndarray:
        """datatrove's shingles of `words`: each n-gram joined by spaces (after `prefix`), hashed."""
        grams = ngrams(words, self.config.n_grams)
        return np.fromiter([self._hash_func(prefix + " ".join(g)) for g in grams], dtype=np.uint64).reshape((-1, 1))


class LanguageSignature(Signature):
    """MinHash signatures with each document's shingles cut by its language's word segmenter.

    `segmenters`: language label -> (profile name, datatrove word tokenizer key); labels not in it (English)
    get datatrove's English shingles, bit for bit.
    """

    def __init__(self, output_folder: str, config: MinhashConfig, segmenters: dict[str, tuple[str, str]],
                 fast: bool = True, record_timeout: float | None = DEFAULT_RECORD_TIMEOUT,
                 replay_from: tuple[str, str, str] | None = None):
        super().__init__(output_folder, config=config, fast=fast, record_timeout=record_timeout,
                         replay_from=replay_from)
        self.segmenters = {k: tuple(v) for k, v in segmenters.items()}

    def segmenters_by_language(self) -> dict[str, tuple[str, str]]:
        return self.segmenters

    def shingles(self, text: str) -> np.ndarray:
        if self._segmenter is None:
            return super().shingles(text)
        profile, tokenizer = self._segmenter
        simplify = simplify_text if self.fast else datatrove_simplify_text
        words = word_tokenizer(tokenizer, fast=self.fast).word_tokenize(simplify(text, self.config.norm_config))
        return self._hashed(words, profile + "\x00")


class Buckets(MinhashDedupBuckets):
    stage = "dedup"


class Cluster(MinhashDedupCluster):
    """datatrove's clustering; its own "Reading dup files" bar is silenced by `stages.utils.patches`."""

    stage = "dedup"


class Filter(MinhashDedupFilter):
    """datatrove's filter; first, the documents whose signature ran out of time (`Signature`) are dropped as
    (dedup, `timeout`) through `timeouts` (a ledger writer without a fixed reason)."""

    stage = "dedup"

    def __init__(self, data_folder: str, timeouts_folder: str | None = None, timeouts=None, **kwargs):
        super().__init__(data_folder, **kwargs)
        self.timeouts_folder, self.timeouts = timeouts_folder, timeouts

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        path = Path(self.timeouts_folder or "", f"{rank:05d}.json")
        late = set(json.loads(path.read_text())) if self.timeouts_folder and path.is_file() else set()
        if not late:
            yield from super().run(data, rank, world_size)
            return
        with self.timeouts as writer:
            def marked():
                for idx, doc in enumerate(data):  # datatrove's filter counts the same indices
                    if idx in late:
                        doc.metadata["_signature_timeout"] = True
                    yield doc

            for doc in super().run(marked(), rank, world_size):
                if doc.metadata.pop("_signature_timeout", False):  # never in a cluster: no signature
                    self.stat_update("dropped_timeout")
                    drop(writer, doc, rank, "timeout", "MinHash shingles over run.record_timeout")
                    continue
                yield doc


class CompleteClusterFiles(PipelineStep):
    """After MinHash clustering: an empty `.remove` / `.clusters` file for every task that has none.

    datatrove's MinhashDedupFilter skips a task without a `.remove` file, and then loads no cluster ids for
    it, so the document a cluster kept would not know its cluster; with `load_cluster_ids` a missing
    `.clusters` file is an error. Empty files mean "nothing to remove", "in no cluster".
    """

    name = "🗂 Cluster files"
    type = "🫂 - DEDUP"
    stage = "dedup"

    def __init__(self, folder: str, tasks: int):
        super().__init__()
        self.folder = folder
        self.tasks = tasks

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        folder = Path(self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        for task in range(self.tasks):
            for ext in ("remove", "clusters"):
                (folder / f"{task:06d}.{ext}").touch(exist_ok=True)
        yield from data or ()


class MinhashDedup:
    """The four steps over one working folder (`work/minhash/`), with FineWeb's parameters by default."""

    def __init__(self, folder: str | Path, n_grams: int = 5, buckets: int = 14, hashes_per_bucket: int = 8,
                 seed: int = 1, fast: bool = True):
        self.config = MinhashConfig(n_grams=n_grams, num_buckets=buckets, hashes_per_bucket=hashes_per_bucket,
                                    seed=seed, hash_config=HashConfig(precision=64))
        self.fast = fast
        folder = Path(folder)
        self.signatures, self.buckets, self.clusters = (str(folder / p) for p in ("signatures", "buckets", "clusters"))

    def signature(self, languages: dict[str, tuple[str, str]] | None = None,
                  record_timeout: float | None = DEFAULT_RECORD_TIMEOUT,
                  replay_from: tuple[str, str, str] | None = None) -> PipelineStep:
        """datatrove's signature step; with `languages` ({label: (profile, word tokenizer)}), shingles cut
        by each language's word segmenter, as FineWeb-2 does (stages/formatters/multilingual.py).
        `replay_from`: (signatures, base documents, base completions folders) of a run with the same
        settings, whose signatures of the same texts are taken (stages/dedup/replay.py)."""
        if languages:
            return LanguageSignature(self.signatures, self.config, languages, fast=self.fast,
                                     record_timeout=record_timeout, replay_from=replay_from)
        return Signature(self.signatures, config=self.config, fast=self.fast, record_timeout=record_timeout,
                         replay_from=replay_from)

    def bucket_steps(self) -> list[PipelineStep]:
        return [Buckets(self.signatures, self.buckets, config=self.config)]

    def cluster_steps(self, tasks: int) -> list[PipelineStep]:
        return [Cluster(self.buckets, self.clusters, config=self.config, save_cluster_id=True),
                CompleteClusterFiles(self.clusters, tasks)]

    def filter(self, exclusion_writer, timeouts=None) -> PipelineStep:
        """`timeouts`: the ledger writer (no fixed reason) for documents whose signature ran out of time."""
        return Filter(self.clusters, str(Path(self.signatures) / "timeouts"), timeouts, load_cluster_ids=True,
                      exclusion_writer=exclusion_writer)
