"""Remote WARC files over flaky networks: retry what is transient, resume the read where it stopped.

At dump scale (~90,000 files, thousands of tasks on one bucket) connections reset, S3 answers 503 SlowDown
and streams get cut. None of that is damage: `ResumableStream` retries it with exponential backoff and full
jitter, reopening the file at the byte where the last read stopped (an HTTP Range request: fsspec's
`seek`). warcio above it sees one unbroken byte stream, so a disturbed read yields exactly the records,
offsets and ids of an undisturbed one; gzip members need no special care since we resume byte for byte.
When the retries are exhausted it raises `TransientError`: the reader lets the task fail (no completion
marker), and rerunning the same command redoes it.

Why our own loop and not tenacity: ten lines here against a new dependency, and s3fs/botocore already retry
each request (5 tries each); this layer adds what they lack, resuming a stream cut between requests.

A remote file read whole may be kept in a local cache (`input.cache_gb`, off by default): at most that many
bytes under `$CCPIPE_CACHE/warc`, least recently used files evicted first (a Common Crawl WARC is ~1 GB).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import random
import shutil
import socket
import time
from dataclasses import dataclass

from stages.utils import io as io_

logger = logging.getLogger(__name__)

TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}  # timeouts, throttling, server-side failures
# S3 error codes that mean "try again": throttling (SlowDown is S3's 503) and server-side failures
TRANSIENT_S3_CODES = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling",
                      "ThrottlingException", "RequestLimitExceeded", "503", "500"}  # fmt: skip
COPY_CHUNK = 8 << 20  # cache fills in 8 MiB reads
TMP_MARK = ".tmp-"  # a fetch in progress: NAME.tmp-HOST-PID
ABANDONED_SECONDS = 24 * 3600  # a partial fetch of another host untouched this long: its task is gone


class TransientError(OSError):
    """A remote read that kept failing for transient reasons after every retry: the task must fail."""


class ShortRead(ConnectionError):
    """The stream ended before the size the server declared: a cut connection, not the end of the file."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8  # tries per read; 1 + 2 + ... + 60 s of backoff rides out a throttled bucket (~3 min)
    backoff_seconds: float = 1.0  # the first wait's ceiling; doubled each try
    max_backoff_seconds: float = 60.0
    # a connection that goes silent (the server accepts, then sends nothing) counts as transient after this
    # many seconds without a byte; aiohttp's own default is 300 s for the whole request
    read_timeout_seconds: float = 60.0

    def wait(self, attempt: int) -> float:
        """Full jitter (uniform in 0..ceiling): thousands of tasks throttled together do not retry together."""
        return random.uniform(0, min(self.max_backoff_seconds, self.backoff_seconds * 2**attempt))


def is_transient(exc: BaseException) -> bool:
    return transient_cause(exc) is not None


def transient_cause(exc: BaseException) -> BaseException | None:
    """The transient error behind `exc`, or None. Connection errors, timeouts, HTTP 5xx/429, S3 throttling, short bodies: anywhere in the cause chain
    (fsspec turns an HTTP 503 on HEAD into FileNotFoundError *from* the 503; s3fs wraps botocore's errors)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, TransientError):
            return None  # already retried to exhaustion
        if isinstance(exc, (ConnectionError, TimeoutError)) or _transient_by_name(exc):
            return exc
        if getattr(exc, "status", None) in TRANSIENT_STATUS:  # aiohttp.ClientResponseError
            return exc
        response = getattr(exc, "response", None)  # botocore.exceptions.ClientError
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in TRANSIENT_S3_CODES or status in TRANSIENT_STATUS:
                return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _transient_by_name(exc: BaseException) -> bool:
    """Network errors of aiohttp and botocore, by class name: neither is a dependency of this module."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"ClientConnectionError", "ClientPayloadError", "ServerDisconnectedError", "FSTimeoutError",
                         "HTTPClientError", "IncompleteReadError", "ResponseStreamingError", "ConnectionClosedError",
                         "EndpointConnectionError", "ReadTimeoutError", "ConnectTimeoutError", "IncompleteRead"})


def retrying(action, what: str, policy: RetryPolicy):
    """`action()`, retried on transient errors; TransientError naming `what` when every try failed."""
    for attempt in range(policy.attempts):
        try:
            return action()
        except Exception as exc:
            if not is_transient(exc):
                raise
            last = exc
            if attempt + 1 < policy.attempts:
                delay = policy.wait(attempt)
                logger.info("%s: %s: %s; retry %d in %.2f s", what, type(exc).__name__, exc, attempt + 1, delay)
                time.sleep(delay)
    cause = transient_cause(last)  # the 503 itself, not fsspec's FileNotFoundError raised from it
    message = " ".join(f"{type(cause).__name__}: {cause}".split())[:300]
    raise TransientError(f"{what}: transient error persisted after {policy.attempts} tries: {message}") from last


class ResumableStream(io.RawIOBase):
    """A remote file read front to back; each read retried, and resumed at the byte it stopped at."""

    def __init__(self, url: str, policy: RetryPolicy = RetryPolicy(), **storage_options):
        import fsspec  # remote inputs only; local files never import the fsspec stack

        super().__init__()
        self.url, self.policy, self.pos, self._file = url, policy, 0, None
        self.fs, self._path = fsspec.core.url_to_fs(url, **timeouts(url, policy.read_timeout_seconds), **storage_options)
        self.size = retrying(self._size, f"{url}: cannot open", policy)

    def _size(self) -> int | None:
        self.fs.invalidate_cache(self._path)  # a listing cached from before a failure may be stale
        return self.fs.info(self._path).get("size")

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:
        data = retrying(lambda: self._read(len(buffer)), f"{self.url}: read at byte {self.pos}", self.policy)
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)

    def _read(self, n: int) -> bytes:
        try:
            if self._file is None:
                self._file = self.fs.open(self._path, "rb")
                self._skip_to(self.pos)
            data = self._file.read(n)
        except BaseException:
            self._drop_file()  # its connection may be broken: the next try reopens
            raise
        if not data and self.size is not None and self.pos < self.size:
            self._drop_file()
            raise ShortRead(f"stream ended at byte {self.pos} of {self.size}")
        return data

    def _skip_to(self, pos: int) -> None:
        """Seek (a Range request on the next read); a server that cannot seek is read up to `pos`."""
        if not pos:
            return
        if self._file.seekable():
            self._file.seek(pos)
            return
        while pos > 0:
            chunk = self._file.read(min(pos, COPY_CHUNK))
            if not chunk:
                raise ShortRead(f"stream ended at byte {self.pos - pos} while resuming at {self.pos}")
            pos -= len(chunk)

    def _drop_file(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except Exception as exc:  # noqa: BLE001 - closing a broken connection may fail too; dropped either way
                logger.debug("%s: closing after an error: %s", self.url, exc)

    def close(self) -> None:
        self._drop_file()
        super().close()


def timeouts(url: str, seconds: float) -> dict:
    """fsspec storage options bounding connect and each socket read to `seconds`, for HTTP(S) and S3 URLs."""
    if url.startswith(("http://", "https://")):
        import aiohttp  # fsspec's HTTP filesystem is built on it

        return {"client_kwargs": {"timeout": aiohttp.ClientTimeout(total=None, sock_connect=seconds,
                                                                   sock_read=seconds)}}
    if url.startswith(("s3://", "s3a://")):
        return {"config_kwargs": {"connect_timeout": seconds, "read_timeout": seconds}}
    return {}


def cache_dir() -> str:
    return str(io_.cache_dir("warc"))


def open_stream(path: str, whole: bool = True, policy: RetryPolicy = RetryPolicy(), cache_bytes: int = 0,
                **storage_options):
    """Open a local path or an fsspec URL. A remote file is streamed with retries and resumption; read whole
    and with a cache (`cache_bytes` > 0), it is fetched into `$CCPIPE_CACHE/warc` and reused by later runs."""
    if "://" not in path:
        return open(path, "rb")
    import fsspec  # remote inputs only; local files never import the fsspec stack

    if path.startswith(("file://", "memory://")):
        return fsspec.open(path, "rb").open()
    if whole and cache_bytes > 0:
        try:  # opened first: a concurrent eviction then unlinks a file we still read (POSIX), never one we are
            cached = open(cache_path(path), "rb")  # about to open (exists -> open lost the whole file)
        except FileNotFoundError:
            pass
        else:
            os.utime(cached.fileno())  # mtime is "last used": eviction goes by it
            return cached
    stream = ResumableStream(path, policy, **storage_options)
    if not (whole and cache_bytes > 0) or stream.size is None or stream.size > cache_bytes:
        return stream
    return cached_copy(stream, cache_bytes)


def cache_path(url: str) -> str:
    """Keyed by URL alone, as fsspec's simplecache: Common Crawl's files never change once published."""
    return os.path.join(cache_dir(), f"{hashlib.sha256(url.encode()).hexdigest()[:32]}-{os.path.basename(url)[-80:]}")


def cached_copy(stream: ResumableStream, cache_bytes: int):
    """Fetch `stream`'s file into the cache, first evicting what keeps the cache under `cache_bytes`; returns
    it open for reading (opened before it is renamed into place, where another task may evict it at once)."""
    path = cache_path(stream.url)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    evict(folder, cache_bytes - stream.size)
    tmp = f"{path}{TMP_MARK}{socket.gethostname()}-{os.getpid()}"
    reader = None
    try:
        with stream, open(tmp, "wb") as out:
            shutil.copyfileobj(stream, out, COPY_CHUNK)
        reader = open(tmp, "rb")
        os.replace(tmp, path)
    except BaseException:
        if reader is not None:
            reader.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # a failed fetch leaves nothing; a killed one is removed by a later `evict`
        raise
    return reader


def _abandoned(entry: os.DirEntry) -> bool:
    """A partial fetch whose writer is gone: a pid of this host that no longer runs, or one untouched for
    ABANDONED_SECONDS (another host's, whose pid cannot be checked from here)."""
    host, _, pid = entry.name.rpartition(TMP_MARK)[2].rpartition("-")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return time.time() - entry.stat().st_mtime > ABANDONED_SECONDS


def evict(folder: str, keep_bytes: int) -> None:
    """Delete cached files, least recently used first, until they hold at most `keep_bytes`. A file open
    in another task stays readable there (POSIX unlink), so concurrent tasks need no lock. Partial fetches
    of tasks that died (`.tmp-HOST-PID` of a pid gone on this host, or untouched for a day) go first."""
    entries = []
    for entry in os.scandir(folder):
        try:
            if TMP_MARK in entry.name:
                if _abandoned(entry):
                    os.remove(entry.path)
                continue
            if entry.is_file():
                stat = entry.stat()
                entries.append((stat.st_mtime, stat.st_size, entry.path))
        except FileNotFoundError:
            continue  # evicted by another task meanwhile
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= keep_bytes:
            break
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        total -= size
