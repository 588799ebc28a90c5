"""Read WARC `response` records (HTML) and WET `conversion` records (text) into documents; count the rest.

A kept record becomes

    Document(text="<!doctype html>...", id="<urn:uuid:...>", metadata={"url": "https://example.com/",
             "date": "2024-05-20T10:00:00Z", "dump": "CC-MAIN-2024-22", "file_path": "crawl/00000.warc.gz",
             "offset": 12345, "content_type": "text/html"})

(a WET record: its text, `text_source: "wet"`, see stages/readers/wet.py) and every dropped one goes to the `reader`
drop ledger under one of `REASONS`. At the end of `run()` a report says what happened to each file, in
`report_folder/{rank:05d}.json`:

    {"files": [{"path": "crawl/00000.warc.gz", "responses": 3, "kept": 2, "dropped": 1, "other_records": 7,
                "error": null, "stopped_early": false, "failed": false}]}

`responses == kept + dropped` for every file, damaged or not: the run's `records_total` is the sum of
`responses` (WET conversion records count as responses). Two kinds of file error:
- damage (truncated gzip, not a WARC, junk between members, no usable record, e.g. a WAT file) stops that
  file only; the records read before the damage still count, and `error` names the file and the damage;
- a transient failure (connection reset, HTTP 503, S3 SlowDown, a cut stream) is retried and the read
  resumed (stages/utils/remote_io.py); when the retries are exhausted the file is reported `failed` and the task
  raises, so it writes no completion marker and a rerun redoes it.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Iterator

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

from stages.readers.headers import HEADER_CAP, OversizedHeaders, ensure_http_headers, truncation_aware_iterator
from stages.readers.payload import (
    DamagedRecord,
    decode_html,
    header_charset,
    looks_binary,
    parsed,
    read_payload,
    valid_url,
)
from stages.readers.wet import USABLE, is_wet_path, judge_wet, no_usable_records, wet_document
from stages.utils.deadline import DEFAULT_RECORD_TIMEOUT, RecordTimeout, record_deadline
from stages.utils.io import write_text_atomic
from stages.utils.remote_io import RetryPolicy, TransientError, open_stream
from stages.writers.ledger import DropLedger, drop

logger = logging.getLogger(__name__)

REASONS = (
    "bad_url",  # no http(s) scheme or host, or unparseable (`http://[::1/x`)
    "http_status",  # not HTTP 200
    "non_html",  # payload type is not text/html or application/xhtml+xml
    "too_large",  # payload over max_payload_bytes, declared or read; HTTP headers over HEADER_CAP
    "damaged_record",  # payload unreadable, shorter than declared, or no HTTP headers
    "binary",  # control bytes in a payload that claims to be HTML (or WET text)
    "decode_error",  # no charset decodes it
    "empty",  # zero-byte payload
    "timeout",  # judging the record took over record_timeout seconds (stages/utils/deadline.py)
)
HTML_TYPES = ("text/html", "application/xhtml+xml")
DRAIN_CHUNK = 1 << 20  # skip unread payloads 1 MiB at a time (warcio's own drain reads 16 KiB)
DUMP_IN_PATH = re.compile(r"CC-MAIN-\d{4}-\d{2}")
ONE_MEMBER = "one gzip member holds several records"  # file_error's words for warcio's non-chunked gzip


@dataclass
class FileFate:
    """What happened to one input file: the rows of the reader report."""

    path: str
    responses: int = 0
    kept: int = 0
    dropped: int = 0
    other_records: int = 0
    error: str | None = None
    stopped_early: bool = False
    failed: bool = False  # transient errors outlasted the retries: the task failed, to be redone


class WarcReader(PipelineStep):
    """Reads `response` records of (gzip-per-record or plain) WARC files into HTML documents, and
    `conversion` records of WET files into text documents.

    Rank `r` of `world_size` reads `paths[r::world_size]`, in order. Paths are local or fsspec URLs
    (`s3://`, `https://`), read as streams with retries (`retry`): with `max_records` only the head of a
    remote file is fetched. `cache_bytes` > 0 keeps remote files read whole in a local LRU cache.
    """

    name = "📖 WARC reader"
    stage = "reader"
    type = "📖 - READER"

    def __init__(
        self,
        paths: list[str],
        ledger_folder: str,
        report_folder: str,
        max_payload_bytes: int = 1 << 20,  # Common Crawl truncates payloads at 1 MiB
        max_records: int | None = None,
        dump: str | None = None,
        progress_folder: str | None = None,
        retry: RetryPolicy | None = None,  # None: RetryPolicy()'s defaults
        cache_bytes: int = 0,
        record_timeout: float | None = DEFAULT_RECORD_TIMEOUT,
    ):
        super().__init__()
        if isinstance(paths, str):
            raise TypeError("paths must be a list of paths, not one string")
        if max_payload_bytes < 0:
            raise ValueError(f"max_payload_bytes must be >= 0, got {max_payload_bytes}")
        if max_records is not None and max_records < 1:
            raise ValueError(f"max_records must be >= 1 or None, got {max_records}")
        self.paths = list(paths)
        self.ledger_folder = ledger_folder
        self.report_folder = report_folder
        self.max_payload_bytes = max_payload_bytes
        self.max_records = max_records
        self.dump = dump
        self.progress_folder = progress_folder
        self.retry = retry or RetryPolicy()
        self.cache_bytes = cache_bytes
        self.record_timeout = record_timeout

    def _report_progress(self, rank: int, responses: int, done: float | None) -> None:
        """`{responses} {done}` in `progress_folder/{rank}`, for the command line's progress bar: responses read
        so far by this task and the share of its work done (-1: unknown, a remote file without --max-records)."""
        write_text_atomic(os.path.join(self.progress_folder, f"{rank:05d}"),
                          f"{responses} {-1 if done is None else round(done, 4)}")

    def _share_done(self, index: int, files: int, fate: FileFate, offset: int | None, size: int | None) -> float | None:
        """Of this task's `files`, the share read: files before `index`, and of file `index` the nearer of its
        two ends: its responses out of --max-records, the bytes before `offset` out of its `size` (a local file)."""
        shares = [fate.responses / self.max_records] if self.max_records is not None else []
        if size and offset is not None:
            shares.append(offset / size)
        return (index + min(max(shares), 1.0)) / files if shares else None

    def run(self, data=None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        if data:
            yield from data
        fates = []
        responses = 0
        mine = self.paths[rank::world_size]
        reported = time.monotonic()
        with DropLedger(self.ledger_folder, "reader") as ledger:
            for index, path in enumerate(mine):
                fate = FileFate(path)
                fates.append(fate)
                self.stat_update("files")
                size = os.path.getsize(path) if self.progress_folder and os.path.isfile(path) else None
                try:
                    for doc, reason, detail in self._read_file(path, fate):
                        self.stat_update("responses")
                        responses += 1
                        # once a second: the bar moves within a task (a CC WARC is ~30,000 records, minutes)
                        if self.progress_folder and time.monotonic() - reported >= 1.0:
                            reported = time.monotonic()
                            self._report_progress(rank, responses, self._share_done(
                                index, len(mine), fate, doc.metadata.get("offset"), size))
                        if reason is None:
                            fate.kept += 1
                            self.stat_update("kept")
                            self.update_doc_stats(doc)
                            yield doc
                        else:
                            fate.dropped += 1
                            self.stat_update("dropped", f"dropped_{reason}")
                            drop(ledger, doc, rank, reason, detail)
                except TransientError as exc:  # not damage: fail the task, so that it is redone
                    fate.error, fate.failed = str(exc), True
                    write_report(self.report_folder, rank, fates)
                    raise
                if fate.error:  # in the reader report; the command line prints it once, at the end of the run
                    self.stat_update("file_errors")
                    logger.info("%s", fate.error)
        write_report(self.report_folder, rank, fates)
        if self.progress_folder:
            self._report_progress(rank, responses, 1.0)

    def _read_file(self, path: str, fate: FileFate) -> Iterator[tuple[Document, str | None, str | None]]:
        """(doc, reason or None if kept, detail) per response or conversion record of `path`."""
        yield from self._read_records(path, fate)
        if fate.error and ONE_MEMBER in fate.error and is_wet_path(path) and not fate.responses:
            # WET files recompressed as one gzip member (as jeffharwell's test files): read it through
            # Python's gzip stream; offsets are then into the decompressed file. WARC files keep the error:
            # their offsets must point at a gzip member, for random access.
            fate.error, fate.other_records = None, 0
            yield from self._read_records(path, fate, one_member=True)

    def _read_records(self, path: str, fate: FileFate, one_member: bool = False) -> Iterator[tuple]:
        """(doc, reason or None if kept, detail) per response or conversion record. Only warcio calls are
        guarded: the `yield`s are outside every try, so an exception thrown in by a later step is never taken
        for damage; TransientError (retries exhausted) is never damage either: it goes up to `run`."""
        try:
            f = open_stream(path, whole=self.max_records is None, policy=self.retry, cache_bytes=self.cache_bytes)
        except TransientError:
            raise
        except Exception as exc:
            fate.error = file_error(path, "cannot open", exc)
            return
        with f, (gzip.GzipFile(fileobj=f) if one_member else contextlib.nullcontext(f)) as stream:
            iterator = truncation_aware_iterator()(stream)
            records = iter(iterator)
            dump = self.dump
            held = Counter()  # records ccpipe does not read, by type: named if the file has nothing else
            while True:
                if self.max_records is not None and fate.responses >= self.max_records:
                    fate.stopped_early = True
                    return
                try:
                    record = next(records)
                    if record.format != "warc":
                        raise ValueError(f"not a WARC record (parsed as {record.format!r})")
                    if record.rec_type == "warcinfo" and dump is None:
                        dump = warcinfo_dump(record)
                except StopIteration:
                    if iterator.truncated:
                        fate.error = (f"{path}: file ends inside a gzip member (truncated; {fate.responses} response "
                                      "records read before the cut, counted)")
                    elif held and not fate.responses:  # a WAT, or a WARC of requests: never an empty success
                        fate.error = no_usable_records(path, held)
                    return
                except TransientError:
                    raise
                except Exception as exc:
                    fate.error = file_error(path, "unreadable record", exc)
                    return
                if record.rec_type not in USABLE:
                    held[record.rec_type] += 1
                    fate.other_records += 1
                    self.stat_update("other_records")
                    continue
                fate.responses += 1
                with self.track_time():
                    text, reason, detail, offset, damage = self._judge_and_drain(record, iterator)
                meta = {"dump": dump or dump_from_path(path), "file_path": path, "offset": offset}
                make = wet_document if record.rec_type == "conversion" else record_document
                yield make(record, text or "", meta), reason, detail
                if damage is not None:
                    fate.error = file_error(path, f"response {fate.responses} unreadable", damage)
                    return

    def _judge_and_drain(self, record, iterator) -> tuple:
        """(text, reason, detail, offset, damage): the record judged, then the rest of it skipped; `damage`
        is the exception when the file itself broke under this record."""
        judge = (lambda r: judge_wet(r, self.max_payload_bytes)) if record.rec_type == "conversion" else self._judge
        try:
            text, reason, detail = judge(record)
        except RecordTimeout as exc:
            text, reason, detail = None, "timeout", str(exc)
        except DamagedRecord as exc:  # bytes that do not parse (bad chunking, broken gzip): count it. Any other
            text, reason, detail = None, "damaged_record", str(exc)  # exception is ours: it fails the task
        try:
            drain(record.raw_stream)
            offset, damage = iterator.get_record_offset(), None
            if missing := getattr(record.raw_stream, "limit", 0):  # a lying length, a cut file
                text, reason, detail = None, "damaged_record", f"record ends {missing} bytes short"
        except TransientError:
            raise
        except Exception as exc:  # the file itself broke under this record: count it, then stop
            offset, damage = None, exc
            text, reason, detail = None, "damaged_record", f"{type(exc).__name__}: {exc}"[:200]
        return text, reason, detail, offset, damage

    def _judge(self, record) -> tuple[str | None, str | None, str | None]:
        """(text, reason, detail) for one response record; reads at most max_payload_bytes + 1 payload bytes."""
        parsed(ensure_http_headers, record)
        url = record.rec_headers.get_header("WARC-Target-URI") or ""
        if not valid_url(url):
            return None, "bad_url", url[:200]
        if record.http_headers is None:
            return None, "damaged_record", "response record without HTTP headers"
        if isinstance(record.http_headers, OversizedHeaders):
            return None, "too_large", f"HTTP headers over {HEADER_CAP} bytes"
        status = record.http_headers.get_statuscode()
        if status != "200":
            return None, "http_status", status
        mime = payload_type(record)
        if mime not in HTML_TYPES:
            return None, "non_html", mime or "missing"
        if record.payload_length > self.max_payload_bytes:  # declared length, before reading a byte
            return None, "too_large", f"declared {record.payload_length} bytes"
        payload = read_payload(record, self.max_payload_bytes + 1)
        if len(payload) > self.max_payload_bytes:  # a lying length, or a Content-Encoding bomb
            return None, "too_large", f"more than {self.max_payload_bytes} bytes"
        if not payload:
            return None, "empty", None
        # the time bound covers the work on the bytes read (charset detection, decoding: a 1 MB body labelled
        # punycode took 83 s), not warcio's reading, which the header cap and max_payload_bytes bound: a timer
        # firing inside a gzip read left the stream short, and the record came out as damaged_record
        with record_deadline(self.record_timeout):
            charset = header_charset(record.http_headers.get_header("Content-Type"))
            if looks_binary(payload, charset):
                return None, "binary", None
            decoded = decode_html(payload, charset)
        if decoded is None:
            return None, "decode_error", charset
        return decoded, None, None


def record_document(record, text: str, meta: dict) -> Document:
    """The document of a response record, kept (with its HTML) or dropped (text="", same id and metadata)."""
    headers = record.rec_headers
    return Document(text=text, id=headers.get_header("WARC-Record-ID") or "", metadata={
        "url": headers.get_header("WARC-Target-URI"),
        "date": headers.get_header("WARC-Date"),
        "dump": meta["dump"],
        "file_path": meta["file_path"],
        "offset": meta["offset"],
        "content_type": payload_type(record),
    })  # fmt: skip


def drain(stream) -> None:
    """Skip what is left of a record in large reads, holding at most DRAIN_CHUNK bytes."""
    while stream.read(DRAIN_CHUNK):
        pass


def payload_type(record) -> str | None:
    """WARC-Identified-Payload-Type when present and non-empty, else the HTTP Content-Type, lowercased."""
    mime = (record.rec_headers.get_header("WARC-Identified-Payload-Type") or "").strip()
    if not mime and record.http_headers is not None:
        mime = record.http_headers.get_header("Content-Type") or ""
    return mime.split(";")[0].strip().lower() or None


def warcinfo_dump(record) -> str | None:
    """The `isPartOf` field of a warcinfo record (`CC-MAIN-2024-22` in Common Crawl)."""
    fields = record.content_stream().read(64 * 1024).decode("utf-8", errors="replace")
    match = re.search(r"^isPartOf:\s*(\S+)", fields, re.MULTILINE)
    return match.group(1) if match else None


def dump_from_path(path: str) -> str:
    match = DUMP_IN_PATH.search(path)
    return match.group(0) if match else "unknown"


def file_error(path: str, what: str, exc: BaseException) -> str:
    """One line naming the file and the damage; warcio's messages span lines and quote raw bytes."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    message = lines[0] if lines else type(exc).__name__
    if "non-chunked gzip" in str(exc):
        message = f"{ONE_MEMBER} (not gzip-per-record; `warcio recompress` fixes it)"
    message = "".join(c if c.isprintable() and c.isascii() else ascii(c)[1:-1] for c in message[:200])
    return f"{path}: {what}: {type(exc).__name__}: {message}"


def write_report(folder: str, rank: int, fates: list[FileFate]) -> str:
    """Write `{folder}/{rank:05d}.json` atomically (temporary name, then rename)."""
    path = os.path.join(folder, f"{rank:05d}.json")
    write_text_atomic(path, json.dumps({"files": [asdict(fate) for fate in fates]}, indent=1))
    return path


def failed_reads(folder: str | os.PathLike) -> str:
    """`; could not read (transient errors, retries exhausted): FILE (task R): ERROR, ...` from the reports
    of tasks that failed on a transient error, or "" when none did."""
    failed = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if not name.endswith(".json"):
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            failed += [f"task {int(name[:-5])}: {fate['error']}" for fate in json.load(f)["files"] if fate.get("failed")]
    return "; could not read (transient errors, retries exhausted): " + "; ".join(failed) if failed else ""
