"""Output to object storage: `--output s3://bucket/run` (or any fsspec URL).

Tasks write to a run directory on a filesystem (`run.work_dir`; on a cluster it must be shared by every
node): datatrove's completion markers, logs and intermediate files need renames and appends that object
stores do not offer. When the run is finished, `finalize_run` publishes the outputs there
(`parquet/`, `bin/`, `ledger/`, `summary.json`, `config.resolved.yaml`, ...: everything but `work/` and
`logs/`), each file with retries, `summary.json` last: a reader that sees it sees a complete run.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import fsspec

from pipeline.core.layout import RunLayout

log = logging.getLogger(__name__)

RETRIES = 6  # waits 1, 2, 4, 8, 16 s between tries: rides out a throttled bucket (S3's 503 SlowDown)
NOT_PUBLISHED = ("work", "logs")


def _target_file(layout: RunLayout) -> Path:
    return layout.logs / "publish.json"


def set_publish_target(layout: RunLayout, url: str) -> None:
    _target_file(layout).parent.mkdir(parents=True, exist_ok=True)
    _target_file(layout).write_text(json.dumps({"url": url}))


def publish_target(layout: RunLayout) -> str | None:
    path = _target_file(layout)
    return json.loads(path.read_text())["url"] if path.exists() else None


def with_retries(action, what: str, tries: int = RETRIES):
    for attempt in range(tries):
        try:
            return action()
        except (OSError, TimeoutError) as exc:  # s3fs raises OSError subclasses for HTTP and network errors
            if attempt == tries - 1:
                raise OSError(f"{what}: failed {tries} times, last: {exc}") from exc
            log.warning("%s: %s; retrying in %d s", what, exc, 2**attempt)
            time.sleep(2**attempt)


def publish_outputs(layout: RunLayout) -> str | None:
    """Copy the run's outputs to its --output URL (if it has one); returns the URL."""
    url = publish_target(layout)
    if url is None:
        return None
    fs, base = fsspec.core.url_to_fs(url)
    files = sorted(p for p in layout.root.rglob("*")
                   if p.is_file() and p.relative_to(layout.root).parts[0] not in NOT_PUBLISHED)
    files.sort(key=lambda p: p.name == "summary.json")  # last: its presence means the rest is there
    for path in files:
        rel = path.relative_to(layout.root).as_posix()
        with_retries(lambda src=str(path), dest=f"{base}/{rel}": fs.put_file(src, dest), f"publishing {rel} to {url}")
    log.info("published %d files to %s", len(files), url)
    return url
