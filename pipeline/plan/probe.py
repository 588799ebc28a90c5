"""Before the phases start: can the inputs be opened at all?

Each input (for a listing of thousands, an evenly spread sample) is opened and its first bytes read, a few at
a time in threads. An input that names a host that does not resolve, a refused port, or an HTTP 403/404 is
refused with its real cause, before any task runs; transient trouble (a timeout, a 5xx) is left to the
reader's retries. Outputs do not depend on this check: it only reads.
"""

from __future__ import annotations

import errno
import socket
from concurrent.futures import ThreadPoolExecutor

import fsspec

from pipeline.plan.inputs import InputError, is_remote
from stages.utils.remote_io import is_transient

SAMPLE = 32  # inputs opened at most: each costs a round trip, and the reader's retries handle the rest
THREADS = 8


def _sample(files: list[str], k: int = SAMPLE) -> list[str]:
    """`k` inputs spread evenly over `files` (all of them when there are fewer), always the same ones."""
    if len(files) <= k:
        return list(files)
    return [files[i * len(files) // k] for i in range(k)]


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        if getattr(exc, "os_error", None) is not None:  # aiohttp's ClientConnectorError wraps the OSError
            yield exc.os_error
        exc = exc.__cause__ or exc.__context__


def cause(path: str, exc: BaseException) -> str | None:
    """The definite reason `path` cannot be read (DNS, refused, 403, 404, missing), or None when it may pass.
    The deepest cause wins: fsspec's HTTP reports a failed DNS lookup as FileNotFoundError(url) from it."""
    chain = list(_chain(exc))
    for err in chain:
        if isinstance(err, ImportError):  # s3:// without s3fs: the runtime install leaves the extra out
            return f"{err} (`make install EXTRAS=remote`, or pip install -e '.[remote]')"
        if isinstance(err, socket.gaierror) or type(err).__name__ == "ClientConnectorDNSError":
            host = path.split("://", 1)[-1].split("/", 1)[0]
            return f"cannot resolve the host name {host!r} (DNS lookup failed: no network, or no such host)"
        if isinstance(err, ConnectionRefusedError) or getattr(err, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        status = getattr(err, "status", None)
        if isinstance(status, int) and status in (401, 403, 404, 410):
            return f"HTTP {status} {getattr(err, 'message', '') or ''}".strip()
    if is_transient(exc):  # a 5xx/429, a reset, a timeout (fsspec reports a 503 on HEAD as FileNotFoundError)
        return None
    for err in chain:
        if isinstance(err, FileNotFoundError):
            return "HTTP 404 Not Found" if path.startswith(("http://", "https://")) else "no such file or object"
        if isinstance(err, PermissionError):
            return "access denied"
        if isinstance(err, IsADirectoryError):
            return "a directory, not a file"
    return None


def _open(path: str) -> str | None:
    try:
        with fsspec.open(path, "rb") as f:
            f.read(2)
    except Exception as exc:  # noqa: BLE001 - every failure is classified; unknown ones are left to the reader
        return cause(path, exc)
    return None


def probe_inputs(files: list[str]) -> None:
    """Raise `InputError` naming the first input that cannot be read, its cause, and how many others failed."""
    sample = _sample(files)
    remote = [f for f in sample if is_remote(f)]
    with ThreadPoolExecutor(max(1, min(THREADS, len(remote)))) as pool:
        remote_causes = dict(zip(remote, pool.map(_open, remote)))
    causes = [(f, remote_causes[f] if f in remote_causes else _open(f)) for f in sample]
    failed = [(f, why) for f, why in causes if why]
    if failed:
        first, why = failed[0]
        more = f" ({len(failed) - 1} more of the {len(sample)} inputs checked fail too)" if len(failed) > 1 else ""
        raise InputError(f"{first}: cannot be read: {why}{more}")
