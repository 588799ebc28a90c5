"""Every fast path on (the default) against every fast path off, on ../shared/corpus/warc/bench.

Off means: no language pre-check before trafilatura (`langid.precheck`), datatrove's four quality filters
instead of the one pass (`quality.fast`), presidio's analyze() on whole documents (`pii.fast`), datatrove's
own word split for MinHash signatures (`dedup.fast`). The fast
paths must change nothing that matters: the kept set may differ by under 0.5 % of documents, and a document
both keep must come out the same.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from tests.pipeline.conftest import bench_run

pytestmark = pytest.mark.slow

FAST_PATHS_OFF = {"langid": {"precheck": False}, "quality": {"fast": False}, "pii": {"fast": False},
                  "dedup": {"fast": False}}


@pytest.fixture(scope="module")
def run_off(bench_dir, gpt2_tiktoken, tmp_path_factory):
    # 2 workers: the output does not depend on it, and this run is the slow one
    return bench_run(bench_dir, gpt2_tiktoken, tmp_path_factory.mktemp("bench") / "off", workers=2, **FAST_PATHS_OFF)


def kept(run) -> dict[str, dict]:
    table = pq.read_table(run / "parquet", columns=["id", "text", "token_count"])
    return {row["id"]: row for row in table.to_pylist()}


def ledger(run) -> dict[str, tuple]:
    rows = pq.read_table(run / "ledger", columns=["id", "decision", "stage", "reason"]).to_pylist()
    return {r["id"]: (r["decision"], r["stage"], r["reason"]) for r in rows}


def test_kept_sets_differ_by_less_than_half_a_percent(run1, run_off):
    on, off = kept(run1), kept(run_off)
    differ = set(on) ^ set(off)
    assert len(on) > 200
    assert len(differ) < 0.005 * len(set(on) | set(off)), sorted(differ)


def test_documents_kept_by_both_are_identical(run1, run_off):
    on, off = kept(run1), kept(run_off)
    for doc_id in set(on) & set(off):
        assert on[doc_id] == off[doc_id], doc_id


def test_every_record_is_decided_the_same_but_for_the_precheck(run1, run_off):
    on, off = ledger(run1), ledger(run_off)
    assert set(on) == set(off)  # every record read is in both ledgers
    precheck = {i for i, (_, _, reason) in on.items() if reason == "language_precheck"}
    assert len(precheck) > 0.3 * len(on)  # it does skip trafilatura on many pages
    # pages the pre-check drops are dropped without it too: by extraction, language ID or quality
    assert sum(off[i][0] == "kept" for i in precheck) < 0.005 * len(on)
    # every other record: the same decision, stage and reason (quality reasons included)
    assert {i: on[i] for i in set(on) - precheck} == {i: off[i] for i in set(on) - precheck}
