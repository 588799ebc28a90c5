"""A real S3 API on loopback (moto in server mode, reached over HTTP by s3fs/boto3 as any S3 endpoint): a run
reads its WARCs from a bucket and publishes its outputs to the bucket, identical to a local-disk run.

The `.bin` shards must be byte-identical. Parquet and ledger rows name their input file (`file_path`,
`warc`): s3:// URLs here, local paths there; with that one column mapped back they must be equal. The
published ledger is the public one (no PII values, no unscrubbed excerpts): no planted PII value of
`warc/bench/truth.jsonl` is in any published object, while the full ledger kept in the work dir holds them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.core.layout import RunLayout
from pipeline.finalize.public import input_root, public_table, read_resolved, relative_warc
from pipeline.plan.inputs import InputError, expand_inputs
from tests.pipeline.clusterkit import BENCH_FILES, bench_inputs, ccpipe, free_port, reference_run, run_args

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

BUCKET = "ccpipe-test"
PATH_COLUMNS = {"parquet": "file_path", "ledger": "warc"}


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    server = Path(sys.executable).with_name("moto_server")
    if not server.exists():
        pytest.skip(f"S3 test needs moto[server] (test extra): {server} not found")
    pytest.importorskip("s3fs", reason="S3 test needs s3fs (`pip install -e '.[remote]'`)")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    proc = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=open(log, "w"),
                            stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, log.read_text()[-2000:]
                time.sleep(0.2)
        yield {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _local_view(table, column: str, mapping: dict[str, str]):
    """`table` with the s3:// URLs of `column` replaced by the local paths they were uploaded from."""
    import pyarrow as pa

    index = table.schema.get_field_index(column)
    values = [mapping.get(v, v) for v in table.column(column).to_pylist()]
    return table.set_column(index, table.schema.field(index), pa.array(values, table.schema.field(index).type))


def test_s3_input_and_output_match_local_disk(s3_server, corpus, gpt2_tiktoken, tmp_path_factory, monkeypatch):
    import boto3

    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)
    reference = reference_run(corpus, gpt2_tiktoken, tmp_path_factory.mktemp("ref"))
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    urls = {}
    for path in bench_inputs(corpus):
        key = f"crawl/{Path(path).name}"
        s3.upload_file(path, BUCKET, key)
        urls[f"s3://{BUCKET}/{key}"] = path
    assert len(urls) == len(BENCH_FILES)
    # a prefix or a glob names every WARC under it, sorted
    assert expand_inputs([f"s3://{BUCKET}/crawl/"]) == sorted(urls)
    assert expand_inputs([f"s3://{BUCKET}/cr*/*.warc.gz"]) == sorted(urls)
    with pytest.raises(InputError, match="no .warc.gz, .warc or .wet.gz file"):
        expand_inputs([f"s3://{BUCKET}/nothing-here/"])

    cache = tmp_path_factory.mktemp("cache")
    env = {**s3_server, "CCPIPE_CACHE": str(cache)}
    out_url = f"s3://{BUCKET}/runs/bench"
    proc = ccpipe(*run_args(list(urls), out_url, gpt2_tiktoken, "--workers", "2", "--random-start", "1"), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the work dir defaults to $CCPIPE_CACHE/runs/<url>; status finds it from the URL
    assert (cache / "runs" / "s3" / BUCKET / "runs" / "bench" / "logs").is_dir()
    status = ccpipe("status", out_url, env=env)
    assert status.returncode == 0 and "done: summary.json written" in status.stdout, status.stdout + status.stderr

    got = tmp_path_factory.mktemp("published")
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/bench/")["Contents"]
    for obj in listing:
        dest = got / obj["Key"].removeprefix("runs/bench/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(BUCKET, obj["Key"], str(dest))
    names = {p.relative_to(got).as_posix() for p in got.rglob("*") if p.is_file()}
    assert {"summary.json", "config.resolved.yaml"} <= names and not any(n.startswith(("work/", "logs/")) for n in names)

    expected = {p.relative_to(reference).as_posix() for sub in ("parquet", "bin", "ledger")
                for p in (reference / sub).rglob("*") if p.is_file()}
    assert {n for n in names if n.split("/")[0] in ("parquet", "bin", "ledger")} == expected
    for name in sorted(expected):
        mine, theirs = got / name, reference / name
        if name.startswith("bin/"):
            assert mine.read_bytes() == theirs.read_bytes(), name
            continue
        column = PATH_COLUMNS[name.split("/")[0]]
        a, b, mapping = pq.read_table(mine), pq.read_table(theirs), urls
        if name.startswith("ledger/"):  # published: the public ledger, local paths relative to the input root
            resolved = read_resolved(RunLayout(reference))
            b = public_table(b, resolved)[0]
            mapping = {url: relative_warc(path, input_root(resolved["inputs"])) for url, path in urls.items()}
        assert set(a.column(column).to_pylist()) <= set(urls), name  # it did read from the bucket
        assert _local_view(a, column, mapping).equals(b), name
        assert pq.read_metadata(mine).num_rows == pq.read_metadata(theirs).num_rows

    planted = {p["value"] for line in (corpus / "warc" / "bench" / "truth.jsonl").read_text().splitlines()
               for p in json.loads(line).get("pii", [])}
    work = cache / "runs" / "s3" / BUCKET / "runs" / "bench"
    # the values the PII stage found, from the full ledger kept in the work dir: the check must have some
    found = {span[3] for part in (work / "ledger").glob("*.parquet")
             for spans in pq.read_table(part).column("pii_spans").to_pylist() if spans
             for span in json.loads(spans) if len(span) > 3}
    assert found, "the full ledger in the work dir should hold PII values (else this check proves nothing)"
    secrets = planted | found
    leaked = {name: hits for name in sorted(names) if (hits := [v for v in secrets if v in _as_text(got / name)])}
    assert not leaked, f"published objects hold raw PII values: {leaked}"
    shutil.rmtree(cache, ignore_errors=True)


def _as_text(path: Path) -> str:
    """A file's bytes as text, and a parquet file's rows too (its pages are compressed)."""
    text = path.read_bytes().decode("utf-8", "replace")
    if path.suffix == ".parquet":
        text += json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False)
    return text
