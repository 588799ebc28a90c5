"""MinHash signatures replayed from another run (`ccpipe run --reuse`): the same text, the same signature.

A document's signature depends on its text, the MinHash settings and its language's word segmenter, nothing
else. A run started with `--reuse RUN` whose MinHash settings and segmenters are RUN's (pipeline/plan/reuse.py:
the `minhash_signatures` key) takes each document's signature from RUN's signature files when RUN signed the
same text in the same task, and computes the others (texts RUN's filters dropped, or changed: C4's line
removal). On bench (294 pages signed) the shingles and signatures, spaCy's first pipeline for their words
included, were ~28% of a ~4 s reuse run (py-spy: ~330 of ~1,190 samples); replayed, a `min_doc_words: 100`
change signs nothing and loads no spaCy (its run, with leaner start-up and finalize: 4.0 -> 2.7 s of CPU).

RUN's files, per task: `signatures/bucket_{b:03d}/{rank:05d}.minhash.sig` (datatrove's records: the bucket's
hashes and the document's index among the documents the step saw, sorted), `signatures/timeouts/{rank}.json`
(indices whose shingles ran out of time: signed again), the base phase's documents, `base/{rank}.jsonl.gz`,
which are the documents the signature step saw, in that order, and the task's completion marker. Files
missing or that do not agree (a partly deleted `work/`) make the task compute every signature.
"""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import orjson
from datatrove.pipeline.dedup.minhash import MinhashConfig

from stages.utils.memo import text_key


def signature_key(segmenter, text: str) -> bytes:
    """The text and the segmenter that cut its words (None: English), as a 128-bit digest: a pair of distinct
    texts collides with odds ~3e-39, and a task holds thousands of texts, not their megabytes."""
    prefix = "\x00".join(segmenter) if segmenter else ""
    return text_key(f"{prefix}\x01{text}", 16)


def signature_files(folder: str, rank: int, buckets: int) -> list[str]:
    return [os.path.join(folder, f"bucket_{b:03d}", f"{rank:05d}.minhash.sig") for b in range(buckets)]


def documents_file(folder: str, rank: int) -> str:
    return os.path.join(folder, f"{rank:05d}.jsonl.gz")  # stages/writers/output.TaskFileWriter's name


def read_signatures(signatures: str, documents: str, completions: str, rank: int, config: MinhashConfig,
                    segmenter_of) -> dict[bytes, np.ndarray | None] | None:
    """{`signature_key` of a text RUN signed in task `rank`: its signature, num_buckets x hashes_per_bucket
    (`.tolist()` is what `Signature.get_signature` returns; None: the text had no shingles)}, or None when RUN's
    task did not complete (no marker in `completions`) or its files are missing or do not agree.
    `segmenter_of(language)`: the segmenter of that language. Held per task: a key (16 bytes) and a row of one
    array (8 bytes a hash) per document, never the texts, which are read one by one."""
    if not os.path.exists(os.path.join(completions, f"{rank:05d}")):
        return None
    dtype = np.dtype([("hashes", f"<{config.hash_config.struct_format}", (config.hashes_per_bucket,)),
                      ("doc", "<u4")])  # datatrove's record: the bucket's hashes, then the document's index
    try:
        buckets = [np.fromfile(path, dtype=dtype) for path in signature_files(signatures, rank, config.num_buckets)
                   if os.path.getsize(path) % dtype.itemsize == 0]
        timeouts_path = os.path.join(signatures, "timeouts", f"{rank:05d}.json")
        timeouts = set(_read_json(timeouts_path)) if os.path.exists(timeouts_path) else set()
        path = documents_file(documents, rank)
        keys = [signature_key(segmenter_of(language), text)  # none: the task kept no document
                for language, text in _documents(path)] if os.path.exists(path) else []
    except (OSError, ValueError, EOFError):
        return None
    if len(buckets) != config.num_buckets:
        return None
    signed = np.sort(buckets[0]["doc"])
    if any(not np.array_equal(np.sort(b["doc"]), signed) for b in buckets) or (len(signed) and signed[-1] >= len(keys)):
        return None  # every bucket holds the same documents, and each is one the step saw
    hashes = np.zeros((len(keys), config.num_buckets, config.hashes_per_bucket), dtype=config.hash_config.np_dtype)
    for b, records in enumerate(buckets):
        hashes[records["doc"], b] = records["hashes"]
    has = np.zeros(len(keys), dtype=bool)
    has[signed] = True
    return {key: hashes[idx] if has[idx] else None for idx, key in enumerate(keys) if idx not in timeouts}


def _read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _documents(path: str):
    """(language, text) of each document of a base phase's task file, in order, one at a time."""
    with gzip.open(path, "rb") as f:
        for line in f:
            doc = orjson.loads(line)  # ~3x json's speed: bench's 355 documents in ~30 ms with json
            yield (doc.get("metadata") or {}).get("language"), doc.get("text", "")
