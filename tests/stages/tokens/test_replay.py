"""Token ids taken from another run's token files (`--reuse`): the same files as encoding, whatever is missing."""

import pytest

from stages.tokens.replay import KEY_BYTES, RECORD_BYTES, token_key
from stages.tokens.tokenize import BPETokenizer, Tokenize
from tests.fixtures import make_doc

TEXTS = [("hello world", "en"), ("Hallo Welt, wie geht es?", "de"), ("a <|endoftext|> b", "en"), ("", "en"),
         ("the same text twice", "en"), ("the same text twice", "en"), ("héllo wörld ✓ 🙂", "de")]


def _run(tokenizer, folder, texts=TEXTS, replay_from=None, rank=1) -> tuple[list, dict, dict]:
    step = Tokenize(tokenizer, str(folder), batch_size=3, replay_from=replay_from)
    out = list(step.run(iter([make_doc(t, language=lang) for t, lang in texts]), rank=rank))
    files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    return [d.metadata["token_count"] for d in out], files, {k: v.total for k, v in step.stats.stats.items()}


@pytest.fixture(scope="module")
def gpt2(gpt2_tiktoken):
    return BPETokenizer(str(gpt2_tiktoken))


def test_keys_name_each_document_of_the_token_file(gpt2, tmp_path):
    counts, files, _ = _run(gpt2, tmp_path)
    keys = files["en/00001.keys"]
    english = [t for t, lang in TEXTS if lang == "en"]
    assert len(keys) == RECORD_BYTES * len(english)
    for i, text in enumerate(english):
        record = keys[i * RECORD_BYTES:(i + 1) * RECORD_BYTES]
        assert record[:KEY_BYTES] == token_key(text)
        assert int.from_bytes(record[KEY_BYTES:], "little") == len(gpt2.encode(text))
    assert sum(counts) + len(TEXTS) == sum(len(b) // 2 for n, b in files.items() if n.endswith(".tokens"))


def test_replayed_ids_give_the_encoded_files(gpt2, tmp_path):
    counts, files, _ = _run(gpt2, tmp_path / "source")
    changed = [("hello world!", "en")] + TEXTS[1:]  # one text is new: encoded
    again, replayed, stats = _run(gpt2, tmp_path / "replayed", changed, replay_from=str(tmp_path / "source"))
    expected, encoded, _ = _run(gpt2, tmp_path / "encoded", changed)
    assert replayed == encoded and again == expected
    assert stats["tokens_replayed"] == len(TEXTS) - 1 and "replay_files_unusable" not in stats


@pytest.mark.parametrize("damage", ["keys missing", "tokens missing", "keys cut", "tokens cut", "counts off"])
def test_files_that_do_not_agree_are_not_replayed(damage, gpt2, tmp_path):
    source = tmp_path / "source"
    _run(gpt2, source)
    keys, tokens = source / "en" / "00001.keys", source / "en" / "00001.tokens"
    if damage == "keys missing":
        keys.unlink()
    elif damage == "tokens missing":
        tokens.unlink()
    elif damage == "keys cut":
        keys.write_bytes(keys.read_bytes()[:-3])
    elif damage == "tokens cut":
        tokens.write_bytes(tokens.read_bytes()[:-2])
    else:  # the first document's count one more: the next one no longer starts at an <|endoftext|>
        data = bytearray(keys.read_bytes())
        data[KEY_BYTES] += 1
        keys.write_bytes(bytes(data))
    _, replayed, stats = _run(gpt2, tmp_path / "replayed", replay_from=str(source))
    _, encoded, _ = _run(gpt2, tmp_path / "encoded")
    assert replayed == encoded
    assert stats["replay_files_unusable"] == 1 and "tokens_replayed" not in stats


def test_another_task_s_files_are_not_taken(gpt2, tmp_path):
    _run(gpt2, tmp_path / "source", rank=0)
    _, replayed, stats = _run(gpt2, tmp_path / "replayed", replay_from=str(tmp_path / "source"), rank=1)
    _, encoded, _ = _run(gpt2, tmp_path / "encoded", rank=1)
    assert replayed == encoded and "tokens_replayed" not in stats
