"""jieba with its words unchanged (stages/text/chinese.py, jieba_cut.py): the cached prefix dictionary and
word automaton, and `BlockCut`'s words against jieba's own `cut`.

The words on warc/zh's texts (and their simplified forms) are checked against datatrove's tokenizer in
test_words.py; here jieba's own `cut` on Chinese web pages and 100,000 fuzzed strings.
"""

import gzip
import json
import logging
import random
import subprocess
import sys

import jieba
import pytest
from selectolax.lexbor import LexborHTMLParser

from stages.text.chinese import SUPPORTED, load_dictionary, load_words, shared_cut
from stages.text.jieba_cut import LENGTH_BITS, LENGTH_MASK, BlockCut, key
from tests.conftest import ROOT

jieba.setLogLevel(logging.WARNING)
pytestmark = pytest.mark.skipif(jieba.__version__ != SUPPORTED, reason=f"mirrors jieba {SUPPORTED}'s code")

HAN = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可也你说年学北京欢迎研究生命起源"
PIECES = [*HAN, *"abcXYZ0189+#&._%-", "，", "。", "！", "「", "」", "（", "）", " ", "  ", "\t", "\n", "\r\n", "\r",
          "\u3000", "é", "ß", "の", "カ", "한", "😀", "𠀀", "\u200b", "Ⅻ", "１", "ａ"]


def test_the_cached_dictionary_is_jieba_s(tmp_path, monkeypatch):
    monkeypatch.setenv("CCPIPE_CACHE", str(tmp_path))
    reference = jieba.Tokenizer()
    freq, total = reference.gen_pfdict(reference.get_dict_file())
    built, read = jieba.Tokenizer(), jieba.Tokenizer()
    assert load_dictionary(built)  # no cache yet: jieba's gen_pfdict, then the cache written
    assert list((tmp_path / "jieba").glob("*/counts.npy"))
    assert load_dictionary(read)  # from the cache
    for tokenizer in (built, read):
        assert tokenizer.initialized and tokenizer.total == total
        assert tokenizer.FREQ == freq and list(tokenizer.FREQ) == list(freq)
    text = "北京欢迎你，研究生命起源。"
    assert list(read.cut(text)) == list(reference.cut(text))
    assert not load_dictionary(read)  # initialized: left alone


def test_a_cache_that_does_not_match_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("CCPIPE_CACHE", str(tmp_path))
    assert load_dictionary(jieba.Tokenizer())
    words = next((tmp_path / "jieba").glob("*/words.txt"))
    words.write_bytes(words.read_bytes().rsplit(b"\n", 1)[0])  # one entry short
    tokenizer = jieba.Tokenizer()
    assert load_dictionary(tokenizer)
    assert len(tokenizer.FREQ) == len(jieba.Tokenizer.gen_pfdict(tokenizer.get_dict_file())[0])


def test_block_cut_gives_jieba_s_words_on_fuzzed_strings():
    rng = random.Random(21)
    cut = BlockCut(jieba, *load_words(), cache_size=5_000)  # cleared many times on the way
    for _ in range(100_000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 24)))
        assert cut(text) == list(jieba.cut(text, cut_all=False)), repr(text)


@pytest.mark.slow
def test_block_cut_gives_jieba_s_words_on_chinese_pages(corpus):
    folder = corpus / "extraction" / "zh-dev"
    if not folder.exists():
        pytest.skip(f"zh-dev pages not found at {folder}")
    cut = shared_cut()
    pages = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    assert len(pages) >= 100
    for page in pages:
        html = gzip.decompress((folder / page["html_path"]).read_bytes()).decode(page["charset"], errors="replace")
        body = LexborHTMLParser(html).body
        text = body.text(separator="\n") if body is not None else ""
        assert cut(text) == list(jieba.cut(text, cut_all=False)), page["id"]


def test_the_word_automaton_holds_jieba_s_words(tmp_path, monkeypatch):
    monkeypatch.setenv("CCPIPE_CACHE", str(tmp_path))
    freq, total = jieba.Tokenizer.gen_pfdict(jieba.dt.get_dict_file())
    built = load_words()  # no cache yet: built from the prefix dictionary, then pickled
    read = load_words()  # from the cache
    for words, words_total in (built, read):
        assert words_total == total
        found = {}
        for k, value in words.items():
            word = k.encode("latin-1").decode("utf-16-be")[::-1]
            assert value & LENGTH_MASK == len(word)
            found[word] = value >> LENGTH_BITS
        assert found == {w: c for w, c in freq.items() if c}
    cache = next((tmp_path / "jieba").glob("*/words-*.pickle"))
    cache.write_bytes(cache.read_bytes()[:1000])  # a damaged cache is built again
    assert load_words()[0].exists(key("北京"))


ONE_CUT = """
from stages.text.words import word_tokenizer
quality, minhash = word_tokenizer("cmn_Hani"), word_tokenizer("cmn_Hani", fast=True)  # as each asks for it
assert quality.cut is minhash.cut
quality.word_tokenize("研究生命起源的北京研究生")
assert "研究生命起源的北京研究生" in minhash.cut.cache
assert quality.inner._tokenizer is None, "spaCy's pipeline built"
"""


def test_one_cut_is_shared_by_the_quality_filters_and_minhash():
    # in a fresh interpreter: the tokenizers are per process, and another test may have built spaCy's pipeline
    done = subprocess.run([sys.executable, "-c", ONE_CUT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
