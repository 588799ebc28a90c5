import numpy as np
import pytest

from stages.tokens.tokenize import BPETokenizer, Tokenize, TokenizerError
from tests.fixtures import make_doc


def test_gpt2_tiktoken_file(gpt2_tiktoken):
    tok = BPETokenizer(str(gpt2_tiktoken))
    assert tok.encode_batch(["hello world"]) == [[31373, 995]]
    assert tok.eot == 50256 and tok.n_vocab == 50257
    assert tok.provenance()["sha256"].startswith("306cd27f")


def test_special_token_text_is_plain_text(gpt2_tiktoken):
    tok = BPETokenizer(str(gpt2_tiktoken))
    ids = tok.encode_batch(["a <|endoftext|> b"])[0]
    assert 50256 not in ids and tok.decode(ids) == "a <|endoftext|> b"


def test_huggingface_tokenizer_json(corpus, tmp_path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    gpt2 = corpus / "tokenizers" / "gpt2"
    hf = Tokenizer(models.BPE.from_file(str(gpt2 / "vocab.json"), str(gpt2 / "merges.txt")))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    hf.save(str(tmp_path / "tokenizer.json"))
    tok = BPETokenizer(str(tmp_path / "tokenizer.json"))
    assert tok.encode_batch(["hello world"]) == [[31373, 995]]
    assert tok.eot == 50256 and tok.decode([31373, 995]) == "hello world"


def test_unknown_tokenizer_is_refused():
    with pytest.raises(TokenizerError, match="expected 'gpt2' or a path"):
        BPETokenizer("no/such/tokenizer.json")


def test_step_counts_and_writes_tokens_with_eot(gpt2_tiktoken, tmp_path):
    step = Tokenize(BPETokenizer(str(gpt2_tiktoken)), str(tmp_path))
    docs = [make_doc("hello world", language="en"), make_doc("hello", language="en"), make_doc("Hallo Welt", language="de")]
    out = list(step.run(iter(docs), rank=3))
    assert [d.metadata["token_count"] for d in out] == [2, 1, 4]  # "Hallo Welt": H-allo-ĠW-elt
    assert list(np.fromfile(tmp_path / "en" / "00003.tokens", dtype="<u2")) == [50256, 31373, 995, 50256, 31373]
    assert (tmp_path / "de" / "00003.tokens").stat().st_size == 2 * 5


# ------------------------------------------------------------------ vocabularies above 65,536 ids


@pytest.fixture(scope="module")
def cl100k(corpus):
    path = corpus / "tokenizers" / "cl100k_base" / "cl100k_base.tiktoken"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def test_published_tiktoken_file_takes_its_encoding(cl100k):
    tok = BPETokenizer(str(cl100k))
    assert tok.published.name == "cl100k_base" and tok.eot == 100257 and tok.n_vocab == 100277
    assert tok.bin_format.name == "llama-3" and tok.bin_format.dtype == "<u4"
    ids = tok.encode_batch(["hello world", "身份证号码为11010519491231002X。"])
    assert ids[0] == [15339, 1917]  # cl100k's pattern: GPT-2's would split differently
    assert tok.decode(ids[1]) == "身份证号码为11010519491231002X。"
    p = tok.provenance()
    assert p["sha256"].startswith("223921b7") and p["encoding"] == "cl100k_base" and p["bin_format"] == "llama-3"


def test_gpt2_stays_uint16_and_its_record_unchanged(gpt2_tiktoken):
    tok = BPETokenizer(str(gpt2_tiktoken))
    assert tok.bin_format.name == "gpt-2" and tok.published.name == "r50k_base"
    assert set(tok.provenance()) == {"name", "kind", "eot", "n_vocab", "sha256"}


def test_names_resolve_offline_from_a_local_folder(corpus, cl100k, monkeypatch, tmp_path):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))  # nothing cached: never a download
    monkeypatch.delenv("CCPIPE_TOKENIZERS", raising=False)
    with pytest.raises(TokenizerError, match="ccpipe never downloads"):
        BPETokenizer("cl100k_base")
    monkeypatch.setenv("CCPIPE_TOKENIZERS", str(corpus / "tokenizers"))
    tok = BPETokenizer("cl100k_base")
    assert tok.path == str(cl100k) and tok.encode_batch(["hello world"]) == [[15339, 1917]]
    o200k = BPETokenizer("o200k_base")
    assert o200k.eot == 199999 and o200k.bin_format.name == "llama-3"


def test_names_resolve_from_tiktokens_cache(cl100k, monkeypatch, tmp_path):
    import hashlib
    import shutil

    from stages.tokens.vocabularies import BY_NAME

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("CCPIPE_TOKENIZERS", raising=False)
    shutil.copy(cl100k, tmp_path / hashlib.sha1(BY_NAME["cl100k_base"].url.encode()).hexdigest())
    assert BPETokenizer("cl100k_base").eot == 100257


def test_other_tiktoken_files_need_a_pattern(gpt2_tiktoken, tmp_path):
    lines = gpt2_tiktoken.read_text().splitlines()[:300]  # a small vocabulary of its own: 256 bytes + 44 merges
    small = tmp_path / "small.tiktoken"
    small.write_text("\n".join(lines) + "\n")
    with pytest.raises(TokenizerError, match="set tokenizer.pattern"):
        BPETokenizer(str(small))
    tok = BPETokenizer(str(small), pattern=r"\s?\S+|\s+")
    assert tok.eot == 300 and tok.bin_format.name == "gpt-2"
    assert tok.decode(tok.encode_batch(["hello world"])[0]) == "hello world"
    assert tok.provenance()["pattern"] == r"\s?\S+|\s+"


def test_step_writes_32_bit_token_files(cl100k, tmp_path):
    step = Tokenize(BPETokenizer(str(cl100k)), str(tmp_path))
    out = list(step.run(iter([make_doc("hello world", language="en")]), rank=2))
    assert out[0].metadata["token_count"] == 2
    assert not (tmp_path / "en" / "00002.tokens").exists()
    assert list(np.fromfile(tmp_path / "en" / "00002.u32.tokens", dtype="<u4")) == [100257, 15339, 1917]
