"""Output to object storage: `--output s3://bucket/run` (or any fsspec URL).

Tasks write to a run directory on a filesystem (`run.work_dir`; on a cluster it must be shared by every
node): datatrove's completion markers, logs and intermediate files need renames and appends that object
stores do not offer. When the run is finished and has passed its checks (`finish.checks_passed`), `finalize_run`
publishes the outputs there
(`parquet/`, `bin/`, `ledger/`, `summary.json`, `config.resolved.yaml`: those alone, never `work/`, `logs/` or
a file left in the run directory), 16 files at a time, each with retries, `summary.json` last: a reader that sees it sees a complete run.

Nothing private is published unless asked: the ledger goes out as its public copy (pipeline/finalize/public.py:
URLs, details and excerpts scrubbed of PII, `pii_spans` without values, no excerpt of a record dropped before
the PII stage, input paths relative to the input root). The full ledger stays in the run directory;
`output.publish_full_ledger: true` publishes it.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fsspec

from pipeline.core.layout import RunLayout
from pipeline.finalize.public import public_folder, write_public_part
from pipeline.plan.config import Config
from stages.utils.io import write_text_atomic

log = logging.getLogger(__name__)

RETRIES = 6  # waits 1, 2, 4, 8, 16 s between tries: rides out a throttled bucket (S3's 503 SlowDown)
# what a run writes for others, and nothing else: a file someone left in the run directory (an audit report
# with unscrubbed excerpts, `ccpipe audit report`'s default RUN/report.html) is never uploaded
PUBLISHED = ("parquet", "bin", "ledger", "config.resolved.yaml", "summary.json")
UPLOADS = 16  # files in flight: object stores are slow per request, not per byte


def _target_file(layout: RunLayout) -> Path:
    return layout.logs / "publish.json"


def set_publish_target(layout: RunLayout, url: str) -> None:
    write_text_atomic(_target_file(layout), json.dumps({"url": url}))


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


def _published_files(layout: RunLayout, full_ledger: bool) -> list[tuple[Path, str]]:
    """(local file, path under the URL) for everything published; the public ledger is written here."""
    public = public_folder(layout) / "ledger"
    files = []
    # work/ and logs/ hold millions of files on a dump: not even walked
    tops = [p for p in layout.root.iterdir() if p.name in PUBLISHED]
    for path in sorted(f for top in tops for f in ([top] if top.is_file() else top.rglob("*")) if f.is_file()):
        rel = path.relative_to(layout.root)
        if rel.parts[0] == "ledger" and not full_ledger:  # the copy the finalize task wrote (pipeline/finalize/public.py)
            path = public / path.name if (public / path.name).exists() else write_public_part(layout, path)
        files.append((path, rel.as_posix()))
    files.sort(key=lambda f: f[1] == "summary.json")  # last: its presence means the rest is there
    return files


def publish_outputs(layout: RunLayout, config: Config | None = None) -> str | None:
    """Copy the run's outputs to its --output URL (if it has one); returns the URL."""
    url = publish_target(layout)
    if url is None:
        return None
    fs, base = fsspec.core.url_to_fs(url)
    files = _published_files(layout, config is not None and config.output.publish_full_ledger)

    def put(src: Path, rel: str) -> None:
        if "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):  # object stores need none
            fs.makedirs(f"{base}/{rel}".rsplit("/", 1)[0], exist_ok=True)
        with_retries(lambda: fs.put_file(str(src), f"{base}/{rel}"), f"publishing {rel} to {url}")

    *rest, last = files
    with ThreadPoolExecutor(UPLOADS) as pool:
        list(pool.map(lambda f: put(*f), rest))  # list(): the first error is raised here
    put(*last)
    log.info("published %d files to %s", len(files), url)
    return url
