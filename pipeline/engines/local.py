"""The local engine: tasks in worker processes on this machine, with task logs kept in their files.

The workers live for the whole run (`worker_pool`, opened by `ccpipe run` around all its phases). Each phase
used to start its own, and every start re-imported trafilatura, spaCy and presidio and reloaded the models:
with the per-task reloads, ~5 s of a 26 s run on bench's English pages lay outside any stage (0.4 s now). A
worker runs any task of any phase; it ends its trafilatura child when it moves on to a phase without extraction.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import dill  # as datatrove: steps may hold what pickle cannot (bound-method adapters)
from datatrove.executor.local import LocalPipelineExecutor
from datatrove.utils.stats import PipelineStats
from loguru import logger

from stages.extractors.html import Extractor, close_sandboxes
from stages.utils import patches
from stages.utils.io import write_text_atomic
from stages.utils.lifetime import die_with
from stages.utils.stack import run_deep

DIED = "ERROR    | task process died (SIGKILL, or killed for memory): rerun the same command to redo this task"

# crawled pages are messy: these libraries log every page they cannot parse, which our ledger counts
NOISY_LOGGERS = ("trafilatura", "htmldate", "courlan", "justext", "warcio", "presidio-analyzer")



def quiet_console() -> None:
    """Only warnings on the console; datatrove's task logs still go to their files under DIR/logs.

    Called in the main process and again in each task, since worker processes do not inherit it; so it also
    applies ccpipe's patches of other libraries (`stages.utils.patches`, once per process) on every engine.
    """
    patches.apply()
    logger.remove()
    logger.add(sys.stderr, level="WARNING", format="{level}: {message}")
    for name in NOISY_LOGGERS:
        noisy = logging.getLogger(name)
        if noisy.level != logging.CRITICAL:  # setLevel clears every logger's cache: 480 times a run on bench
            noisy.setLevel(logging.CRITICAL)
    # jieba sets its logger to DEBUG with a stderr handler of its own when imported (in a task, after this):
    # "Building prefix dict ... Loading model cost 3.9 seconds." once per worker. A filter survives that.
    jieba = logging.getLogger("jieba")
    if _warnings_only not in jieba.filters:
        jieba.addFilter(_warnings_only)


def _warnings_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


class QuietLocalExecutor(LocalPipelineExecutor):
    """datatrove's local executor, with task logs kept in their files instead of on the console."""

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        quiet_console()
        try:
            # datatrove prints a task's log on the console only for local_rank 0
            return run_deep(super()._run_for_rank, rank, local_rank + 1, node_rank)
        finally:
            quiet_console()  # datatrove re-adds its console logger when a task ends


def _init_worker(command: int) -> None:
    # killed when the command ends, however it ends (kill -9, SIGTERM): no worker lives on under init
    # writing completion markers into a run that a rerun has taken over
    die_with(command)
    # a process group per worker, which the children it forks (the extraction sandbox) join: when a worker
    # dies, the pool terminates the others, and their children would otherwise live on as orphans
    os.setpgid(0, 0)
    patches.apply()
    # what the worker inherits (every module the run imported before the fork) lives as long as it does: out of
    # the collector's sight, and fewer young collections. The worker's full collections walked all of it: on
    # bench's English pages, 0.29 s of gen-2 collections in the worker (5 of them) came down to 0.02 s, its whole
    # collector time from ~0.40 s to ~0.12 s. Nothing a run writes depends on when garbage is collected.
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)  # Python's default is 700 allocations between young collections


def _kill_groups(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # the group is gone: the worker and its children exited


_PHASE: bytes | None = None  # in a worker: the pickled executor of the phase it runs


def _run_rank(pickled: bytes, rank: int):
    global _PHASE
    # fresh steps per task, as datatrove's executor: step stats would otherwise add up across tasks. Unpickled
    # again rather than copied: `copy.deepcopy` took 1.1 ms where this takes 0.4 (the PII phase's steps)
    executor = dill.loads(pickled)
    if _PHASE != pickled:  # the first task of a phase in this worker
        if not any(isinstance(step, Extractor) for step in executor.pipeline):
            close_sandboxes()
        _PHASE = pickled
    return executor._run_for_rank(rank)


class _Pool:
    """Worker processes and their process groups; `broken` once one died (the pool can take no more tasks)."""

    def __init__(self, workers: int, start_method: str):
        self.workers, self.start_method = workers, start_method
        self.executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(start_method),
                                            initializer=_init_worker, initargs=(os.getpid(),))
        self.pids: set[int] = set()
        self.broken = False

    def kill(self) -> None:
        _kill_groups(self.pids | set(self.executor._processes or {}))

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.kill()  # after a worker died: what is left of the others' process groups


_SHARED_POOL: _Pool | None = None  # inside `worker_pool()`


FORK_SAFE_THREADS = ("fsspecIO",)  # fsspec's event loop, idle between calls; fsspec resets it in a forked child


def unsafe_threads() -> list[str]:
    """The threads besides this one that make forking unsafe (a lock one holds would stay held in the child).

    fsspec's IO loop does not count: datatrove's output folders are fsspec file systems, so every run has it
    before its pool starts, it holds no lock while no fsspec call is waiting on it (this thread would be), and
    fsspec registers an at-fork hook that gives the child a loop of its own. Counting it sent every CLI run to
    forkserver: each worker imported trafilatura, spaCy and presidio again (~0.7 s of CPU per worker).
    """
    return [t.name for t in threading.enumerate()
            if t is not threading.current_thread() and t.name not in FORK_SAFE_THREADS]


@contextlib.contextmanager
def worker_pool(workers: int):
    """Around all the phases of a run: their tasks run in the same `workers` processes, started once.

    On Linux, and when no other thread runs here yet but fsspec's (the CLI, before its progress bars), they are
    forked from this process, so they start with every module the steps need already imported: 0.7 s less
    than a forkserver worker importing them. Otherwise (a caller with threads, another OS), and for a pool started
    later (after a worker died), datatrove's forkserver, which is safe with threads running.
    """
    global _SHARED_POOL
    forkable = sys.platform == "linux" and not unsafe_threads()
    _SHARED_POOL = _Pool(workers, "fork" if forkable else "forkserver")
    if forkable:  # now, before the progress threads: with fork, all workers start at the first submission
        _SHARED_POOL.executor.submit(os.getpid).result()
        _SHARED_POOL.pids |= set(_SHARED_POOL.executor._processes or {})
    try:
        yield
    finally:
        pool, _SHARED_POOL = _SHARED_POOL, None
        pool.close()


class LocalExecutor(QuietLocalExecutor):
    """datatrove's local executor on `concurrent.futures`, whose pool notices a task process that dies
    (`multiprocess.Pool`, which datatrove uses, waits forever for its result).

    A failed or killed task does not stop the others already running; the run then fails naming them, and
    the same command redoes only the tasks that have no completion marker.
    """

    def run(self):
        ranks = self.get_incomplete_ranks(range(self.tasks))
        if not ranks:
            return PipelineStats()
        self.save_executor_as_json()
        failed: dict[int, str] = {}
        stats = []
        pool, own = self._pool(len(ranks))
        pickled = dill.dumps(self)
        futures = {}
        try:
            futures = {pool.executor.submit(_run_rank, pickled, rank): rank for rank in ranks}
            pool.pids |= set(pool.executor._processes or {})  # workers start with the submissions
            wait(futures)
        except BaseException:  # Ctrl-C: workers have their own process groups, so stop them here
            pool.kill()
            raise
        finally:
            pool.broken = any(f.done() and isinstance(f.exception(), BrokenProcessPool) for f in futures)
            if own or pool.broken:
                pool.close()
        for future, rank in futures.items():
            exc = future.exception()
            if exc is None:
                stats.append(future.result())
            else:
                failed[rank] = type(exc).__name__
        died = [rank for rank, kind in failed.items() if kind == "BrokenProcessPool"]
        for rank in failed:
            logfile = Path(self.logging_dir.resolve_paths(f"logs/task_{rank:05d}.log"))
            if rank in died and logfile.exists():  # it had started: say so where `ccpipe status` looks
                with open(logfile, "a") as f:
                    f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} | {DIED}\n")
            elif rank not in died and not logfile.exists():  # it failed before its log began: the cause there
                exc = next(f.exception() for f, r in futures.items() if r == rank)
                write_text_atomic(logfile, f"{time.strftime('%Y-%m-%d %H:%M:%S')} | ERROR    | the task failed before "
                                   f"it started:\n{''.join(traceback.format_exception(exc))}")
        if failed:
            what = "a task process died" if died else "tasks failed"
            raise RuntimeError(f"{what}: ranks {sorted(failed)} did not complete")
        total = sum(stats, start=PipelineStats())
        write_text_atomic(self.logging_dir.resolve_paths("stats.json"), total.to_json())  # the summary reads it
        return total

    def _pool(self, tasks: int) -> tuple[_Pool, bool]:
        """The run's shared pool (restarted after a worker died), or a pool of this phase's own outside
        `worker_pool()`; and whether it is the phase's own, to close when it is done."""
        global _SHARED_POOL
        if _SHARED_POOL is None:
            return _Pool(min(self.workers, tasks), self.start_method), True
        if _SHARED_POOL.broken or _SHARED_POOL.workers < self.workers:
            _SHARED_POOL.close()
            _SHARED_POOL = _Pool(max(self.workers, _SHARED_POOL.workers), self.start_method)
        return _SHARED_POOL, False
