"""Processes that die with the process that started them: the run's workers with the command, the extraction
child with its worker.

A `ccpipe run` killed with SIGKILL (or SIGTERM, whose default action is the same abrupt end) used to leave
its workers alive under init, 120-250 MB each, writing completion markers for seconds after: a rerun then
raced them. Two ways, both ending in SIGKILL the moment the watched process ends, however it ends:
- the watched process is the parent (a forked worker, the extraction child): Linux's `PR_SET_PDEATHSIG`,
  the kernel's own signal on the parent's death;
- it is not (a worker of multiprocessing's forkserver is the server's child, and the server lives as long
  as any of its children, which hold its "alive" pipe): a thread blocked on a pidfd of the watched process
  (Linux >= 5.3), else polling its pid every half second.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_SECONDS = 0.5  # where there is no pidfd


def die_with(pid: int | None = None) -> None:
    """Have this process killed when process `pid` (default: the parent) ends; call it first thing."""
    parent = os.getppid()
    pid = parent if pid is None else pid
    if pid == parent and sys.platform.startswith("linux") and _prctl_deathsig():
        if os.getppid() != parent:  # it ended before the call above: nothing will signal us
            _die()
        return
    threading.Thread(target=_watch, args=(pid,), name=f"die-with-{pid}", daemon=True).start()


def _prctl_deathsig() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # this process's own symbols, libc's among them
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):  # no prctl in this libc: the watching thread instead
        return False


def _watch(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        _die()
    except (OSError, AttributeError):  # no pidfd (Linux < 5.3, macOS): poll the pid
        while _alive(pid):
            time.sleep(POLL_SECONDS)
        _die()
    else:
        select.select([fd], [], [])  # readable once the process has ended
        _die()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die() -> None:
    with contextlib.suppress(OSError):
        os.kill(os.getpid(), signal.SIGKILL)
