"""A time bound per record and stage, as extraction has its own (`extract.timeout`, in a child process).

The reader's judging of a record, the blocklist, the language pre-check and ID, the quality filters, MinHash
shingles, the PII stage and tokenization each give one record at most `record_timeout` seconds
(`run.record_timeout`, 60 by default); a record that takes longer is dropped under that stage with reason
`timeout` and the task goes on (MinHash's in the final phase: stages/dedup/minhash.py). Generous on purpose: no
normal page comes near it (the slowest bench page takes ~0.1 s in any of them), so output never depends on the
machine's speed; it bounds what a root-cause fix missed (tests/hostile_corpus.py).

An interval timer (SIGALRM) interrupts Python code at the deadline; C code that holds the interpreter is
interrupted when it returns, and the record is dropped all the same. Outside a process's main thread (no
signals there) the time is checked when the stage returns.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
import time

DEFAULT_RECORD_TIMEOUT = 60.0
_active = False  # a bound is running in this process


class RecordTimeout(BaseException):
    """A record over its time in one stage. A BaseException, as KeyboardInterrupt is: raised from a signal
    handler anywhere, it must not be taken for a library's own error by an `except Exception` on the way (warcio
    reading the payload took it for the end of the stream, and the record became a `damaged_record`)."""


def _expired(seconds: float):
    def handler(_signum, _frame):
        raise RecordTimeout(f"over {seconds:g} s")

    return handler


@contextlib.contextmanager
def record_deadline(seconds: float | None):
    """Raises RecordTimeout in the block once it has run `seconds` (None: no bound)."""
    global _active
    if not seconds or _active:  # a bound inside a bound: the outer one holds
        yield
        return
    started = time.monotonic()
    armed = threading.current_thread() is threading.main_thread()
    _active = True
    previous = signal.signal(signal.SIGALRM, _expired(seconds)) if armed else None
    try:  # armed inside: an alarm due at once must still find `_active` reset, or no later bound would arm
        if armed:
            signal.setitimer(signal.ITIMER_REAL, seconds)
        yield
    finally:
        try:
            if armed:
                signal.setitimer(signal.ITIMER_REAL, 0)  # an alarm due just now raises here: still reset below
        finally:
            _active = False
            if armed:
                signal.signal(signal.SIGALRM, previous)
    if time.monotonic() - started > seconds:
        raise RecordTimeout(f"over {seconds:g} s")


class BoundedFilter:
    """Base of a datatrove filter (before BaseFilter): its `filter(doc)` (a subclass's own, wrapped when the
    class is made) runs within `record_timeout`, else gives `(False, "timeout")`."""

    record_timeout: float | None = DEFAULT_RECORD_TIMEOUT

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "filter" in cls.__dict__:
            cls.filter = _bounded(cls.__dict__["filter"])


def bounded(doc, seconds: float | None, fn, *args, spent: float = 0.0):
    """`fn(*args)`, the work of one stage on `doc`, within `seconds`, else `(False, "timeout")` with the detail on
    `doc`. A step that works on a record in parts gives each part what is left after the `spent` before it."""
    left = max(seconds - spent, 1e-6) if seconds and spent else seconds  # 0 would mean no bound
    try:
        with record_deadline(left):
            return fn(*args)
    except RecordTimeout:
        doc.metadata["drop_detail"] = f"over {seconds:g} s"
        return False, "timeout"


def _bounded(filter_fn):
    @functools.wraps(filter_fn)
    def filter(self, doc):
        return bounded(doc, self.record_timeout, filter_fn, self, doc)

    return filter
