import numpy as np
import pytest

from stages.tokenize import BPETokenizer, Tokenize, TokenizerError
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
