"""Every kind of Common Crawl file as input (../shared/corpus/warc/cc): WARC and WET read, WAT a named per-file
error; and `--strict`, which fails a run with any file error."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from tests.pipeline.clusterkit import ccpipe

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_cc_directory_keeps_english_wet_documents_and_names_the_wat(corpus, gpt2_tiktoken, tmp_path):
    cc = corpus / "warc" / "cc"
    out = tmp_path / "run"
    proc = ccpipe("run", "--input", str(cc), "--output", str(out), "--tokenizer", str(gpt2_tiktoken), "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    errors = {e["path"].rsplit("/", 1)[-1]: e for e in summary["errors"]}
    wat = errors["whirlwind_CC-MAIN-2024-22.warc.wat.gz"]
    assert "holds no record ccpipe can use" in wat["error"] and "WAT" in wat["error"] and wat["kind"] == "damaged"
    assert "jeffharwell_CC-MAIN-2016-50_truncated-gzip-eof.wet.gz" in errors  # cut at 50 KiB: counted, not lost
    assert summary["files"] == 7 and summary["failed"] == 0 and summary["conservation_ok"]

    ledger = pq.read_table(out / "ledger").to_pylist()
    wet = [r for r in ledger if r["warc"].endswith(".wet.gz")]
    # the whirlwind page is Aragonese: read, then dropped by language
    page = next(r for r in wet if r["url"] == "https://an.wikipedia.org/wiki/Escopete")
    assert page["decision"] == "dropped" and page["stage"] == "langid" and page["reason"] == "language_not_kept"
    assert page["id"] == "<urn:uuid:2aabeff2-67f5-4608-8466-e87c6296e2b6>"  # WARC-Refers-To: the page's response
    kept = [r for r in wet if r["decision"] == "kept"]
    assert kept and all(r["language"] == "en" and r["detail"] == "text_source=wet" for r in kept)
    # the one-gzip-member WET file (warcio refuses it) is read through a gzip stream: its English pages are kept
    assert {r["warc"].rsplit("/", 1)[-1] for r in kept} == {"jeffharwell_CC-MAIN-2016-50_filter_test_1.single-gzip-member.wet.gz"}
    parquet = pq.read_table(out / "parquet").to_pylist()
    assert {r["id"] for r in parquet} >= {r["id"] for r in kept}
    assert not any(r["stage"] == "extract" for r in wet)  # trafilatura never saw them


def test_strict_fails_the_run_on_a_damaged_file(corpus, gpt2_tiktoken, tmp_path):
    bad = corpus / "warc" / "bad"
    inputs = [str(bad / "uncompressed.warc"), str(bad / "not-a-warc.warc.gz")]
    args = ["--input", *inputs, "--tokenizer", str(gpt2_tiktoken), "--no-progress"]
    lenient = ccpipe("run", *args, "--output", str(tmp_path / "lenient"))
    assert lenient.returncode == 0, lenient.stderr[-3000:]
    assert "1 file(s) damaged or unusable" in lenient.stdout
    strict = ccpipe("run", *args, "--output", str(tmp_path / "strict"), "--strict")
    assert strict.returncode == 1 and "not-a-warc.warc.gz" in strict.stderr
    assert strict.stderr.strip().splitlines()[-1] == "ccpipe: --strict: 1 file(s) had errors"
