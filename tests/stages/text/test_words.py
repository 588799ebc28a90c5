"""Shared word splitting (stages/text/words.py): the words datatrove's tokenizers give, without spaCy's Docs."""

import pytest
from datatrove.utils.text import TextNormConfig, simplify_text
from datatrove.utils.word_tokenizers import load_word_tokenizer

from stages.text.chinese import JiebaWords
from stages.text.words import word_tokenizer
from tests.stages.recipes.test_profiles import ZH, texts_reaching_quality

ZH_TRICKY = ("北京欢迎你。 Hello,  world!\n\n第二段\t有 tab 和  两个空格  。\u3000全角空格；English words here 3.5kg\n"
             "  首尾空白  \n")


def test_chinese_words_are_datatrove_s_without_spacy_docs():
    fast, datatrove = word_tokenizer("cmn_Hani"), load_word_tokenizer("cmn_Hani")
    assert isinstance(fast, JiebaWords)
    for text in (ZH_TRICKY, ZH, "", "   ", "只有中文", "only english words", "\n\n"):
        assert fast.word_tokenize(text) == datatrove.word_tokenize(text), text


@pytest.mark.slow
def test_chinese_words_are_datatrove_s_on_real_pages(corpus):
    files = sorted(str(p) for p in (corpus / "warc" / "zh").glob("*.warc.gz"))
    texts = [d.text for d in texts_reaching_quality(["zh"], files) if d.metadata["language"] == "zh"]
    texts += [simplify_text(t, TextNormConfig()) for t in texts]  # what MinHash signatures split
    assert len(texts) > 200
    fast, datatrove = word_tokenizer("cmn_Hani"), load_word_tokenizer("cmn_Hani")
    for text in texts:
        assert fast.word_tokenize(text) == datatrove.word_tokenize(text), text[:200]
