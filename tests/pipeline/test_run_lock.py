"""One writer per run directory, and nothing of a run outliving its command.

Two `ccpipe run` into the same `--output` used to interleave their tasks into a run whose ledger never added
up; `kill -9` of the command left its workers alive under init, writing markers; `audit` printed the partial
funnel of an unfinished run with exit 0. Here a real run of the shipped sample is met by a second run, an
audit and a release build while it works, then killed with SIGKILL, then rerun."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pipeline.core.lock import RunLocked, live_writer, lock_path, run_lock

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "pipeline" / "sample"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _ccpipe(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)


def _finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _living(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:  # gone meanwhile
        return []


def _holder_script(root: Path) -> str:
    return (f"import sys, time; sys.path.insert(0, {str(ROOT)!r}); from pipeline.core.lock import run_lock\n"
            f"with run_lock({str(root)!r}):\n    print('held', flush=True); time.sleep(600)")


def test_lock_refuses_a_second_writer_and_is_taken_over_after_a_kill(tmp_path):
    root = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _holder_script(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked, match=f"host {socket.gethostname()} pid {holder.pid}"):
            with run_lock(root):
                pass
        assert f"host {socket.gethostname()} pid {holder.pid}" in live_writer(root)
    finally:
        holder.kill()
        holder.wait()
    heard = []
    with run_lock(root, announce=heard.append):  # the kernel dropped the dead holder's lock; its file remains
        assert f"pid {os.getpid()}" in live_writer(root)
    assert len(heard) == 1 and "taking over" in heard[0] and f"pid {holder.pid}" in heard[0]
    assert not lock_path(root).exists() and live_writer(root) is None  # released cleanly: removed
    fresh = tmp_path / "never"
    with pytest.raises(RuntimeError), run_lock(fresh):
        raise RuntimeError("refused before work")
    assert not fresh.exists()  # a run refused before work leaves nothing behind


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_concurrent_run_refused_kill_9_leaves_no_process_and_unfinished_audit_refused(tmp_path):
    out = tmp_path / "run"
    args = ("run", "--input", SAMPLE, "--output", out, "--no-progress", "--workers", "2")
    first = _ccpipe(*args)
    run, tree = psutil.Process(first.pid), []
    try:
        # mid-run: its workers up, and under them their extraction children
        deadline = time.monotonic() + 180
        while not any("stages.extractors.child" in " ".join(_cmdline(p)) for p in run.children(recursive=True)):
            assert first.poll() is None and time.monotonic() < deadline, "never saw the extraction children"
            time.sleep(0.02)
        tree = [run, *run.children(recursive=True)]
        for process in tree:  # frozen while the others try, so that it is surely still working
            process.suspend()
        # a second run, an audit and a release build of the same directory: all refused at once
        second, audit, release = (_ccpipe(*args), _ccpipe("audit", "summary", out),
                                  _ccpipe("release", "build", out, "--name", "s", "--version", "1.0.0",
                                          "--output", tmp_path / "release"))
        code, _, err = _finish(second)
        assert code == 2, err
        assert err.strip().count("\n") == 0 and "another ccpipe run is writing" in err, err
        assert f"host {socket.gethostname()} pid {first.pid}" in err, err
        for proc in (audit, release):
            code, _, err = _finish(proc)
            assert code == 2 and "still being written" in err and f"pid {first.pid}" in err, err
        for process in reversed(tree):
            process.resume()
        os.kill(first.pid, signal.SIGKILL)  # the command alone
        first.wait()
        time.sleep(2)
        assert _living([p.pid for p in tree[1:]]) == [], [_cmdline(psutil.Process(p)) for p in _living([p.pid for p in tree])]
    finally:
        for pid in [first.pid, *_living([p.pid for p in tree])]:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        first.wait()

    code, _, err = _finish(_ccpipe(*args))  # the killed run's lock is taken over, with a line saying so
    assert code == 0, err
    assert "taking over the lock of a run that ended without releasing it" in err and f"pid {first.pid}" in err, err
    assert json.loads((out / "summary.json").read_text())["conservation_ok"]

    # a run stopped in its last phase: 1 of its 2 ledger parts written, no summary.json
    (out / "summary.json").unlink()
    (out / "ledger" / "part-00001.parquet").unlink()
    for command in (("summary",), ("sample", "--stage", "kept"), ("report", "-o", tmp_path / "r.html")):
        code, stdout, err = _finish(_ccpipe("audit", command[0], out, *command[1:]))
        assert code == 2 and "the run is unfinished (1 of 2 ledger parts" in err and not stdout, (command, err)
        assert err.strip().count("\n") == 0, err
    code, stdout, err = _finish(_ccpipe("audit", "summary", out, "--partial"))
    assert code == 0, err
    assert stdout.startswith("PARTIAL FIGURES: ") and "1 of 2 ledger parts" in stdout.splitlines()[0], stdout
