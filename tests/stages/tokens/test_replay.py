"""Token ids taken from another run's token files and parquet (`--reuse`): the same files as encoding,
whatever is missing or damaged there."""

import pytest

from stages.tokens.replay import parquet_parts
from stages.tokens.tokenize import BPETokenizer, Tokenize
from stages.writers.output import FineWebParquet
from tests.fixtures import make_doc

TEXTS = [("hello world", "en"), ("Hallo Welt, wie geht es?", "de"), ("a <|endoftext|> b", "en"), ("", "en"),
         ("the same text twice", "en"), ("the same text twice", "en"), ("héllo wörld ✓ 🙂", "de")]


def _run(tokenizer, run, texts=TEXTS, replay_from=None, rank=1) -> tuple[list, dict, dict]:
    """A final task's last two steps, as a run has them: its token files and its parquet output."""
    step = Tokenize(tokenizer, str(run / "tokens"), batch_size=3,
                    replay_from=(str(replay_from / "tokens"), str(replay_from / "parquet")) if replay_from else None)
    docs = [make_doc(t, language=lang, language_score=0.9) for t, lang in texts]
    out = list(FineWebParquet(str(run / "parquet"), "zstd").run(step.run(iter(docs), rank=rank), rank=rank))
    files = {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}
    return [d.metadata["token_count"] for d in out], files, {k: v.total for k, v in step.stats.stats.items()}


@pytest.fixture(scope="module")
def gpt2(gpt2_tiktoken):
    return BPETokenizer(str(gpt2_tiktoken))


def test_replayed_ids_give_the_encoded_files(gpt2, tmp_path):
    _run(gpt2, tmp_path / "source")
    changed = [("hello world!", "en")] + TEXTS[1:]  # one text is new: encoded
    counts, replayed, stats = _run(gpt2, tmp_path / "replayed", changed, replay_from=tmp_path / "source")
    expected, encoded, _ = _run(gpt2, tmp_path / "encoded", changed)
    assert replayed == encoded and counts == expected
    assert stats["tokens_replayed"] == len(TEXTS) - 1 and "replay_files_unusable" not in stats


@pytest.mark.parametrize("damage", ["tokens missing", "parquet missing", "tokens cut", "parquet not parquet",
                                    "a document more"])
def test_files_that_do_not_agree_are_not_replayed(damage, gpt2, tmp_path):
    source = tmp_path / "source"
    _run(gpt2, source)
    tokens = source / "tokens" / "en" / "00001.tokens"
    [parquet] = parquet_parts(str(source / "parquet" / "en"), 1)
    if damage == "tokens missing":
        tokens.unlink()
    elif damage == "parquet missing":
        (source / "parquet" / "en" / parquet).unlink()
    elif damage == "tokens cut":
        tokens.write_bytes(tokens.read_bytes()[:-2])
    elif damage == "parquet not parquet":
        (source / "parquet" / "en" / parquet).write_bytes(b"PAR1 not really")
    else:  # the token file of another list of documents: one document more
        tokens.write_bytes(tokens.read_bytes() + tokens.read_bytes()[:4])
    _, replayed, stats = _run(gpt2, tmp_path / "replayed", replay_from=source)
    _, encoded, _ = _run(gpt2, tmp_path / "encoded")
    assert replayed == encoded
    assert stats["replay_files_unusable"] == 1 and "tokens_replayed" not in stats


def test_another_task_s_files_are_not_taken(gpt2, tmp_path):
    _run(gpt2, tmp_path / "source", rank=0)
    _, replayed, stats = _run(gpt2, tmp_path / "replayed", replay_from=tmp_path / "source", rank=1)
    _, encoded, _ = _run(gpt2, tmp_path / "encoded", rank=1)
    assert replayed == encoded and "tokens_replayed" not in stats


def test_a_task_s_parquet_files_in_the_order_written(tmp_path):
    for name in ("001_00003.parquet", "00003.parquet", "000_00003.parquet", "010_00003.parquet", "000_00013.parquet",
                 "x_00003.parquet", "000_00003.parquet.tmp"):
        (tmp_path / name).write_bytes(b"")
    assert [p.rsplit("/", 1)[1] for p in parquet_parts(str(tmp_path), 3)] == [
        "00003.parquet", "000_00003.parquet", "001_00003.parquet", "010_00003.parquet"]
    assert parquet_parts(str(tmp_path / "none"), 3) == []
