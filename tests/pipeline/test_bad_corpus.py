"""`ccpipe run` over ../shared/corpus/warc/bad: hostile inputs end as counted fates, never as a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow


def response_ids(path: Path) -> list[str]:
    from warcio.archiveiterator import ArchiveIterator

    with open(path, "rb") as f:
        return [r.rec_headers.get_header("WARC-Record-ID") for r in ArchiveIterator(f) if r.rec_type == "response"]


def test_every_file_has_a_fate(bad_run):
    bad, out, _, _ = bad_run
    summary = json.loads((out / "summary.json").read_text())
    inputs = sorted(p for p in bad.iterdir() if p.name.endswith((".warc.gz", ".warc")))
    assert summary["files"] == len(inputs)
    errors = {Path(e["path"]).name: e["error"] for e in summary["errors"]}
    for name in ("truncated-mid-member.warc.gz", "not-a-warc.warc.gz", "garbage-between-members.warc.gz"):
        assert name in errors and name in errors[name]
    assert "empty.warc.gz" not in errors and "uncompressed.warc" not in errors
    assert summary["conservation_ok"] and summary["records_total"] == summary["kept"] + summary["dropped_total"]


def test_normal_pages_after_huge_page_and_bomb_are_recovered(bad_run):
    bad, out, _, _ = bad_run
    reader_drops = {row["id"]: row for row in pq.read_table(out / "ledger").to_pylist() if row["decision"] == "dropped"}
    for name in ("huge-deep-page.warc.gz", "payload-bomb.warc.gz"):
        big, normal = response_ids(bad / name)
        assert reader_drops[big]["reason"] == "too_large"
        # read and passed on by the reader: it ends in the output or in a later stage's drop
        assert normal not in reader_drops or reader_drops[normal]["stage"] != "reader"


def test_peak_memory_under_2gb(bad_run):
    *_, peak_kib = bad_run
    assert peak_kib < 2 * 1024 * 1024, f"peak RSS {peak_kib / 1024:.0f} MiB"
