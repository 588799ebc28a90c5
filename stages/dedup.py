"""MinHash deduplication across the whole run, as FineWeb ran it: datatrove's four MinHash steps, wired.

    base phase     Signature        one signature file per task (after the quality filters)
    dedup_buckets  Buckets          one task per bucket (14): duplicate pairs within the bucket
    dedup_cluster  Cluster          one task: union the pairs into clusters, one survivor per cluster
    final phase    Filter           drop every document of a cluster but its survivor

Each is datatrove's step, tagged `stage = "dedup"`; `CompleteClusterFiles` fills a gap datatrove leaves.
"""

from __future__ import annotations

import functools
from pathlib import Path

import datatrove.pipeline.dedup.minhash as datatrove_minhash
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.utils.hashing import HashConfig
from tqdm import tqdm as _tqdm

from stages.multilingual import LanguageMinhashSignature


class Signature(MinhashDedupSignature):
    stage = "dedup"


class Buckets(MinhashDedupBuckets):
    stage = "dedup"


class Cluster(MinhashDedupCluster):
    stage = "dedup"

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        # datatrove's own "Reading dup files" bar would show on the console among ccpipe's per-phase bars;
        # the task runs in its own process, so silencing the module's tqdm here touches nothing else
        datatrove_minhash.tqdm = functools.partial(_tqdm, disable=True)
        return super().run(data, rank, world_size)


class Filter(MinhashDedupFilter):
    stage = "dedup"


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
                 seed: int = 1):
        self.config = MinhashConfig(n_grams=n_grams, num_buckets=buckets, hashes_per_bucket=hashes_per_bucket,
                                    seed=seed, hash_config=HashConfig(precision=64))
        folder = Path(folder)
        self.signatures, self.buckets, self.clusters = (str(folder / p) for p in ("signatures", "buckets", "clusters"))

    def signature(self, languages: dict[str, tuple[str, str]] | None = None) -> PipelineStep:
        """datatrove's signature step; with `languages` ({label: (profile, word tokenizer)}), shingles cut
        by each language's word segmenter, as FineWeb-2 does (stages/multilingual.py)."""
        if languages:
            return LanguageMinhashSignature(self.signatures, self.config, languages)
        return Signature(self.signatures, config=self.config)

    def bucket_steps(self) -> list[PipelineStep]:
        return [Buckets(self.signatures, self.buckets, config=self.config)]

    def cluster_steps(self, tasks: int) -> list[PipelineStep]:
        return [Cluster(self.buckets, self.clusters, config=self.config, save_cluster_id=True),
                CompleteClusterFiles(self.clusters, tasks)]

    def filter(self, exclusion_writer) -> PipelineStep:
        return Filter(self.clusters, load_cluster_ids=True, exclusion_writer=exclusion_writer)
