"""A real one-node Slurm cluster (Debian's slurm-wlm 22.05 and munge) on loopback: `ccpipe run --executor
slurm` submits the phases as job arrays with dependencies and a finalize job; the output is byte-identical
to the local executor's.

Everything lives in a temporary directory: munged with its own key and socket, slurm.conf (named by
SLURM_CONF for the daemons, the client commands and the jobs), state and logs. Needs root (slurmd runs
jobs as their user) and the packages (`make system-deps` installs them); skips saying why otherwise.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.pipeline.clusterkit import (
    bench_inputs,
    ccpipe,
    free_port,
    output_digests,
    reference_run,
    reuse_args,
    reuse_reference,
    run_args,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PROGRAMS = ("munged", "munge", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo")

SLURM_CONF = """\
ClusterName=ccpipe-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={d}/munge.sock
CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
# no cgroups in containers: Linux process tracking, no task plugin, no cgroup.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=600
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _wait(condition, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def slurm_cluster():
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if missing:
        pytest.skip(f"Slurm test needs Debian's slurm-wlm and munge packages ({', '.join(missing)} not found); "
                    "`make system-deps` installs them when run as root")
    if os.geteuid() != 0:
        pytest.skip("Slurm test needs root: slurmd runs jobs as their user and munged must own its key")
    d = Path(tempfile.mkdtemp(prefix="ccslurm-", dir="/tmp"))  # short: unix socket paths max 107 bytes
    (d / "state").mkdir()
    (d / "spool").mkdir()
    key = d / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    host = socket.gethostname()
    conf = d / "slurm.conf"
    conf.write_text(SLURM_CONF.format(host=host, d=d, ctld_port=free_port(), slurmd_port=free_port(),
                                      cpus=os.cpu_count() or 1))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen(
            ["munged", "--foreground", "--force", f"--key-file={key}", f"--socket={d}/munge.sock",
             f"--pid-file={d}/munged.pid", f"--seed-file={d}/munge.seed", f"--log-file={d}/munged.log"],
            stdout=subprocess.DEVNULL, stderr=open(d / "munged.err", "w")))
        _wait(lambda: (d / "munge.sock").exists(), 20, "munged's socket")
        procs.append(subprocess.Popen(["slurmctld", "-D", "-i", "-f", str(conf)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=open(d / "slurmctld.err", "w")))
        procs.append(subprocess.Popen(["slurmd", "-D", "-f", str(conf)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=open(d / "slurmd.err", "w")))

        def node_idle() -> bool:
            out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True)
            return out.returncode == 0 and out.stdout.strip() == "idle"

        try:
            _wait(node_idle, 60, "the Slurm node to be idle")
        except AssertionError:
            logs = "\n".join(p.read_text()[-1500:] for p in sorted(d.glob("*.log")) + sorted(d.glob("*.err")))
            raise AssertionError(f"Slurm did not come up:\n{logs}") from None
        yield {"SLURM_CONF": str(conf)}
    finally:
        subprocess.run(["scancel", "--full", "-u", "root"], env=env, capture_output=True)
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def _job_times(job: str, env: dict) -> list[tuple[str, str]]:
    """(StartTime, EndTime) of each task of a job (an array: every element)."""
    out = subprocess.run(["scontrol", "-o", "show", "job", job], env=env, capture_output=True, text=True, check=True)
    times = []
    for line in out.stdout.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        assert fields["JobState"] == "COMPLETED", line
        times.append((fields["StartTime"], fields["EndTime"]))
    return times


def test_slurm_job_arrays_with_dependencies_match_local(slurm_cluster, corpus, gpt2_tiktoken, tmp_path_factory):
    reference = reference_run(corpus, gpt2_tiktoken, tmp_path_factory.mktemp("ref"))
    out = tmp_path_factory.mktemp("slurm") / "run"
    env = {**os.environ, **slurm_cluster}
    args = run_args(bench_inputs(corpus), out, gpt2_tiktoken, "--executor", "slurm", "--partition", "debug",
                    "--mem-per-task-gb", "1", "--time", "00:20:00")

    plan = ccpipe(*args, "--dry-run", env=env)
    assert plan.returncode == 0, plan.stderr
    assert "#SBATCH --array=0-1" in plan.stdout and "--dependency=afterok:<base job>" in plan.stdout
    assert not out.exists()  # a dry run writes nothing

    submitted = ccpipe(*args, env=env)
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    assert "submitted to Slurm" in submitted.stdout
    jobs = dict(pair.split() for pair in submitted.stdout.split(":", 1)[1].splitlines()[0].split(", "))
    # the finalize phases are job arrays too (pipeline/finalize/steps.py); the last job writes summary.json
    assert list(jobs) == ["base", "dedup_buckets", "dedup_cluster", "final", "finalize_index", "finalize_parts",
                          "finalize"]

    def finished() -> bool:
        queued = subprocess.run(["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True).stdout
        return not queued.strip()

    _wait(finished, 420, "the run's jobs to leave the queue", interval=2)
    status = ccpipe("status", str(out), env=env)
    assert status.returncode == 0 and "done: summary.json written" in status.stdout, \
        status.stdout + (out / "logs" / "finalize").joinpath(f"slurm-{jobs['finalize']}.out").read_text()[-3000:]
    assert output_digests(out) == output_digests(reference)

    # the dependencies held: each phase's tasks all started after the previous phase's all ended
    previous_end = ""
    for phase in jobs:
        times = _job_times(jobs[phase], env)
        assert len(times) == {"base": 2, "dedup_buckets": 14, "dedup_cluster": 1, "final": 2, "finalize_index": 1,
                              "finalize_parts": 2, "finalize": 1}[phase]
        assert min(start for start, _ in times) >= previous_end, phase
        previous_end = max(end for _, end in times)

    # the same command again: every task is complete, so only the finalize job is submitted
    again = ccpipe(*args, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    resubmitted = again.stdout.splitlines()[0].split(":", 1)[1].split()
    assert resubmitted[0] == "finalize" and len(resubmitted) == 2, again.stdout
    _wait(finished, 120, "the second finalize job", interval=1)
    assert output_digests(out) == output_digests(reference)


def test_slurm_reuse_matches_local(slurm_cluster, corpus, gpt2_tiktoken, tmp_path_factory):
    """`--reuse` submitted to Slurm: the array tasks read the source run's store by the run directory's paths."""
    base = tmp_path_factory.mktemp("slurm-reuse")
    env = {**os.environ, **slurm_cluster}
    local = reuse_reference(corpus, gpt2_tiktoken, base)
    out = base / "run"
    submitted = ccpipe(*reuse_args(corpus, gpt2_tiktoken, base, out, "--executor", "slurm", "--partition", "debug",
                                   "--mem-per-task-gb", "1", "--time", "00:20:00"), env=env)
    assert submitted.returncode == 0, submitted.stderr[-3000:]

    def finished() -> bool:
        return not subprocess.run(["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True).stdout.strip()

    _wait(finished, 420, "the reuse run's jobs to leave the queue", interval=2)
    assert (out / "summary.json").exists(), ccpipe("status", str(out), env=env).stdout
    assert output_digests(out) == output_digests(local)
    assert "mode: replay" in (out / "config.resolved.yaml").read_text()
