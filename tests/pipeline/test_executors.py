"""Executor choice without an engine: config and flags, --dry-run's sbatch scripts and Ray plan, the refused
task-count change, `ccpipe status` on a run directory in every state."""

from __future__ import annotations

import argparse
import threading

import pytest
import yaml

from pipeline.cli import build_parser
from pipeline.cli.run import _engine_overrides
from pipeline.core.errors import RunError
from pipeline.engines import local
from pipeline.plan.config import ConfigError, config_from_dict, load_config
from pipeline.run import plan_pipeline, run_pipeline, start_run
from pipeline.status import format_status, run_status
from tests.fixtures import html_page, write_warc


@pytest.fixture()
def warcs(tmp_path) -> list[str]:
    paths = []
    for i in range(3):
        page = html_page(f"Page {i}", "Some words about the weather and the garden in spring. " * 5)
        paths.append(str(write_warc(tmp_path / f"in-{i}.warc.gz", [{"url": f"https://example.com/{i}", "body": page}])))
    return paths


def _config(gpt2_tiktoken, **run) -> object:
    return config_from_dict({"tokenizer": {"name": str(gpt2_tiktoken)}, "run": run})


def test_executor_sections_are_validated():
    c = config_from_dict({"run": {"executor": "slurm", "slurm": {"partition": "cpu", "sbatch_args": ["--account=cc"]},
                                  "ray": {"address": "auto", "cpus_per_task": 2}}})
    assert c.run.executor == "slurm" and c.run.slurm.partition == "cpu" and c.run.slurm.sbatch_args == ("--account=cc",)
    assert c.run.ray.cpus_per_task == 2 and c.run.slurm.time == "04:00:00"
    with pytest.raises(ConfigError, match="unknown key 'run.slurm.queue'"):
        config_from_dict({"run": {"slurm": {"queue": "cpu"}}})
    with pytest.raises(ConfigError, match="run.executor: expected one of 'local', 'slurm', 'ray'"):
        config_from_dict({"run": {"executor": "kubernetes"}})
    with pytest.raises(ConfigError, match="run.ray.mem_per_task_gb"):
        config_from_dict({"run": {"ray": {"mem_per_task_gb": 0}}})


def test_flags_override_config_keys_one_by_one(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"run": {"executor": "slurm", "slurm": {"partition": "cpu", "time": "01:00:00"}}}))
    args = build_parser().parse_args(["run", "--input", "x", "--output", "y", "--time", "02:00:00",
                                      "--mem-per-task-gb", "6", "--sbatch-arg=--account=cc", "--random-start", "60"])
    overrides: dict = {}
    _engine_overrides(args, overrides)
    c = load_config(path, overrides)
    assert (c.run.executor, c.run.slurm.partition, c.run.slurm.time) == ("slurm", "cpu", "02:00:00")
    assert c.run.slurm.mem_per_task_gb == 6 and c.run.ray.mem_per_task_gb == 6
    assert c.run.slurm.sbatch_args == ("--account=cc",) and c.run.random_start_seconds == 60
    none: dict = {}
    _engine_overrides(build_parser().parse_args(["run", "--input", "x", "--output", "y"]), none)
    assert none == {}


def test_slurm_dry_run_prints_dependent_arrays_and_writes_nothing(warcs, gpt2_tiktoken, tmp_path):
    out = tmp_path / "run"
    config = _config(gpt2_tiktoken, executor="slurm", slurm={
        "partition": "cpu", "array_throttle": 2, "sbatch_args": ["--account=cc"], "mem_per_task_gb": 2.5,
        "venv": "/opt/ccpipe/.venv"})
    plan = plan_pipeline(config, warcs, out)
    assert not out.exists()
    scripts = plan.split("#!/bin/bash")[1:]
    assert len(scripts) == 7  # base, dedup buckets, dedup cluster, final, finalize index and parts, summary
    base, buckets, cluster, final, index, parts, finalize = scripts
    assert "#SBATCH --array=0-2%2" in base and "#SBATCH --array=0-13%2" in buckets and "#SBATCH --array=0-0%2" in cluster
    for script in (base, final):
        assert "#SBATCH --partition=cpu" in script and "#SBATCH --account=cc" in script
        assert "#SBATCH --mem-per-cpu=2560M" in script and "source /opt/ccpipe/.venv/bin/activate" in script
        assert "launch_pickled_pipeline " + str(out / "logs") in script
    for script in (index, parts):  # run.slurm.finalize_cpus / finalize_mem_gb (defaults 2, 4 GB)
        assert "#SBATCH --cpus-per-task=2" in script and "#SBATCH --mem-per-cpu=2048M" in script
    assert "#SBATCH --array=0-0%2" in index and "#SBATCH --array=0-2%2" in parts
    assert "2 CPU 4 GB per task" in plan
    assert plan.count("--dependency=afterok:") == 6
    assert f"ccpipe finalize {out}" in finalize and "--array" not in finalize

    container = _config(gpt2_tiktoken, executor="slurm", slurm={"container": "ghcr.io/x/ccpipe:1"})
    plan = plan_pipeline(container, warcs, out)
    assert "srun --container-image=ghcr.io/x/ccpipe:1" in plan and "activate" not in plan


def test_ray_and_local_dry_runs_list_the_phases(warcs, gpt2_tiktoken, tmp_path):
    ray = plan_pipeline(_config(gpt2_tiktoken, executor="ray", ray={"address": "10.0.0.1:6379", "cpus_per_task": 2},
                                random_start_seconds=30), warcs, tmp_path / "run")
    assert "Ray cluster: 10.0.0.1:6379; per task 2 CPU" in ray and "sleeps 0-30 s" in ray
    assert "phase base" in ray and "3/3 tasks to run" in ray and "14/14" in ray
    local = plan_pipeline(_config(gpt2_tiktoken, workers=2), warcs, "s3://bucket/run")
    assert "2 local process(es)" in local and "published to s3://bucket/run" in local
    assert not (tmp_path / "run").exists()


def test_changing_the_task_count_is_refused_with_the_reason(warcs, gpt2_tiktoken, tmp_path):
    out = tmp_path / "run"
    start_run(_config(gpt2_tiktoken), warcs, out)  # creates the run directory only
    start_run(_config(gpt2_tiktoken, workers=3, executor="ray"), warcs, out)  # engine settings may change
    with pytest.raises(RunError, match=r"the task count changed \(3 -> 2\).*lose or repeat documents"):
        start_run(_config(gpt2_tiktoken, tasks=2), warcs, out)
    with pytest.raises(RunError, match=r"another config \(input.max_records\)"):
        start_run(config_from_dict({"tokenizer": {"name": str(gpt2_tiktoken)}, "input": {"max_records": 5}}), warcs, out)


def test_status_counts_done_running_failed_and_shows_the_error(warcs, gpt2_tiktoken, tmp_path, capsys):
    out = tmp_path / "run"
    start_run(_config(gpt2_tiktoken), warcs, out)
    logs = out / "logs" / "base"
    (logs / "completions").mkdir(parents=True)
    (logs / "logs").mkdir()
    (logs / "completions" / "00000").touch()
    (logs / "logs" / "task_00000.log").write_text("2026-01-01 | INFO     | done\n")
    (logs / "logs" / "task_00001.log").write_text("2026-01-01 | INFO     | Launching pipeline for rank=1\n")
    (logs / "logs" / "task_00002.log").write_text(
        "2026-01-01 | INFO     | Launching pipeline for rank=2\n2026-01-01 | ERROR    | boom\nTraceback:\n"
        "  File x.py, line 1\n  File y.py, line 2\n  File z.py, line 3\nMemoryError: out of memory\n")
    phases = {p.name: p for p in run_status(out)}
    assert list(phases) == ["base", "dedup_buckets", "dedup_cluster", "final", "finalize_index", "finalize_parts"]
    base = phases["base"]
    assert (base.done, base.running, list(base.failed), base.pending) == ([0], [1], [2], 0)
    assert base.failed[2][0].endswith("| ERROR    | boom") and base.failed[2][-1] == "MemoryError: out of memory"
    assert phases["dedup_buckets"].tasks == 14 and phases["dedup_buckets"].pending == 14
    text = format_status(out, list(phases.values()))
    assert "failed: base task 2" in text and "MemoryError: out of memory" in text and "not yet" in text
    from pipeline.cli.run import cmd_status

    assert cmd_status(argparse.Namespace(run=str(out), work_dir=None)) == 1
    assert "base" in capsys.readouterr().out


def test_workers_are_forked_once_or_come_from_forkserver_when_threads_run(warcs, gpt2_tiktoken, tmp_path, monkeypatch):
    """The local engine's workers serve every phase; forked from the caller only while no other thread runs."""
    pools, threads = [], []
    init = local._Pool.__init__
    monkeypatch.setattr(local._Pool, "__init__", lambda self, workers, method: (
        pools.append(method), threads.append({t.name for t in threading.enumerate()}), init(self, workers, method))[2])
    outputs = []
    for with_thread in (False, True):
        stop = threading.Event()
        thread = threading.Thread(target=stop.wait) if with_thread else None
        if thread:
            thread.start()
        try:
            summary = run_pipeline(_config(gpt2_tiktoken, workers=2), warcs, tmp_path / f"run-{with_thread}")
        finally:
            stop.set()
            if thread:
                thread.join()
        assert summary["records_total"] == 3 and summary["conservation_ok"]
        outputs.append(sorted((p.relative_to(tmp_path / f"run-{with_thread}").as_posix(), p.read_bytes())
                              for d in ("parquet", "bin", "ledger")
                              for p in (tmp_path / f"run-{with_thread}" / d).rglob("*") if p.is_file()))
    # one pool for all seven phases of each run; a thread running in the caller means forkserver
    assert pools[-1] == "forkserver" and len(pools) == 2
    # datatrove's output folders start fsspec's IO loop before the pool: it does not stop the fork
    assert "fsspecIO" in threads[0]
    assert pools[0] == ("fork" if threads[0] <= {"MainThread", "fsspecIO"} else "forkserver")
    assert outputs[0] == outputs[1]
