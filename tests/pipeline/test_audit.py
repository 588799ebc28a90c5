"""The decision ledger and `ccpipe audit` on ../shared/corpus/warc/bench, checked against truth.jsonl."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.audit.queries import AuditError, diff, mask, sample
from tests.pipeline.conftest import bench_run

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("CCPIPE_TEST_ARTIFACTS", ROOT / "test-artifacts"))


def ccpipe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, timeout=300)


def ledger(run: Path) -> list[dict]:
    return pq.read_table(run / "ledger").to_pylist()


def test_ledger_has_exactly_one_row_per_record(run1, truth):
    rows = ledger(run1)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == len(truth)
    assert set(ids) == {t["record_id"] for t in truth}
    for r in rows:
        assert (r["decision"] == "kept") == (r["stage"] is None) == (r["reason"] is None), r["id"]


def test_ledger_rows_match_summary(run1):
    summary = json.loads((run1 / "summary.json").read_text())
    rows = ledger(run1)
    kept = [r for r in rows if r["decision"] == "kept"]
    assert summary["kept"] == len(kept)
    assert summary["tokens"] == sum(r["token_count"] + 1 for r in kept)
    for stage, reasons in summary["dropped"].items():
        for reason, n in reasons.items():
            assert n == sum(1 for r in rows if r["stage"] == stage and r["reason"] == reason), (stage, reason)


def test_ledger_is_identical_across_worker_counts(run1, run2):
    for a in sorted((run1 / "ledger").glob("*.parquet")):
        assert a.read_bytes() == (run2 / "ledger" / a.name).read_bytes(), a.name


def test_summary_json_equals_summary_json_file(run1):
    proc = ccpipe("audit", "summary", str(run1), "--json")
    assert proc.returncode == 0, proc.stderr
    counts = json.loads(proc.stdout)
    summary = json.loads((run1 / "summary.json").read_text())
    assert counts == {k: summary[k] for k in counts}
    assert set(counts) >= {"records_total", "kept", "dropped", "dropped_total", "tokens", "funnel"}
    table = ccpipe("audit", "summary", str(run1))
    assert "ut1_domain" in table.stdout and f"{summary['kept']:>8}" in table.stdout


def _explain(run: Path, key: str) -> str:
    proc = ccpipe("audit", "explain", str(run), key)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_explain_blocklisted_domain_names_the_ut1_list(run1, truth):
    rows = {r["id"]: r for r in ledger(run1)}
    hits = [t for t in truth if t["kind"] == "blocklisted_domain" and rows[t["record_id"]]["stage"] == "blocklist"]
    assert len(hits) >= 50
    for t in hits[:3]:
        out = _explain(run1, t["url"])
        domain = rows[t["record_id"]]["blocklist_rule"]
        assert re.search(r"blocklist\s+DROPPED\s+ut1_\w+: list ut1-adult-v0\.3\.0, rule " + re.escape(domain), out), out


def test_explain_exact_duplicate_names_the_kept_twin(run1, truth):
    rows = {r["id"]: r for r in ledger(run1)}
    by_url = {t["url"]: t["record_id"] for t in truth if t["kind"] == "original"}
    checked = 0
    for t in truth:
        if t["kind"] != "exact_dup" or t["dup_of"] not in by_url:
            continue
        twin = by_url[t["dup_of"]]
        dup_row, twin_row = rows[t["record_id"]], rows[twin]
        if dup_row["stage"] == "dedup" and twin_row["decision"] == "kept":
            out = _explain(run1, t["url"])
            assert f"kept instead: {twin} {t['dup_of']}" in out, out
            checked += 1
        elif twin_row["stage"] == "dedup" and dup_row["decision"] == "kept":  # datatrove kept the copy
            assert f"kept instead: {t['record_id']}" in _explain(run1, twin)
            checked += 1
        if checked == 4:
            break
    assert checked == 4


def test_explain_pii_page_lists_planted_types_masked(run1, truth):
    rows = {r["id"]: r for r in ledger(run1)}
    pages = [t for t in truth if t.get("pii") and rows[t["record_id"]]["decision"] == "kept"]
    assert len(pages) >= 5
    for t in pages[:5]:
        out = _explain(run1, t["record_id"])
        pii_line = next(line for line in out.splitlines() if line.strip().startswith("pii"))
        for planted in t["pii"]:
            assert planted["type"] in pii_line, (planted, pii_line)
            assert planted["value"] not in pii_line  # masked unless --show-pii
    shown = ccpipe("audit", "explain", str(run1), pages[0]["record_id"], "--show-pii").stdout
    assert all(p["value"] in shown for p in pages[0]["pii"])


def test_explain_unknown_record_is_a_clear_error(run1, tmp_path):
    proc = ccpipe("audit", "explain", str(run1), "https://nowhere.example/")
    assert proc.returncode == 2 and "https://nowhere.example/: no record" in proc.stderr
    proc = ccpipe("audit", "explain", str(tmp_path), "x")
    assert proc.returncode == 2 and "no ledger" in proc.stderr


def test_sample_is_reproducible_and_filtered(run1):
    a = sample(run1, "quality", n=5, seed=1)
    assert a == sample(run1, "quality", n=5, seed=1)
    assert [r["id"] for r in a] != [r["id"] for r in sample(run1, "quality", n=5, seed=2)]
    assert all(r["stage"] == "quality" and r["excerpt"] for r in a)
    only = sample(run1, "blocklist", reason="ut1_domain", n=3)
    assert len(only) == 3 and all(r["reason"] == "ut1_domain" for r in only)
    assert all(r["stage"] is None for r in sample(run1, "kept", n=3))
    with pytest.raises(AuditError, match="reasons at this stage: .*ut1_domain"):
        sample(run1, "blocklist", reason="no_such_reason")
    out = ccpipe("audit", "sample", str(run1), "--stage", "langid", "-n", "2", "--seed", "7")
    assert out.returncode == 0 and out.stdout.count("langid: ") == 2


def test_diff_between_language_thresholds_is_exactly_the_scores_between(run1, bench_dir, gpt2_tiktoken, tmp_path):
    strict = bench_run(bench_dir, gpt2_tiktoken, tmp_path / "t080", workers=2, langid={"threshold": 0.80})
    between = {r["id"] for r in ledger(run1)
               if r["language"] == "en" and r["language_score"] is not None and 0.65 <= r["language_score"] < 0.80}
    assert between
    result = diff(run1, strict)
    assert set(result["ids"]) == between
    assert all(t["new"] == "langid:low_score" for t in result["transitions"])
    proc = ccpipe("audit", "diff", str(run1), str(strict))
    assert proc.returncode == 0 and f"{len(between)} of {result['records']} records in both runs changed fate\n" \
        in proc.stdout


def test_mask_keeps_shape_not_value():
    assert mask("jane.doe@example.com") == "j•••.d••@e••••••.c••"
    assert mask("+44 1234 567890") == "+4• 1••• 5•••••"


# ---- the HTML report --------------------------------------------------------------------------------------

def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("headless Chromium not installed (Debian package 'chromium'; `make test` installs it as root)")


def _headless(chromium: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--no-first-run", "--user-data-dir=" + str(ARTIFACTS / ".chromium"), *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def odd_run(corpus, gpt2_tiktoken, tmp_path_factory) -> Path:
    """odd-records.warc.gz alone: few enough records that the report shows every one as an example."""
    odd = corpus / "warc" / "bad" / "odd-records.warc.gz"
    if not odd.is_file():
        pytest.skip(f"{odd} not found")
    run = tmp_path_factory.mktemp("odd") / "run"
    proc = ccpipe("run", "--input", str(odd), "--output", str(run), "--tokenizer", str(gpt2_tiktoken), "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run


def test_report_escapes_crawled_text_and_renders_without_script(odd_run):
    run = odd_run
    rows = ledger(run)
    planted = [r for r in rows if r["excerpt"] and "<script>alert('pwned')</script>" in r["excerpt"]]
    assert planted, "the <script> page of odd-records.warc.gz should have reached extraction"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    report = ARTIFACTS / "report.html"
    proc = ccpipe("audit", "report", str(run), "-o", str(report))
    assert proc.returncode == 0, proc.stderr
    page = report.read_text()
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert 'http-equiv="Content-Security-Policy"' in page

    chromium = _chromium()
    dom = _headless(chromium, "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<script" not in dom.stdout.lower() and "<img" not in dom.stdout.lower()
    assert "&lt;script&gt;alert('pwned')&lt;/script&gt;" in dom.stdout  # shown as text
    # a bar per funnel row: reader, blocklist, precheck, extract, langid, quality, dedup, pii, tokenize
    assert dom.stdout.count('class="kept"') == 9 and 'id="funnel-chart"' in dom.stdout

    shot = ARTIFACTS / "report.png"
    proc = _headless(chromium, f"--screenshot={shot}", "--window-size=1000,900", report.as_uri())
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    from PIL import Image

    colours = dict((rgb, n) for n, rgb in Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 24))
    funnel_blue = colours.get((0x2A, 0x6F, 0xDB), 0)
    assert funnel_blue > 2000, f"the funnel chart did not render ({funnel_blue} pixels of its colour)"
