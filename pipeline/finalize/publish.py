"""Output to object storage: `--output s3://bucket/run` (or any fsspec URL).

Tasks write to a run directory on a filesystem (`run.work_dir`; on a cluster it must be shared by every
node): datatrove's completion markers, logs and intermediate files need renames and appends that object
stores do not offer. When the run is finished and has passed its checks (`finish.checks_passed`), `finalize_run`
publishes the outputs there
(`parquet/`, `bin/`, `ledger/`, `summary.json`, `config.resolved.yaml`: those alone, never `work/`, `logs/` or
a file left in the run directory), 16 files at a time, each with retries, `summary.json` last: a reader that sees it sees a complete run.

Nothing private is published unless asked: the ledger goes out without the PII values of `pii_spans` (type
and offsets stay) and without the excerpts of records dropped before the PII stage (unscrubbed text). The
full ledger stays in the run directory; `output.publish_full_ledger: true` publishes it.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from pipeline.core.layout import RunLayout
from pipeline.finalize.consolidate import write_ledger_part
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


def _without_values(spans: str | None) -> str | None:
    """`[[type, start, end, value], ...]` -> `[[type, start, end], ...]`."""
    return None if spans is None else json.dumps([s[:3] for s in json.loads(spans)], ensure_ascii=False)


def public_ledger_part(src: Path, dest: Path, unscrubbed: list[str]) -> None:
    """`src` without PII values and without the excerpts of rows dropped at an `unscrubbed` stage; one
    part in memory at a time (one task's rows)."""
    table = pq.read_table(src)
    spans = pa.array([_without_values(v) for v in table["pii_spans"].to_pylist()], pa.string())
    hide = pc.fill_null(pc.is_in(table["stage"], pa.array(unscrubbed, pa.string())), False)
    excerpt = pc.if_else(hide, pa.scalar(None, pa.string()), table["excerpt"])
    for name, column in (("pii_spans", spans), ("excerpt", excerpt)):
        i = table.schema.get_field_index(name)
        table = table.set_column(i, table.schema.field(i), column)
    write_ledger_part(table, dest)


def unscrubbed_stages(layout: RunLayout) -> list[str]:
    """The stages before PII's in the run's funnel: their drops' excerpts are raw text (all, without PII)."""
    stages = yaml.safe_load(layout.resolved_config.read_text())["stages"]
    return stages[:stages.index("pii")] if "pii" in stages else stages


def _published_files(layout: RunLayout, full_ledger: bool) -> list[tuple[Path, str]]:
    """(local file, path under the URL) for everything published; the public ledger is written here."""
    public = layout.work / "publish" / "ledger"
    unscrubbed = None if full_ledger else unscrubbed_stages(layout)
    files = []
    # work/ and logs/ hold millions of files on a dump: not even walked
    tops = [p for p in layout.root.iterdir() if p.name in PUBLISHED]
    for path in sorted(f for top in tops for f in ([top] if top.is_file() else top.rglob("*")) if f.is_file()):
        rel = path.relative_to(layout.root)
        if rel.parts[0] == "ledger" and unscrubbed is not None:
            public_ledger_part(path, public / path.name, unscrubbed)
            path = public / path.name
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
        with_retries(lambda: fs.put_file(str(src), f"{base}/{rel}"), f"publishing {rel} to {url}")

    *rest, last = files
    with ThreadPoolExecutor(UPLOADS) as pool:
        list(pool.map(lambda f: put(*f), rest))  # list(): the first error is raised here
    put(*last)
    log.info("published %d files to %s", len(files), url)
    return url
