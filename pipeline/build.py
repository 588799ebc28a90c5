"""The whole pipeline in one place: a config and a list of WARC files become phases of datatrove steps.

    base     (one task per file)  read -> blocklist -> extract -> langid -> quality -> save + MinHash signatures
    buckets  (one task per bucket) MinHash: find duplicate pairs in each of the 14 buckets
    cluster  (one task)            MinHash: union the pairs into clusters, choose one survivor per cluster
    final    (one task per file)  reload -> drop duplicates -> PII -> tokenize -> parquet (+ token files)

then `pipeline.run.finalize` concatenates the token files into llm.c `.bin` shards and writes the summary.
Nothing here runs anything: tests build the phases and inspect them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter, ParquetWriter
from datatrove.utils.hashing import HashConfig

from pipeline.config import Config
from pipeline.ledger import DropLedger, KeptLedger
from pipeline.summary import FINEWEB_SCHEMA, TaskTally, fineweb_row
from stages.blocklist import URLBlocklist
from stages.extract import Extractor
from stages.langid import LanguageID, LanguagePrecheck
from stages.pii import PIIScrubber
from stages.quality import quality_filters
from stages.reader import WarcReader
from stages.tokenize import BPETokenizer, Tokenize


@dataclass
class Phase:
    name: str
    steps: list[PipelineStep]
    tasks: int


@dataclass(frozen=True)
class RunLayout:
    """Where everything of a run lives under `--output DIR`."""

    root: Path

    @property
    def work(self) -> Path:  # intermediate files, safe to delete once the run is done
        return self.root / "work"

    @property
    def ledger(self) -> Path:  # the decision ledger, parquet, one row per record (pipeline/ledger.py)
        return self.root / "ledger"

    @property
    def decisions(self) -> Path:  # the ledger's rows as the tasks write them, before consolidation
        return self.work / "decisions"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def files_report(self) -> Path:
        return self.work / "files"

    @property
    def progress(self) -> Path:  # response records read so far, per task
        return self.work / "progress"

    @property
    def tally(self) -> Path:
        return self.work / "kept"

    @property
    def tokens(self) -> Path:
        return self.work / "tokens"

    @property
    def parquet(self) -> Path:
        return self.root / "parquet"

    @property
    def bin(self) -> Path:
        return self.root / "bin"


class TaskFileReader(PipelineStep):
    """Reads back exactly the file the base phase wrote for this rank (none if it kept nothing)."""

    name = "📖 Task file"
    type = "📖 - READER"

    def __init__(self, folder: str):
        super().__init__()
        self.folder = folder

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        reader = JsonlReader(self.folder)
        name = f"{rank:05d}.jsonl.gz"
        if reader.data_folder.exists(name):
            for doc in reader.read_file(name):
                self.stat_update("documents")
                yield doc


class CompleteClusterFiles(PipelineStep):
    """After MinHash clustering: an empty `.remove` / `.clusters` file for every task that has none.

    datatrove's MinhashDedupFilter skips a task without a `.remove` file, and then loads no cluster ids for
    it, so the document a cluster kept would not know its cluster; with `load_cluster_ids` a missing
    `.clusters` file is an error. Empty files mean "nothing to remove", "in no cluster".
    """

    name = "🗂 Cluster files"
    type = "🫂 - DEDUP"

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


def minhash_config(config: Config) -> MinhashConfig:
    d = config.dedup
    return MinhashConfig(n_grams=d.n_grams, num_buckets=d.buckets, hashes_per_bucket=d.hashes_per_bucket,
                         seed=d.seed, hash_config=HashConfig(precision=64))


def task_count(config: Config, files: list[str]) -> int:
    return min(config.run.tasks or len(files), len(files))


def build_phases(config: Config, files: list[str], out: str | Path) -> list[Phase]:
    layout = RunLayout(Path(out))
    ledger = str(layout.decisions)
    tasks = task_count(config, files)
    mh = minhash_config(config)
    sigs, buckets, clusters = (str(layout.work / "minhash" / p) for p in ("signatures", "buckets", "clusters"))

    base: list[PipelineStep] = [
        WarcReader(files, ledger_folder=ledger, report_folder=str(layout.files_report),
                   max_payload_bytes=config.input.max_payload_bytes, max_records=config.input.max_records,
                   dump=config.input.dump, progress_folder=str(layout.progress)),
    ]
    if config.blocklist.enabled:
        b = config.blocklist
        base.append(URLBlocklist(lists_dir=b.lists_dir, use_ut1=b.ut1, use_banned_words=b.banned_words,
                                 soft_word_threshold=b.soft_word_threshold, host_word_rules=b.host_word_rules,
                                 exclusion_writer=DropLedger(ledger, "blocklist")))
    if config.langid.precheck:
        base.append(LanguagePrecheck(config.langid.languages, config.langid.precheck_threshold, config.langid.model,
                                     exclusion_writer=DropLedger(ledger, "langid", part="precheck")))
    base += [
        Extractor(ledger, favor_precision=config.extract.favor_precision, timeout=config.extract.timeout),
        LanguageID(config.langid.languages, config.langid.threshold, config.langid.model,
                   exclusion_writer=DropLedger(ledger, "langid")),
        *quality_filters(config.quality, ledger),
        JsonlWriter(str(layout.work / "base"), output_filename="${rank}.jsonl.gz"),
    ]
    if config.dedup.enabled:
        base.append(MinhashDedupSignature(sigs, config=mh))
    phases = [Phase("base", base, tasks)]

    final: list[PipelineStep] = [TaskFileReader(str(layout.work / "base"))]
    if config.dedup.enabled:
        phases.append(Phase("dedup_buckets", [MinhashDedupBuckets(sigs, buckets, config=mh)], mh.num_buckets))
        phases.append(Phase("dedup_cluster", [MinhashDedupCluster(buckets, clusters, config=mh, save_cluster_id=True),
                                              CompleteClusterFiles(clusters, tasks)], 1))
        final.append(MinhashDedupFilter(clusters, load_cluster_ids=True,
                                        exclusion_writer=DropLedger(ledger, "dedup", reason="near_duplicate")))
    if config.pii.enabled:
        final.append(PIIScrubber(entities=list(config.pii.entities), replacement=config.pii.replacement,
                                 fast=config.pii.fast, ner_model=config.pii.ner.model,
                                 ner_entities=config.pii.ner.entities))
    compression = None if config.output.parquet_compression == "none" else config.output.parquet_compression
    final += [
        Tokenize(BPETokenizer(config.tokenizer.name, config.tokenizer.eot_token, config.tokenizer.pattern),
                 str(layout.tokens)),
        ParquetWriter(str(layout.parquet), output_filename="${language}/${rank}.parquet", compression=compression,
                      adapter=fineweb_row, schema=FINEWEB_SCHEMA),
        KeptLedger(ledger),
        TaskTally(str(layout.tally)),
    ]
    phases.append(Phase("final", final, tasks))
    return phases
