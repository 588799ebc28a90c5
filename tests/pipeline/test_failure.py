"""A task process killed with SIGKILL in the middle of the base phase: the run stops with exit code 1,
`ccpipe status` names the dead task, and rerunning the same command redoes only the unfinished tasks and
gives output byte-identical to an uninterrupted run: no document lost or duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from tests.pipeline.clusterkit import ROOT, bench_inputs, ccpipe, output_digests, reference_run, run_args

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def _task_process(parent: psutil.Process, log: Path) -> psutil.Process | None:
    """The process running the task that writes `log` (a datatrove task log): of the descendants of `parent`
    holding it open, the topmost (its extraction child inherits the descriptor)."""
    holders = {}
    for child in parent.children(recursive=True):
        try:
            if any(f.path == str(log) for f in child.open_files()):
                holders[child.pid] = child
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    top = [p for p in holders.values() if p.ppid() not in holders]
    return top[0] if len(top) == 1 else None


def _stacks(pid: int) -> str:
    """py-spy dumps of a hung process tree (py-spy comes with ray[default]), for the failure message."""
    spy = Path(sys.executable).with_name("py-spy")
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    if not spy.exists():
        return " ".join(str(p.pid) for p in procs)
    return "\n".join(subprocess.run([str(spy), "dump", "--pid", str(p.pid)], capture_output=True, text=True).stdout
                     for p in procs)


def test_sigkill_mid_task_then_rerun_gives_identical_output(corpus, gpt2_tiktoken, tmp_path_factory):
    reference = reference_run(corpus, gpt2_tiktoken, tmp_path_factory.mktemp("ref"))
    out = tmp_path_factory.mktemp("killed") / "run"
    args = [sys.executable, "-m", "pipeline.cli", *run_args(bench_inputs(corpus), out, gpt2_tiktoken, "--workers", "2")]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group: nothing outlives a failed test
    log = out / "logs" / "base" / "logs" / "task_00001.log"
    marker = out / "logs" / "base" / "completions" / "00001"
    victim = None
    try:
        deadline = time.monotonic() + 180
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            # mid-task: it has written some of its outputs (ledger rows, kept documents), not its completion marker
            partial = [p for p in (out / "work").rglob("*00001*") if p.is_file()] if (out / "work").is_dir() else []
            if partial and not marker.exists():
                victim = _task_process(psutil.Process(proc.pid), log)
            time.sleep(0.02)
        assert victim is not None, "never caught base task 1 mid-way"
        os.kill(victim.pid, signal.SIGKILL)
        killed_before_done = not marker.exists()
        try:
            _, stderr = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            raise AssertionError("the run did not stop after its task process died:\n" + _stacks(proc.pid)) from None
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the run and every process it started
        except ProcessLookupError:
            pass
        proc.wait()
    assert killed_before_done
    assert proc.returncode == 1, stderr[-2000:]
    assert "task process died" in stderr and "rerunning the same command" in stderr, stderr[-2000:]
    assert not (out / "summary.json").exists()

    status = ccpipe("status", str(out))
    assert status.returncode == 1, status.stdout + status.stderr
    assert "failed: base task 1" in status.stdout and "task process died" in status.stdout, status.stdout

    again = ccpipe(*run_args(bench_inputs(corpus), out, gpt2_tiktoken, "--workers", "2"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert output_digests(out) == output_digests(reference)
    ids = pq.read_table(out / "parquet").column("id").to_pylist()
    assert len(ids) == len(set(ids)) == pq.read_table(reference / "parquet").num_rows
    assert ccpipe("status", str(out)).returncode == 0
