"""The whole pipeline in one place: a config and a list of WARC files become phases of datatrove steps.

    base     (one task per file)  read -> blocklist -> extract -> (reuse store) -> langid -> quality -> save
                                  + MinHash signatures; with --reuse, RUN's store replayed up to extraction
    buckets  (one task per bucket) MinHash: find duplicate pairs in each of the 14 buckets
    cluster  (one task)            MinHash: union the pairs into clusters, choose one survivor per cluster
    final    (one task per file)  reload -> drop duplicates -> PII -> tokenize -> parquet (+ token files)

then `pipeline.finalize` concatenates the token files into llm.c `.bin` shards and writes the summary.
Nothing here runs anything: tests build the phases and inspect them. Every step declares its `stage`
(`stages/`): the funnel's stages, in order, are read off the phases (`stage_order`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datatrove.pipeline.base import PipelineStep

from pipeline.core.layout import RunLayout
from pipeline.plan.config import Config
from pipeline.plan.reuse import Reuse
from stages.dedup.minhash import MinhashDedup
from stages.extractors.html import Extractor
from stages.filters.blocklist import URLBlocklist
from stages.filters.classifier import ClassifierTopFraction, QualityClassifier
from stages.filters.langid import LanguageID, LanguagePrecheck, LanguageScores
from stages.filters.quality import quality_filters
from stages.formatters.multilingual import FixEncoding, RemoveTableLines
from stages.pii.scrub import PIIScrubber
from stages.readers.warc import WarcReader
from stages.recipes.fineweb import FineWebPII, FineWebURLFilter
from stages.recipes.profiles import resolve_profiles
from stages.tokens.tokenize import BPETokenizer, Tokenize
from stages.utils.deadline import BoundedFilter
from stages.utils.remote_io import RetryPolicy
from stages.writers.ledger import BOOKKEEPING, DropLedger, KeptLedger, TaskTally
from stages.writers.output import FineWebParquet, TaskFileReader, TaskFileWriter
from stages.writers.reuse import ReuseReader, ReuseStore, drop_prefixes


@dataclass
class Phase:
    name: str
    steps: list[PipelineStep]
    tasks: int
    cpus: int | None = None  # Slurm/Ray resources per task, when not run.slurm's / run.ray's (the finalize phases)
    mem_gb: float | None = None


def task_count(config: Config, files: list[str]) -> int:
    return min(config.run.tasks or len(files), len(files))


def flat_steps(phase: Phase) -> list[PipelineStep]:
    """The phase's steps, with those a step runs inside it (`ReuseReader`'s) in its place."""
    return [inner for step in phase.steps for inner in getattr(step, "inner_steps", [step])]


def stage_of(step: PipelineStep) -> str:
    """The stage a step declares (`stages/`); datatrove steps ccpipe did not tag count as "other"."""
    return getattr(step, "stage", "other")


def stage_order(phases: list[Phase]) -> list[str]:
    """The stages that decide about documents, in pipeline order: the funnel's rows.

    A stage with several steps takes the place of its last one: the language pre-check runs before
    trafilatura and the ledger counts its drops with language ID's; the funnel gives them a row of their own
    before extraction's (`early_drops`)."""
    order: dict[str, None] = {}
    for phase in phases:
        for step in flat_steps(phase):
            stage = stage_of(step)
            if stage not in BOOKKEEPING and stage != "other":
                order.pop(stage, None)
                order[stage] = None
    return list(order)


def early_drops(phases: list[Phase]) -> dict[str, list[list[str]]]:
    """{stage: [[ledger stage, reason, funnel row], ...]}: drops the ledger counts with a later stage but made
    before `stage` ran (the language pre-check drops before trafilatura): the funnel gives them their own row
    (the step's `early_row`) before `stage`'s, so the rows read in the order the steps run."""
    steps = [step for phase in phases for step in flat_steps(phase)
             if stage_of(step) not in BOOKKEEPING and stage_of(step) != "other"]
    early: dict[str, list[list[str]]] = {}
    for i, step in enumerate(steps):
        following = [stage_of(s) for s in steps[i + 1:] if stage_of(s) != stage_of(step)]
        if getattr(step, "early_reasons", None) and following:
            early.setdefault(following[0], []).extend([stage_of(step), r, step.early_row] for r in step.early_reasons)
    return early


def minhash(config: Config, layout: RunLayout) -> MinhashDedup:
    d = config.dedup
    return MinhashDedup(layout.minhash, n_grams=d.n_grams, buckets=d.buckets, hashes_per_bucket=d.hashes_per_bucket,
                        seed=d.seed, fast=d.fast)


def build_phases(config: Config, files: list[str], out: str | Path, reuse: Reuse | None = None) -> list[Phase]:
    """`reuse`: start the base phase from another run's store (pipeline/plan/reuse.py)."""
    layout = RunLayout(Path(out))
    tasks = task_count(config, files)
    dedup = minhash(config, layout)
    # FineWeb-2's profile of each kept language other than English (stages/recipes/profiles)
    profiles = {k: p for k, p in resolve_profiles(config.langid.languages, config.quality.profiles).items() if p}
    phases = [Phase("base", _base_steps(config, files, layout, dedup, profiles, reuse), tasks)]
    if config.dedup.enabled:
        phases.append(Phase("dedup_buckets", dedup.bucket_steps(), dedup.config.num_buckets))
        phases.append(Phase("dedup_cluster", dedup.cluster_steps(tasks), 1))
    phases.append(Phase("final", _final_steps(config, layout, dedup, profiles, reuse), tasks))
    return phases


def _base_steps(config: Config, files: list[str], layout: RunLayout, dedup: MinhashDedup, profiles: dict,
                reuse: Reuse | None = None) -> list:
    """Read -> blocklist -> (language pre-check) -> extract -> (reuse store) -> language ID -> quality -> save,
    signatures. With `reuse`, the steps up to the store replay another run's store, or extraction takes
    its results from it."""
    ledger = str(layout.decisions)
    fineweb = config.recipe == "fineweb"  # FineWeb's own steps where ccpipe has its own (stages/recipes/fineweb.py)
    base: list[PipelineStep] = [
        WarcReader(files, ledger_folder=ledger, report_folder=str(layout.files_report),
                   max_payload_bytes=config.input.max_payload_bytes, max_records=config.input.max_records,
                   dump=config.input.dump, progress_folder=str(layout.progress),
                   retry=RetryPolicy(**config.input.retry.model_dump()), cache_bytes=int(config.input.cache_gb * 1e9),
                   record_timeout=config.run.record_timeout),
    ]
    if config.blocklist.enabled and fineweb:
        base.append(FineWebURLFilter(config.blocklist.soft_word_threshold,
                                     exclusion_writer=DropLedger(ledger, FineWebURLFilter.stage)))
    elif config.blocklist.enabled:
        b = config.blocklist
        base.append(URLBlocklist(lists_dir=b.lists_dir, use_ut1=b.ut1, use_banned_words=b.banned_words,
                                 soft_word_threshold=b.soft_word_threshold, host_word_rules=b.host_word_rules,
                                 exclusion_writer=DropLedger(ledger, URLBlocklist.stage)))
    if config.langid.precheck and not fineweb:
        base.append(LanguagePrecheck(config.langid.languages, config.langid.precheck_threshold, config.langid.model,
                                     exclusion_writer=DropLedger(ledger, LanguagePrecheck.stage, part="precheck")))
    cache = str(reuse.store) if reuse and reuse.mode == "extraction" else None
    base.append(Extractor(ledger, favor_precision=config.extract.favor_precision, timeout=config.extract.timeout,
                          cache=cache, cached_scores=bool(reuse and reuse.scores),
                          max_elements=config.extract.max_elements))
    base.append(LanguageScores(config.langid.languages, config.langid.model))  # language ID's, 16 texts at a time
    base.append(ReuseStore(str(layout.reuse_store), ledger, str(layout.files_report), drop_prefixes(base)))
    if reuse and reuse.mode == "replay":
        base = [ReuseReader(str(reuse.store), str(layout.reuse_store), ledger, str(layout.files_report), base,
                            scores=reuse.scores)]
    langid = LanguageID(config.langid.languages, config.langid.threshold, config.langid.model,
                        exclusion_writer=DropLedger(ledger, LanguageID.stage),
                        thresholds={k: p.language_score for k, p in profiles.items()})
    # replayed: the store hands it each text's scores (a task recomputed from the WARC files loads the model)
    langid.model_unused = bool(reuse and reuse.mode == "replay" and reuse.scores)
    base += [
        langid,
        *quality_filters(config.quality.model_copy(update={"fast": False}) if fineweb else config.quality, ledger,
                         profiles, memo_folder=str(layout.quality_memo),
                         memo_source=str(RunLayout(reuse.source).quality_memo) if reuse and reuse.quality else None),
        *classifier(config.quality.classifier, ledger, layout),
        TaskFileWriter(str(layout.base_documents)),
    ]
    for step in base:  # the time bound per record of every stage but extraction (stages/utils/deadline.py)
        if isinstance(step, BoundedFilter):
            step.record_timeout = config.run.record_timeout
    if config.dedup.enabled:
        source = RunLayout(reuse.source) if reuse and reuse.signatures else None
        replay = (str(source.minhash / "signatures"), str(source.base_documents),
                  str(source.completions("base"))) if source else None
        base.append(dedup.signature({k: (p.name, p.word_tokenizer) for k, p in profiles.items()},
                                    record_timeout=config.run.record_timeout, replay_from=replay))
    return base


def classifier(c, ledger: str, layout: RunLayout) -> list[PipelineStep]:
    """The quality classifier after the four filters, when `quality.classifier.model` is set (with a top
    fraction it only scores here, and `ClassifierTopFraction` decides in the final phase)."""
    if c.model is None:
        return []
    scores = str(layout.classifier_scores) if c.top_fraction is not None else None
    return [QualityClassifier(c.model, c.threshold, c.label, dict(c.thresholds),
                              exclusion_writer=DropLedger(ledger, QualityClassifier.stage, part="classifier"),
                              top_fraction=c.top_fraction, scores_folder=scores)]


def _final_steps(config: Config, layout: RunLayout, dedup: MinhashDedup, profiles: dict,
                 reuse: Reuse | None = None) -> list:
    """Reload -> drop duplicates -> (ftfy) -> PII -> (table lines) -> tokenize -> parquet, ledger, tally.
    With `reuse`, PII replays the findings of another run with the same PII settings on the same texts."""
    ledger = str(layout.decisions)
    final: list[PipelineStep] = [TaskFileReader(str(layout.base_documents))]
    if config.dedup.enabled:
        final.append(dedup.filter(DropLedger(ledger, "dedup", reason="near_duplicate"),
                                  timeouts=DropLedger(ledger, "dedup", part="timeout")))
    if config.quality.classifier.model is not None and config.quality.classifier.top_fraction is not None:
        final.append(ClassifierTopFraction(str(layout.classifier_scores), config.quality.classifier.top_fraction,
                                           exclusion_writer=DropLedger(ledger, ClassifierTopFraction.stage)))
    if profiles:  # FineWeb-2's final touches, around PII as in its step 6
        final.append(FixEncoding(profiles))
    if config.pii.enabled and config.recipe == "fineweb":
        final.append(FineWebPII())
    elif config.pii.enabled:
        final.append(PIIScrubber(entities=list(config.pii.entities), replacement=config.pii.replacement,
                                 fast=config.pii.fast, ner_model=config.pii.ner.model,
                                 ner_entities=config.pii.ner.entities, exclusion_writer=DropLedger(ledger, "pii"),
                                 record_timeout=config.run.record_timeout, max_candidates=config.pii.max_candidates,
                                 memo_folder=str(layout.pii_memo),
                                 memo_source=str(RunLayout(reuse.source).pii_memo) if reuse and reuse.pii else None))
    if profiles:
        final.append(RemoveTableLines(profiles))
    compression = None if config.output.parquet_compression == "none" else config.output.parquet_compression
    return final + [
        Tokenize(BPETokenizer(config.tokenizer.name, config.tokenizer.eot_token, config.tokenizer.pattern),
                 str(layout.tokens), exclusion_writer=DropLedger(ledger, Tokenize.stage),
                 record_timeout=config.run.record_timeout,
                 replay_from=(str(RunLayout(reuse.source).tokens), str(RunLayout(reuse.source).parquet))
                 if reuse and reuse.tokens else None),
        FineWebParquet(str(layout.parquet), compression),
        KeptLedger(ledger),
        TaskTally(str(layout.tally)),
    ]
