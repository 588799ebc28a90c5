"""A real Ray cluster on loopback (a head node with no CPUs and one worker node with the machine's CPUs,
two `ray start` processes): `ccpipe run --executor ray` gives output byte-identical to the local executor's."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
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

RAY = Path(sys.executable).with_name("ray")
ENV = {"RAY_USAGE_STATS_ENABLED": "0"}


def _ports() -> list[str]:
    names = ("dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
             "metrics-export-port", "node-manager-port", "object-manager-port")
    return [f"--{name}={free_port()}" for name in names]


def _stop(proc: subprocess.Popen) -> None:
    """`ray start --block` stops its daemons on SIGTERM; its process group is ours alone (setsid)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)  # Ray's graceful stop takes ~20 s on 2 cores: not worth it in a test
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group is left
    except ProcessLookupError:
        pass
    proc.wait()


@pytest.fixture(scope="module")
def ray_cluster():
    if not RAY.exists():
        pytest.skip(f"Ray test needs ray[default] (`pip install -e '.[cluster]'`): {RAY} not found")
    temp = Path(tempfile.mkdtemp(prefix="ccray-", dir="/tmp"))  # short: unix socket paths max 107 bytes
    port = free_port()
    env = {**os.environ, **ENV}
    common = ["--block", "--disable-usage-stats", "--node-ip-address=127.0.0.1", "--object-store-memory=100000000"]
    procs = []
    try:
        procs.append(subprocess.Popen(
            [str(RAY), "start", "--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false",
             f"--temp-dir={temp}", f"--ray-client-server-port={free_port()}", *common, *_ports()],
            env=env, stdout=open(temp / "head.out", "w"), stderr=subprocess.STDOUT, start_new_session=True))
        address = f"127.0.0.1:{port}"

        def nodes_up(count: int) -> bool:
            out = subprocess.run([str(RAY), "status", f"--address={address}"], env=env, capture_output=True, text=True)
            return out.returncode == 0 and out.stdout.count(" node_") >= count

        deadline = time.monotonic() + 90
        while not nodes_up(1):
            assert time.monotonic() < deadline and procs[0].poll() is None, (temp / "head.out").read_text()[-3000:]
            time.sleep(1)
        procs.append(subprocess.Popen(
            [str(RAY), "start", f"--address={address}", f"--num-cpus={os.cpu_count() or 1}", *common, *_ports()],
            env=env, stdout=open(temp / "worker.out", "w"), stderr=subprocess.STDOUT, start_new_session=True))
        while not nodes_up(2):
            assert time.monotonic() < deadline and procs[1].poll() is None, (temp / "worker.out").read_text()[-3000:]
            time.sleep(1)
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(temp, ignore_errors=True)


def test_ray_cluster_output_matches_local(ray_cluster, corpus, gpt2_tiktoken, tmp_path_factory):
    reference = reference_run(corpus, gpt2_tiktoken, tmp_path_factory.mktemp("ref"))
    out = tmp_path_factory.mktemp("ray") / "run"
    args = run_args(bench_inputs(corpus), out, gpt2_tiktoken, "--executor", "ray", "--ray-address", ray_cluster,
                    "--mem-per-task-gb", "1")
    plan = ccpipe(*args, "--dry-run", env=ENV)
    assert plan.returncode == 0 and f"Ray cluster: {ray_cluster}" in plan.stdout, plan.stderr

    proc = ccpipe(*args, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert output_digests(out) == output_digests(reference)
    # datatrove's Ray executor ran the phases, with the requested resources per task
    executor = json.loads((out / "logs" / "base" / "executor.json").read_text())
    assert executor["cpus_per_task"] == 1 and executor["mem_per_cpu_gb"] == 1.0 and executor["world_size"] == 2


def test_ray_reuse_matches_local(ray_cluster, corpus, gpt2_tiktoken, tmp_path_factory):
    """`--reuse` on Ray: the tasks read the source run's store by the paths local tasks use."""
    base = tmp_path_factory.mktemp("ray-reuse")
    local = reuse_reference(corpus, gpt2_tiktoken, base)
    proc = ccpipe(*reuse_args(corpus, gpt2_tiktoken, base, base / "run", "--executor", "ray", "--ray-address",
                              ray_cluster, "--mem-per-task-gb", "1"), env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert output_digests(base / "run") == output_digests(local)
    assert "mode: replay" in (base / "run" / "config.resolved.yaml").read_text()
