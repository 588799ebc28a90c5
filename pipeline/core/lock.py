"""One writer per run directory: `RUN/run.lock`, held (flock) for as long as a command writes the run.

Two `ccpipe run` into the same `--output`, started 3 s apart, used to interleave their tasks and leave a
run whose ledger never adds up (451 rows for 475 records read), however often it was rerun. Now the second
is refused at once, naming the live run's host and pid; `audit` and `release build` refuse a run that is
still being written the same way.

Why flock and not a pid file alone: the kernel drops the lock when its holder dies, however it dies
(kill -9, out of memory, a node that reboots), so a lock is never stale; a pid file would need its pid
checked, which cannot be done from another host. The file's content (host, pid, start) only names the
holder. The worker processes forked from the command share the lock (they inherit its descriptor): while
one of them still writes, the run is live. A command that ends cleanly removes the file; one that was
killed leaves it, and the next run takes it over with a line saying so. For an `--output` URL the run
directory is the local work dir (`run.work_dir`), so the lock lives there too.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from pipeline.core.errors import Refused

LOCK_NAME = "run.lock"
TRIES = 5  # a reader probing the lock (`audit`, `release build`) holds it a few microseconds: try again
TRY_GAP_SECONDS = 0.02


class RunLocked(Refused):
    """Another live process writes this run directory (exit 2)."""


def lock_path(root: str | Path) -> Path:
    return Path(root) / LOCK_NAME


def _holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def describe(holder: dict) -> str:
    """'host node7 pid 4242, started 2024-05-20 10:00:00 UTC'."""
    if not holder:
        return "a process that has not yet said who it is"
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder.get("started", 0)))
    return f"host {holder.get('host')} pid {holder.get('pid')}, started {started}"


def _try_lock(fd: int, mode: int, tries: int = TRIES) -> bool:
    for attempt in range(tries):
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
        if attempt + 1 < tries:
            time.sleep(TRY_GAP_SECONDS)
    return False


def live_writer(root: str | Path) -> str | None:
    """Who holds the run directory's lock now ('host H pid P, started T'), or None when nobody writes it."""
    path = lock_path(root)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # no lock file: no command writes this run
    try:
        if _try_lock(fd, fcntl.LOCK_SH):
            return None
        return describe(_holder(path))
    finally:
        os.close(fd)  # drops the shared lock, if taken


@contextlib.contextmanager
def run_lock(root: str | Path, announce=None, wait_seconds: float = 0.0):
    """Hold `root`'s lock for the block; RunLocked at once when a live run holds it.

    `root` is created if need be (and removed again if the block leaves it empty: a run refused before work
    leaves nothing). `announce(line)` hears that the lock of a run that died was taken over (default: stderr).
    `wait_seconds`: how long a live holder may keep it before RunLocked (`ccpipe finalize` as Slurm's last job
    may start while the command that submitted it writes its last files)."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise Refused(f"{root}: exists and is not a directory; choose another --output")
    created = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = _acquire(lock_path(root), announce or (lambda line: print(line, file=sys.stderr, flush=True)),
                      max(TRIES, int(wait_seconds / TRY_GAP_SECONDS)))
    except OSError as exc:  # a read-only mount, an immutable directory, no space
        raise Refused(f"{root}: cannot write the run directory here ({exc.strerror or exc})") from None
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                root.rmdir()
        raise
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path(root))  # while still held: whoever opens it next makes a fresh one
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                root.rmdir()  # only when empty: a run refused before it wrote anything


def _acquire(path: Path, announce, tries: int) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd, fcntl.LOCK_EX, tries):
            holder = describe(_holder(path))
            os.close(fd)
            raise RunLocked(f"{path.parent}: another ccpipe run is writing this run directory ({holder}); "
                            "wait for it to end, or use another --output")
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # its holder removed the file as we opened it: lock the one there now
    previous = _holder(path)
    if previous:  # a file nobody holds, with a holder's name in it: that command died without ending
        announce(f"ccpipe: taking over the lock of a run that ended without releasing it ({describe(previous)})")
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": round(time.time(), 3)}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
    return fd
