"""Retries and resumption against a real flaky HTTP server on loopback; the LRU cache of remote files."""

from __future__ import annotations

import functools
import http.server
import os
import random
import socket
import subprocess
import threading
import time

import pytest

from stages.utils import remote_io
from stages.utils.remote_io import (
    ResumableStream,
    RetryPolicy,
    TransientError,
    is_transient,
    open_stream,
)
from tests.pipeline.faults import FAULTS, FaultyFileServer

pytestmark = pytest.mark.timeout(60)

FAST = RetryPolicy(attempts=8, backoff_seconds=0.001, max_backoff_seconds=0.01)
SMALL = {"block_size": 4096, "skip_instance_cache": True}  # many requests per file: the faults land mid-file


@pytest.fixture
def files(tmp_path):
    rng = random.Random(0)
    folder = tmp_path / "served"
    folder.mkdir()
    for name, size in (("a.warc.gz", 200_000), ("b.warc.gz", 150_000)):
        (folder / name).write_bytes(rng.randbytes(size))
    return folder


def test_transient_or_not():
    import botocore.exceptions

    assert is_transient(ConnectionResetError()) and is_transient(TimeoutError())
    assert not is_transient(FileNotFoundError("x")) and not is_transient(ValueError("bad gzip"))
    slow = botocore.exceptions.ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}},
                                           "GetObject")
    missing = botocore.exceptions.ClientError({"Error": {"Code": "NoSuchKey"},
                                               "ResponseMetadata": {"HTTPStatusCode": 404}}, "GetObject")
    assert is_transient(slow) and not is_transient(missing)
    try:  # fsspec reports an HTTP 503 on HEAD as FileNotFoundError raised from it: the cause decides
        try:
            raise slow
        except Exception as exc:
            raise FileNotFoundError("s3://b/k") from exc
    except FileNotFoundError as wrapped:
        assert is_transient(wrapped)
    assert not is_transient(TransientError("retried to exhaustion already"))


def test_resumed_read_gives_the_same_bytes(files):
    with FaultyFileServer(files, seed=1, rate=0.3) as server:
        for name in ("a.warc.gz", "b.warc.gz"):
            with ResumableStream(f"{server.url}/{name}", FAST, **SMALL) as stream:
                assert stream.read() == (files / name).read_bytes()
        assert set(server.faults.injected) == set(FAULTS), server.faults.injected


def test_exhausted_retries_raise_transient_error_naming_the_file(files):
    with FaultyFileServer(files, rate=0.0) as server:
        server.fail_all("a.warc.gz")
        with pytest.raises(TransientError, match=r"a\.warc\.gz: cannot open: .* after 3 tries: .*503"):
            ResumableStream(f"{server.url}/a.warc.gz", RetryPolicy(3, 0.001, 0.01), **SMALL)
        assert server.faults.injected["503"] >= 3


def test_a_missing_file_is_not_retried(files):
    with FaultyFileServer(files, rate=0.0) as server:
        with pytest.raises(FileNotFoundError):
            ResumableStream(f"{server.url}/nope.warc.gz", FAST, **SMALL)
        assert server.faults.requests <= 2  # HEAD, then fsspec's GET fallback: no retries


def test_cache_is_off_by_default_and_bounded_when_on(files, tmp_path, monkeypatch):
    monkeypatch.setenv("CCPIPE_CACHE", str(tmp_path / "cache"))
    cache = tmp_path / "cache" / "warc"
    with FaultyFileServer(files, rate=0.0) as server:
        a, b = f"{server.url}/a.warc.gz", f"{server.url}/b.warc.gz"
        with open_stream(a, policy=FAST, **SMALL) as f:
            assert f.read() == (files / "a.warc.gz").read_bytes()
        assert not cache.exists()  # off unless configured
        with open_stream(a, policy=FAST, cache_bytes=300_000, **SMALL) as f:
            assert f.read() == (files / "a.warc.gz").read_bytes()
        assert [p.stat().st_size for p in cache.iterdir()] == [200_000]
        requests = server.faults.requests
        with open_stream(a, policy=FAST, cache_bytes=300_000, **SMALL) as f:  # from the cache: no request
            assert f.read() == (files / "a.warc.gz").read_bytes()
        assert server.faults.requests == requests
        os.utime(next(cache.iterdir()), (1, 1))  # least recently used
        with open_stream(b, policy=FAST, cache_bytes=300_000, **SMALL) as f:  # 200 k + 150 k > 300 k: a goes
            assert f.read() == (files / "b.warc.gz").read_bytes()
        assert sorted(p.stat().st_size for p in cache.iterdir()) == [150_000]
        with open_stream(a, policy=FAST, cache_bytes=100_000, **SMALL) as f:  # larger than the cache: streamed
            assert f.read() == (files / "a.warc.gz").read_bytes()
        assert sorted(p.stat().st_size for p in cache.iterdir()) == [150_000]


def test_a_cached_file_evicted_at_the_worst_moment_is_still_read_whole(files, tmp_path, monkeypatch):
    """Another task's eviction lands between finding a cached file and opening it, or between renaming a
    fetched file into place and opening it: the whole file used to be lost as 'cannot open' (a counted file
    error, exit 0). Opened first, the file stays readable however soon it is unlinked."""
    monkeypatch.setenv("CCPIPE_CACHE", str(tmp_path / "cache"))
    cache = tmp_path / "cache" / "warc"
    whole = (files / "a.warc.gz").read_bytes()
    replace, utime = os.replace, os.utime

    def replace_then_evict(src, dst):
        replace(src, dst)
        remote_io.evict(str(cache), 0)

    def evict_then_utime(path, *args, **kwargs):
        remote_io.evict(str(cache), 0)
        return utime(path, *args, **kwargs)

    with FaultyFileServer(files, rate=0.0) as server:
        a = f"{server.url}/a.warc.gz"
        monkeypatch.setattr(os, "replace", replace_then_evict)  # fetched, renamed, evicted before it is read
        with open_stream(a, policy=FAST, cache_bytes=300_000, **SMALL) as f:
            assert f.read() == whole
        monkeypatch.setattr(os, "replace", replace)
        with open_stream(a, policy=FAST, cache_bytes=300_000, **SMALL) as f:
            assert f.read() == whole
        requests = server.faults.requests
        monkeypatch.setattr(os, "utime", evict_then_utime)  # found in the cache, evicted before it is opened
        with open_stream(a, policy=FAST, cache_bytes=300_000, **SMALL) as f:
            assert f.read() == whole
        assert server.faults.requests == requests and list(cache.iterdir()) == []


def test_partial_fetches_of_dead_tasks_are_evicted(tmp_path):
    """A task killed mid-fetch left its `.tmp-PID` file in the cache forever: eviction skipped every such
    file, and the cache grew past `input.cache_gb` by one partial WARC (~1 GB) per killed task."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    host = socket.gethostname()
    names = {"dead": f"x.warc.gz.tmp-{host}-{gone.pid}", "live": f"y.warc.gz.tmp-{host}-{os.getpid()}",
             "old": "z.warc.gz.tmp-elsewhere-1", "recent": "w.warc.gz.tmp-elsewhere-2"}
    for name in names.values():
        (tmp_path / name).write_bytes(b"partial")
    os.utime(tmp_path / names["old"], (1, 1))  # untouched since 1970: another host's task that died
    remote_io.evict(str(tmp_path), 1 << 30)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names["live"], names["recent"]])


class _StallFirst(http.server.SimpleHTTPRequestHandler):
    """Serves files; the first request of each method is accepted and read, then answered with silence."""

    stalled: set = set()
    release = threading.Event()

    def log_message(self, *args) -> None:
        pass

    def _stall(self) -> bool:
        if self.command in self.stalled:
            return False
        self.stalled.add(self.command)
        self.release.wait(120)  # holds the connection open, sending nothing, until the test ends
        return True

    def do_HEAD(self):
        if not self._stall():
            super().do_HEAD()

    def do_GET(self):
        if not self._stall():
            super().do_GET()


def test_a_stalled_connection_is_retried_after_the_read_timeout(files):
    handler = type("Handler", (_StallFirst,), {"stalled": set(), "release": threading.Event()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(files)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    policy = RetryPolicy(attempts=3, backoff_seconds=0.001, max_backoff_seconds=0.01, read_timeout_seconds=1.0)
    started = time.monotonic()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/a.warc.gz"
        with ResumableStream(url, policy, skip_instance_cache=True) as stream:
            assert stream.read() == (files / "a.warc.gz").read_bytes()
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()
    assert handler.stalled == {"HEAD", "GET"}  # both the size and the body met a silent server once
    assert time.monotonic() - started < 20  # two 1 s stalls and a retry each, not aiohttp's 300 s
