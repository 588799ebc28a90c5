"""The WARC reader on real files from ../shared/corpus: hostile inputs, bench's planted drops, genuine CC files."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.stages.readers.test_warc import assert_conserved, ledger_rows, read

pytestmark = pytest.mark.timeout(60)


BAD_RUN = textwrap.dedent("""
    import json, resource, sys
    from stages.readers.warc import WarcReader
    paths, ledger, report = json.loads(sys.argv[1])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    urls = [doc.metadata["url"] for doc in WarcReader(paths, ledger, report).run()]
    growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({"urls": urls, "rss_growth_mib": growth_kib / 1024}))
""")


def test_hostile_files_meet_their_readme(corpus, tmp_path):
    bad = corpus / "warc" / "bad"
    paths = sorted(str(p) for p in bad.iterdir() if p.name != "README.md")
    args = json.dumps([paths, str(tmp_path / "ledger"), str(tmp_path / "report")])
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", BAD_RUN, args], cwd=root, capture_output=True, text=True, timeout=50)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rss_growth_mib"] < 500  # a 1 GiB bomb and an 11 MB page, never held
    files = {Path(f["path"]).name: f for f in json.loads((tmp_path / "report" / "00000.json").read_text())["files"]}
    rows = ledger_rows(tmp_path / "ledger")
    reasons = {(Path(r["warc"]).name, r["url"]): r["reason"] for r in rows}
    urls = set(result["urls"])
    assert len(files) == len(paths)
    assert_conserved(files.values())

    truncated, garbage, not_warc = (files[f"{n}.warc.gz"] for n in ("truncated-mid-member", "garbage-between-members",
                                                                    "not-a-warc"))  # fmt: skip
    assert truncated["responses"] > 80 and "truncated-mid-member.warc.gz: file ends inside" in truncated["error"]
    assert garbage["kept"] >= 1 and "garbage-between-members.warc.gz: unreadable record" in garbage["error"]
    assert not_warc["responses"] == 0 and "not-a-warc.warc.gz: unreadable record" in not_warc["error"]
    assert files["empty.warc.gz"]["responses"] == 0 and files["empty.warc.gz"]["error"] is None
    assert files["uncompressed.warc"]["kept"] == 3 and files["uncompressed.warc"]["error"] is None
    single = files["single-gzip-member.warc.gz"]
    assert single["kept"] == 3 or "gzip member holds several records" in single["error"]
    assert reasons[("lying-content-length.warc.gz", "https://garden.example-three.org/liar")] == "damaged_record"
    assert "https://garden.example-three.org/after" in urls
    assert reasons[("huge-deep-page.warc.gz", "https://huge.example-four.org/page")] == "too_large"
    assert "https://garden.example-four.org/normal" in urls
    assert reasons[("payload-bomb.warc.gz", "https://bomb.example-five.org/")] == "too_large"
    assert "https://garden.example-five.org/after-bomb" in urls
    odd = {url: reason for (name, url), reason in reasons.items() if name == "odd-records.warc.gz"}
    assert odd == {"https://bin.example-six.org/x.html": "binary", "not%20a%20url%20at%20all": "bad_url",
                   "http://[::1": "bad_url"}  # fmt: skip
    assert {"https://utf16.example-six.org/page", "https://xss.example-six.org/article"} <= urls


def test_utf16_page_in_corpus_decodes(corpus, tmp_path):
    docs, _, _ = read(tmp_path, [corpus / "warc" / "bad" / "odd-records.warc.gz"])
    utf16 = next(d for d in docs if d.metadata["url"] == "https://utf16.example-six.org/page")
    assert utf16.text.startswith("<html><head><title>A page in UTF-16</title>")


def test_bench_drops_exactly_non_html_and_http_errors(corpus, tmp_path):
    bench = corpus / "warc" / "bench"
    truth = {row["record_id"]: row for row in map(json.loads, (bench / "truth.jsonl").open())}
    # bench pages reach 1.6 MB, uncut (Common Crawl would have cut them at 1 MiB): give them room
    docs, files, rows = read(tmp_path, sorted(bench.glob("*.warc.gz")), max_payload_bytes=2 << 20)
    assert_conserved(files)
    assert sum(f["responses"] for f in files) == len(truth) and not any(f["error"] for f in files)
    dropped = {r["id"]: r["reason"] for r in rows}
    expected = {rid: row["kind"] for rid, row in truth.items() if row["kind"] in ("non_html", "http_error")}
    assert dropped.keys() == expected.keys()
    pairs = {(expected[rid], reason) for rid, reason in dropped.items()}
    assert pairs == {("non_html", "non_html"), ("http_error", "http_status")}
    assert {d.id for d in docs} == truth.keys() - expected.keys()
    assert {d.metadata["dump"] for d in docs} == {"CC-MAIN-2024-22"}

    # with the default limit, the pages over 1 MiB go too, each by its declared length
    _, _, rows = read(tmp_path / "default", sorted(bench.glob("*.warc.gz")))
    over = {r["id"]: r["detail"] for r in rows if r["id"] not in expected}
    assert len(over) == 12 and {r["reason"] for r in rows if r["id"] in over} == {"too_large"}
    assert all(int(detail.split()[1]) > 1 << 20 for detail in over.values())


def test_genuine_and_odd_warcs_decode_cleanly(corpus, tmp_path):
    paths = sorted((corpus / "warc" / "cc").glob("*.warc.gz")) + sorted((corpus / "warc" / "other").glob("*.warc.gz"))
    docs, files, _ = read(tmp_path, paths)
    assert_conserved(files)
    errors = {Path(f["path"]).name for f in files if f["error"]}
    assert errors <= {"resiliparse_clipped.warc.gz"}  # cut short on purpose
    assert len(docs) > 80
    for doc in docs:  # gb2312, windows-1251, EUC-JP with an empty payload type, Content-Encoding: gzip
        assert doc.text.count("\ufffd") < 0.001 * len(doc.text), doc.metadata["url"]
