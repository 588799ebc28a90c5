"""MinHash signatures: the fast word split (the quality stage's chunk cache) gives datatrove's shingles."""

from __future__ import annotations

import json

import numpy as np
import pytest
from datatrove.pipeline.dedup.minhash import MinhashDedupSignature

from stages.dedup import minhash
from stages.dedup.minhash import SIGNATURE_BLOCK, CompleteClusterFiles, MinhashDedup, Signature
from stages.writers.ledger import DropLedger
from tests.fixtures import make_doc
from tests.stages.filters.test_quality import real_texts


def test_fast_shingles_are_datatrove_s_on_tricky_text(tmp_path):
    text = ("o.Ä. cannot gonna Im im U.S. don't e-mail http://x.org/a?b=1 (see [1]) 3.5kg 10,000 :) — “quoted” ...\n"
            "Kurtaxe o.Ä.\n- 30% Anzahlung\n\n\tTabs\u00a0and\u2009odd spaces \x1c here 日本語のテキスト、句読点。")
    config = MinhashDedup(tmp_path).config
    fast, slow = Signature(str(tmp_path), config), Signature(str(tmp_path), config, fast=False)
    assert len(fast.get_shingles(text)) > 20
    assert (fast.get_shingles(text) == slow.get_shingles(text)).all()
    assert fast.get_shingles("too short").size == 0 == slow.get_shingles("too short").size


@pytest.mark.slow
def test_fast_signatures_equal_datatrove_s_on_real_text(corpus, tmp_path):
    config = MinhashDedup(tmp_path).config
    fast, peer = Signature(str(tmp_path), config), MinhashDedupSignature(str(tmp_path), config=config)
    texts = real_texts(corpus, limit=150)
    assert len(texts) > 200
    for text in texts:
        shingles = peer.get_shingles(text)
        assert (fast.get_shingles(text) == shingles).all(), text[:200]
        if shingles.size:
            assert fast.get_signature(fast.get_shingles(text)) == peer.get_signature(shingles)


def test_signatures_by_blocks_are_datatrove_s(tmp_path):
    # by blocks of SIGNATURE_BLOCK shingles (a 1 MB page's ~200,000 at once took ~860 MB): the same minimums
    config = MinhashDedup(tmp_path).config
    ours, peer = Signature(str(tmp_path), config), MinhashDedupSignature(str(tmp_path), config=config)
    rng = np.random.default_rng(0)
    for n in (1, SIGNATURE_BLOCK - 1, SIGNATURE_BLOCK, SIGNATURE_BLOCK + 1, 3 * SIGNATURE_BLOCK + 7):
        shingles = rng.integers(0, 2**63, size=(n, 1), dtype=np.uint64)
        assert ours.get_signature(shingles) == peer.get_signature(shingles), n


@pytest.mark.parametrize("memory", [None, 1, 5_000])  # all held, each document spilled, spilled every few
def test_signature_files_are_datatrove_s_byte_for_byte(tmp_path, monkeypatch, memory):
    # ours sort each bucket's records in memory and write its file once (spilled to the files past
    # SIGNATURE_MEMORY bytes, then sorted there); datatrove writes, reads back, sorts and writes again
    if memory is not None:
        monkeypatch.setattr(minhash, "SIGNATURE_MEMORY", memory)
    words = [f"w{i}" for i in range(60)]
    rng = np.random.default_rng(1)
    docs = [make_doc(" ".join(rng.choice(words, size=30)), doc_id=str(i), language="en") for i in range(40)]
    docs[7] = make_doc("too short", doc_id="7", language="en")  # no shingle: no record, its index skipped
    config = MinhashDedup(tmp_path).config
    Signature(str(tmp_path / "ours"), config).run(iter(docs), rank=3)
    MinhashDedupSignature(str(tmp_path / "peer"), config=config).run(iter(docs), rank=3)
    peer = sorted(p.relative_to(tmp_path / "peer") for p in (tmp_path / "peer").rglob("*.sig"))
    assert len(peer) == config.num_buckets
    assert sorted(p.relative_to(tmp_path / "ours") for p in (tmp_path / "ours").rglob("*.sig")) == peer
    for path in peer:
        assert (tmp_path / "ours" / path).read_bytes() == (tmp_path / "peer" / path).read_bytes(), path
    assert (tmp_path / "ours" / peer[0]).stat().st_size == 39 * 68


def test_a_document_whose_shingles_run_out_of_time_is_a_counted_dedup_timeout(tmp_path):
    dedup = MinhashDedup(tmp_path / "minhash")
    big = make_doc(" ".join(f"word{i}" for i in range(300_000)), doc_id="big", language="en")  # ~0.5 s
    docs = [make_doc("A short first page about tomatoes.", doc_id="a", language="en"), big,
            make_doc("A short last page about balconies.", doc_id="b", language="en")]
    dedup.signature(record_timeout=0.05).run(iter(docs))
    assert json.loads((tmp_path / "minhash" / "signatures" / "timeouts" / "00000.json").read_text()) == [1]
    list(CompleteClusterFiles(dedup.clusters, 1).run())
    ledger = tmp_path / "ledger"
    kept = dedup.filter(DropLedger(str(ledger), "dedup", reason="near_duplicate"),
                        timeouts=DropLedger(str(ledger), "dedup", part="timeout")).run(iter(docs))
    assert [d.id for d in kept] == ["a", "b"]
    rows = [json.loads(line) for line in (ledger / "dedup" / "timeout-00000.jsonl").read_text().splitlines()]
    assert [(r["id"], r["stage"], r["reason"]) for r in rows] == [("big", "dedup", "timeout")]
