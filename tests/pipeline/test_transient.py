"""Transient is not damage: WARCs read through flaky servers on loopback (a file server, and moto's S3 behind
a proxy), with a connection reset, an HTTP 503 or a body cut mid-record on about one request in five, give
exactly the output of a run over the same files on local disk. A file that fails every request fails its
task: the run exits 1 naming it, and once the server heals, rerunning the same command completes identically.

Reads go in 64 KiB blocks (fsspec's own settings, from the environment), so that each file takes dozens of
requests and the faults land mid-file; retries wait milliseconds (`input.retry` in the config).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.pipeline.clusterkit import bench_inputs, ccpipe, reference_run, run_args
from tests.pipeline.faults import FAULTS, FaultyFileServer, FaultyProxy
from tests.pipeline.test_s3 import s3_server  # noqa: F401  (fixture: moto's S3 server on loopback)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SMALL_BLOCKS = {"FSSPEC_HTTP_BLOCK_SIZE": "65536", "FSSPEC_S3_DEFAULT_BLOCK_SIZE": "65536",
                # botocore retries nothing itself: every fault reaches s3fs and ccpipe's own retries
                "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard"}
PATH_COLUMNS = {"parquet": "file_path", "ledger": "warc"}


def retry_config(tmp_path, attempts: int) -> str:
    path = tmp_path / "retry.yaml"
    path.write_text(f"input:\n  retry:\n    attempts: {attempts}\n    backoff_seconds: 0.01\n"
                    "    max_backoff_seconds: 0.1\n")
    return str(path)


def assert_same_as_local(out, reference, urls: dict[str, str]) -> None:
    """bin/ byte for byte; parquet and ledger equal row for row once the URLs are mapped to the local paths."""
    names = {p.relative_to(reference).as_posix() for sub in ("parquet", "bin", "ledger")
             for p in (reference / sub).rglob("*") if p.is_file()}
    got = {p.relative_to(out).as_posix() for sub in ("parquet", "bin", "ledger") for p in (out / sub).rglob("*")
           if p.is_file()}
    assert got == names
    for name in sorted(names):
        mine, theirs = out / name, reference / name
        if name.startswith("bin/"):
            assert mine.read_bytes() == theirs.read_bytes(), name
            continue
        a, b = pq.read_table(mine), pq.read_table(theirs)
        column = PATH_COLUMNS[name.split("/")[0]]
        index = a.schema.get_field_index(column)
        assert set(a.column(column).to_pylist()) <= set(urls), name  # it did read from the server
        local = pa.array([urls[v] for v in a.column(column).to_pylist()], a.schema.field(index).type)
        assert a.set_column(index, a.schema.field(index), local).equals(b), name


def test_flaky_http_server_gives_the_local_output(corpus, gpt2_tiktoken, tmp_path_factory):
    reference = reference_run(corpus, gpt2_tiktoken, tmp_path_factory.mktemp("ref"))
    tmp = tmp_path_factory.mktemp("flaky-http")
    with FaultyFileServer(corpus / "warc" / "bench", seed=3) as server:
        urls = {f"{server.url}/{path.rsplit('/', 1)[-1]}": path for path in bench_inputs(corpus)}
        proc = ccpipe(*run_args(list(urls), tmp / "run", gpt2_tiktoken, "--workers", "2",
                                "--config", retry_config(tmp, 8)), env=SMALL_BLOCKS)
        injected = dict(server.faults.injected)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert set(injected) == set(FAULTS) and sum(injected.values()) >= 6, injected  # resets, 503s and cut bodies
    assert_same_as_local(tmp / "run", reference, urls)


def test_flaky_s3_gives_the_local_output(s3_server, corpus, gpt2_tiktoken, tmp_path_factory, monkeypatch):  # noqa: F811
    import boto3

    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)
    reference = reference_run(corpus, gpt2_tiktoken, tmp_path_factory.mktemp("ref"))
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="flaky")
    urls = {}
    for path in bench_inputs(corpus):
        key = f"crawl/{path.rsplit('/', 1)[-1]}"
        s3.upload_file(path, "flaky", key)
        urls[f"s3://flaky/{key}"] = path
    tmp = tmp_path_factory.mktemp("flaky-s3")
    with FaultyProxy(s3_server["AWS_ENDPOINT_URL"], seed=4) as proxy:
        env = {**s3_server, **SMALL_BLOCKS, "AWS_ENDPOINT_URL": proxy.url}
        proc = ccpipe(*run_args(list(urls), tmp / "run", gpt2_tiktoken, "--workers", "2",
                                "--config", retry_config(tmp, 8)), env=env)
        injected = dict(proxy.faults.injected)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert set(injected) == set(FAULTS) and sum(injected.values()) >= 6, injected
    assert_same_as_local(tmp / "run", reference, urls)


def test_exhausted_retries_fail_the_task_and_a_rerun_completes(corpus, gpt2_tiktoken, tmp_path_factory):
    reference = reference_run(corpus, gpt2_tiktoken, tmp_path_factory.mktemp("ref"))
    tmp = tmp_path_factory.mktemp("down")
    with FaultyFileServer(corpus / "warc" / "bench", seed=5, rate=0.0) as server:
        urls = {f"{server.url}/{path.rsplit('/', 1)[-1]}": path for path in bench_inputs(corpus)}
        down = sorted(urls)[1]
        server.fail_all(down.rsplit("/", 1)[-1])
        args = run_args(list(urls), tmp / "run", gpt2_tiktoken, "--workers", "2", "--config", retry_config(tmp, 3))
        proc = ccpipe(*args, env=SMALL_BLOCKS)
        assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("ccpipe: ") and down in last and "task 1" in last and "503" in last, proc.stderr
        assert not (tmp / "run" / "summary.json").exists()  # nothing that looks like a finished run
        server.heal()
        proc = ccpipe(*args, env=SMALL_BLOCKS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_as_local(tmp / "run", reference, urls)
