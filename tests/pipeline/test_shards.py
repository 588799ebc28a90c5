import numpy as np
import pytest

import pipeline.finalize.shards as shards
from pipeline.finalize.shards import (
    HEADER_BYTES,
    MAGIC,
    ShardError,
    read_header,
    read_tokens,
    validation_tokens,
    write_shard,
    write_shards,
)


def test_header_is_llmc(tmp_path):
    write_shard(tmp_path / "a.bin", np.array([50256, 1, 2], dtype=np.uint16))
    raw = (tmp_path / "a.bin").read_bytes()
    header = np.frombuffer(raw[:HEADER_BYTES], dtype="<i4")
    assert list(header[:3]) == [MAGIC, 1, 3] and not header[3:].any()
    assert len(raw) == HEADER_BYTES + 6
    assert list(read_tokens(tmp_path / "a.bin")) == [50256, 1, 2]


def test_shards_fill_exactly_and_val_comes_first(tmp_path):
    files = []
    for i, n in enumerate([7, 0, 5]):
        path = tmp_path / f"{i}.tokens"
        np.arange(100 * i, 100 * i + n, dtype="<u2").tofile(path)
        files.append(path)
    written = write_shards(files, tmp_path / "bin", "en", shard_tokens=5)
    assert [w["file"] for w in written] == ["en_val_000000.bin", "en_train_000001.bin", "en_train_000002.bin"]
    assert [w["tokens"] for w in written] == [5, 5, 2]
    got = np.concatenate([read_tokens(tmp_path / "bin" / w["file"]) for w in written])
    assert list(got) == list(range(7)) + list(range(200, 205))


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-2], "does not match"),
    (lambda b: b"\0\0\0\0" + b[4:], "bad magic"),
    (lambda b: b[:100], "too short"),
])
def test_bad_shard_is_refused_by_name(tmp_path, damage, message):
    path = tmp_path / "s.bin"
    write_shard(path, np.arange(10, dtype=np.uint16))
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ShardError, match=message) as err:
        read_header(path)
    assert str(path) in str(err.value)


def _docs(tmp_path, *files: list[int]) -> list:
    """Token files of documents of the given lengths (each its `<|endoftext|>` and n - 1 tokens)."""
    paths = []
    for i, lengths in enumerate(files):
        tokens = np.array([t for n in lengths for t in [50256] + [7] * (n - 1)], dtype="<u2")
        paths.append(tmp_path / f"{i}.tokens")
        tokens.tofile(paths[-1])
    return paths


@pytest.mark.parametrize("files, val_tokens, fraction, expected", [
    ([[10, 10]], 100, 0.1, 10),  # two documents: one each, though 10 % of 20 tokens is under a document
    ([[10]], 100, 0.1, 10),  # one document: all validation, no training shard
    ([[3] * 100], 1_000, 0.1, 30),  # 10 % of 300 tokens, at a document start
    ([[3] * 100], 20, 0.1, 18),  # capped by val_tokens: the last document start at or before 20
    ([[5, 5], [4, 6]], 100, 0.5, 10),  # the cap (10) falls on a document start in the next file
    ([[40, 3, 3]], 100, 0.1, 40),  # the first document alone is longer than the cap (4): it alone
    ([[]], 100, 0.1, 0),
])
def test_validation_shard_holds_whole_documents_under_the_cap(tmp_path, files, val_tokens, fraction, expected):
    assert validation_tokens(_docs(tmp_path, *files), val_tokens, fraction) == expected


def test_validation_scan_crosses_read_windows(tmp_path, monkeypatch):
    monkeypatch.setattr(shards, "SCAN_TOKENS", 7)  # documents of 25 tokens: several windows back from the cap
    assert validation_tokens(_docs(tmp_path, [25] * 8), 60, 0.5) == 50
    assert validation_tokens(_docs(tmp_path, [100, 25]), 10, 0.5) == 100  # forwards, window by window
