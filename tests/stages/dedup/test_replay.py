"""MinHash signatures taken from another run (`--reuse`): the same files as computing them, and computed where
that run's files are gone."""

from __future__ import annotations

import logging
import shutil

import pytest

from stages.dedup.minhash import MinhashDedup
from stages.writers.output import TaskFileWriter
from tests.fixtures import make_doc

WORDS = "tomatoes grow best on a sunny balcony with daily water and some patience in the summer months".split()


def _docs(texts: dict[str, str]):
    return [make_doc(text, doc_id=key, language="en") for key, text in texts.items()]


def _text(i: int) -> str:
    return " ".join(WORDS[i % 7:] + WORDS[:i % 7]) + f" page {i}."


def _sign(folder, docs, replay_from=None, rank=0):
    step = MinhashDedup(folder).signature(replay_from=replay_from)
    step.run(iter(docs), rank=rank)
    files = sorted((folder / "signatures").rglob("*.sig"))
    return step, {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def _source(tmp_path, texts):
    """A run's work/: the base phase's documents, their signatures, the task's completion marker."""
    work = tmp_path / "source"
    docs = _docs(texts)
    list(TaskFileWriter(str(work / "base")).run(iter(docs)))
    _sign(work / "minhash", docs)
    (work / "completions").mkdir()
    (work / "completions" / "00000").touch()
    return work, (str(work / "minhash" / "signatures"), str(work / "base"), str(work / "completions"))


def test_replayed_signatures_are_the_computed_ones(tmp_path):
    source = {f"d{i}": _text(i) for i in range(8)} | {"short": "too short"}  # no shingles: no signature
    work, replay = _source(tmp_path, source)
    # FineWeb's filter off: more documents, in another order; one text changed (C4's line removal)
    texts = {"new1": _text(20), **{k: v for k, v in reversed(source.items())}, "new2": _text(21)}
    texts["d3"] = texts["d3"] + " More."
    step, replayed = _sign(tmp_path / "replayed", _docs(texts), replay)
    _, computed = _sign(tmp_path / "computed", _docs(texts))
    assert replayed == computed and len(replayed) == 14
    assert step.stats["signatures_replayed"].total == 8  # 7 unchanged texts and the short one
    assert step.stats["signatures_computed"].total == 3


@pytest.mark.parametrize("damage", ["partial", "deleted", "incomplete"])
def test_missing_or_partial_files_are_computed_and_said(damage, tmp_path, caplog):
    texts = {f"d{i}": _text(i) for i in range(5)}
    work, replay = _source(tmp_path, texts)
    _, computed = _sign(tmp_path / "computed", _docs(texts))
    if damage == "partial":  # one bucket's file with one record of five
        (work / "minhash" / "signatures" / "bucket_003" / "00000.minhash.sig").write_bytes(b"\0" * 68)
    elif damage == "deleted":
        shutil.rmtree(work / "minhash" / "signatures")
    else:  # the task did not complete
        (work / "completions" / "00000").unlink()
    with caplog.at_level(logging.WARNING, logger="stages.dedup.minhash"):
        step, replayed = _sign(tmp_path / "replayed", _docs(texts), replay)
    assert replayed == computed
    assert step.stats["replay_files_unusable"].total == 1 and step.stats["signatures_computed"].total == 5
    assert "signatures_replayed" not in step.stats.stats
    assert "MinHash signatures of task 0" in caplog.text and "computed" in caplog.text
