"""The local engine: one process per task on this machine, with task logs kept in their files."""

from __future__ import annotations

import copy
import logging
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, wait
from pathlib import Path

import dill  # as datatrove: steps may hold what pickle cannot (bound-method adapters)
from datatrove.executor.local import LocalPipelineExecutor
from datatrove.utils.stats import PipelineStats
from loguru import logger

DIED = "ERROR    | task process died (SIGKILL, or killed for memory): rerun the same command to redo this task"

# crawled pages are messy: these libraries log every page they cannot parse, which our ledger counts
NOISY_LOGGERS = ("trafilatura", "htmldate", "courlan", "justext", "warcio", "presidio-analyzer")


def quiet_console() -> None:
    """Only warnings on the console; datatrove's task logs still go to their files under DIR/logs.

    Called in the main process and again in each task, since worker processes do not inherit it.
    """
    logger.remove()
    logger.add(sys.stderr, level="WARNING", format="{level}: {message}")
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


class QuietLocalExecutor(LocalPipelineExecutor):
    """datatrove's local executor, with task logs kept in their files instead of on the console."""

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        quiet_console()
        try:
            # datatrove prints a task's log on the console only for local_rank 0
            return super()._run_for_rank(rank, local_rank + 1, node_rank)
        finally:
            quiet_console()  # datatrove re-adds its console logger when a task ends


def _init_worker(pickled: bytes) -> None:
    # a process group per worker, which the children it forks (the extraction sandbox) join: when a worker
    # dies, the pool terminates the others, and their children would otherwise live on as orphans
    os.setpgid(0, 0)
    global _WORKER_EXECUTOR
    _WORKER_EXECUTOR = dill.loads(pickled)


def _kill_groups(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # the group is gone: the worker and its children exited


def _run_rank(rank: int):
    # fresh steps per task, as datatrove's executor: step stats would otherwise add up across tasks
    return copy.deepcopy(_WORKER_EXECUTOR)._run_for_rank(rank)


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
        context = multiprocessing.get_context(self.start_method)
        pool = ProcessPoolExecutor(min(self.workers, len(ranks)), mp_context=context,
                                   initializer=_init_worker, initargs=(dill.dumps(self),))
        workers: set[int] = set()
        try:
            futures = {pool.submit(_run_rank, rank): rank for rank in ranks}
            workers = set(pool._processes or {})  # workers start with the submissions
            wait(futures)
        except BaseException:  # Ctrl-C: workers have their own process groups, so stop them here
            _kill_groups(workers | set(pool._processes or {}))
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            _kill_groups(workers)  # after a worker died: what is left of the others' process groups
        for future, rank in futures.items():
            exc = future.exception()
            if exc is None:
                stats.append(future.result())
            else:
                failed[rank] = type(exc).__name__
        died = [rank for rank, kind in failed.items() if kind == "BrokenProcessPool"]
        for rank in died:
            logfile = Path(self.logging_dir.resolve_paths(f"logs/task_{rank:05d}.log"))
            if logfile.exists():  # it had started: say so where `ccpipe status` looks
                with open(logfile, "a") as f:
                    f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} | {DIED}\n")
        if failed:
            what = "a task process died" if died else "tasks failed"
            raise RuntimeError(f"{what}: ranks {sorted(failed)} did not complete")
        total = sum(stats, start=PipelineStats())
        with self.logging_dir.open("stats.json", "wt") as f:
            total.save_to_disk(f)
        return total
