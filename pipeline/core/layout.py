"""Where everything of a run lives under `--output DIR` (or, for an object-store `--output`, its work dir)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from stages.utils.io import cache_dir, read_yaml


@dataclass(frozen=True)
class RunLayout:
    """The run's directories and files; nothing else in `pipeline/` spells these paths."""

    root: Path

    @property
    def work(self) -> Path:  # intermediate files, safe to delete once the run is done
        return self.root / "work"

    @property
    def ledger(self) -> Path:  # the decision ledger, parquet, one row per record
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
    def minhash(self) -> Path:
        return self.work / "minhash"

    @property
    def classifier_scores(self) -> Path:  # (language, score) per task, for `quality.classifier.top_fraction`
        return self.work / "classifier"

    @property
    def base_documents(self) -> Path:  # what the base phase kept, reread by the final phase
        return self.work / "base"

    @property
    def reuse_store(self) -> Path:  # what extraction made of each record, for `ccpipe run --reuse` (stages/writers/reuse.py)
        return self.work / "reuse"

    @property
    def quality_memo(self) -> Path:  # the quality filters' results per text (stages/filters/quality_memo.py)
        return self.reuse_store / "quality"

    @property
    def pii_memo(self) -> Path:  # the PII scrubber's findings per text (stages/utils/memo.py)
        return self.reuse_store / "pii"

    @property
    def parquet(self) -> Path:
        return self.root / "parquet"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def resolved_config(self) -> Path:
        return self.root / "config.resolved.yaml"

    def read_resolved(self):
        """config.resolved.yaml, parsed by libyaml where PyYAML has it (`read_yaml`)."""
        return read_yaml(self.resolved_config)

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    def completions(self, phase: str) -> Path:
        return self.logs / phase / "completions"


def default_work_dir(url: str) -> Path:
    """$CCPIPE_CACHE/runs/s3/bucket/path for s3://bucket/path: rerunning the same command finds it again."""
    return cache_dir("runs", re.sub(r"[^A-Za-z0-9._/-]", "_", url.replace("://", "/", 1)).strip("/"))


def run_root(output: str, work_dir: str | None) -> tuple[Path, str | None]:
    """(run directory, URL to publish to or None) for `--output` and `run.work_dir`.

    Tasks work on a filesystem: datatrove's completion markers, logs and intermediate files need renames
    and appends that object stores do not offer."""
    if "://" in output:
        return Path(work_dir) if work_dir else default_work_dir(output), output.rstrip("/")
    return Path(output), None
