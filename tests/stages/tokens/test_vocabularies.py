"""The published encodings' patterns and special tokens, and the .bin formats, against their sources."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from stages.tokens import binformat
from stages.tokens.vocabularies import BY_NAME, PUBLISHED

SAMPLE = "Hello world's 12345 tokens,\n\n  indented\tand 身份证号码为11010519491231002X。 ÄÖÜ emoji 🙂 don't"


@pytest.mark.parametrize("name", ["r50k_base", "cl100k_base", "o200k_base"])
def test_table_matches_tiktokens_own_constructors(corpus, name, monkeypatch, tmp_path):
    """tiktoken builds the encoding from a cache we fill with the corpus file (offline): same pattern,
    same special tokens, same tokens as ours."""
    import tiktoken
    import tiktoken_ext.openai_public as public

    from stages.tokens.tokenize import BPETokenizer

    folder = {"r50k_base": "gpt2/gpt2.tiktoken"}.get(name, f"{name}/{name}.tiktoken")
    path = corpus / "tokenizers" / folder
    if not path.is_file():
        pytest.skip(f"{path} not found")
    ours = BY_NAME[name]
    shutil.copy(path, tmp_path / hashlib.sha1(ours.url.encode()).hexdigest())
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    spec = public.ENCODING_CONSTRUCTORS[name]()  # reads the cache: a download would need the network
    assert spec["pat_str"] == ours.pattern and spec["special_tokens"] == ours.special_tokens
    theirs = tiktoken.Encoding(**{k: v for k, v in spec.items() if k != "explicit_n_vocab"})
    tok = BPETokenizer(str(path))
    assert tok.encode_batch([SAMPLE]) == [theirs.encode_ordinary(SAMPLE)]
    assert tok.eot == theirs.eot_token and tok.n_vocab == theirs.n_vocab


def test_hashes_are_tiktokens():
    import inspect

    import tiktoken_ext.openai_public as public

    source = inspect.getsource(public)
    for sha, enc in PUBLISHED.items():
        assert f'"{enc.url}"' in source and f'expected_hash="{sha}"' in source


def test_formats_are_llmc_s():
    """llm.c dev/data/data_common.py HEADERS_INFO: gpt-2 20240520/1/uint16, llama-3 20240801/7/uint32."""
    assert (binformat.GPT2.magic, binformat.GPT2.version, binformat.GPT2.dtype) == (20240520, 1, "<u2")
    assert (binformat.LLAMA3.magic, binformat.LLAMA3.version, binformat.LLAMA3.dtype) == (20240801, 7, "<u4")
    assert binformat.for_vocab(50257) is binformat.GPT2 and binformat.for_vocab(65536) is binformat.GPT2
    assert binformat.for_vocab(65537) is binformat.LLAMA3 and binformat.for_vocab(200019) is binformat.LLAMA3


@pytest.mark.parametrize("fmt", binformat.FORMATS)
def test_header_round_trip_and_damage(fmt, tmp_path):
    tokens = np.array([0, 1, 65535, 7], dtype=fmt.dtype)
    if fmt is binformat.LLAMA3:
        tokens = np.array([0, 1, 200018, 100257], dtype=fmt.dtype)
    path = tmp_path / "a.bin"
    path.write_bytes(fmt.header(len(tokens)) + tokens.tobytes())
    assert binformat.read_header(path) == (fmt, 4)
    assert list(binformat.read_tokens(path)) == list(tokens)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(binformat.BinFormatError, match="does not match its 4 tokens"):
        binformat.read_header(path)
    other = binformat.LLAMA3 if fmt is binformat.GPT2 else binformat.GPT2
    bad = np.frombuffer(fmt.header(4), dtype="<i4").copy()
    bad[1] = other.version  # a magic with the other format's version
    path.write_bytes(bad.tobytes() + tokens.tobytes())
    with pytest.raises(binformat.BinFormatError, match=f"unsupported version {other.version}"):
        binformat.read_header(path)


def test_token_files_carry_their_width_in_the_name(tmp_path):
    np.array([1, 2, 3], dtype="<u4").tofile(tmp_path / "00000.u32.tokens")
    np.array([1, 2], dtype="<u2").tofile(tmp_path / "00001.tokens")
    assert binformat.find_token_file(tmp_path, "00000").name == "00000.u32.tokens"
    assert binformat.find_token_file(tmp_path, "00001").name == "00001.tokens"
    assert binformat.find_token_file(tmp_path, "00002") is None
    assert binformat.token_file_length(tmp_path / "00000.u32.tokens") == 3
    assert list(binformat.read_token_file(tmp_path / "00000.u32.tokens")) == [1, 2, 3]
