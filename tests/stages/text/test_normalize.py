"""`stages.text.normalize.simplify_text` gives datatrove's `simplify_text` text, character for character."""

import gzip
import json
import random
from dataclasses import replace

from datatrove.utils.text import DEF_TEXT_NORM_CONFIG
from datatrove.utils.text import simplify_text as datatrove_simplify_text
from selectolax.lexbor import LexborHTMLParser

from stages.text.normalize import simplify_text

PIECES = [*"aAzZ09٣.,!?;:'\"()-_/\\@#%&*…—–’“”«»¡¿·•°€£", " ", "  ", "\t", "\n", "\r\n", "\xa0", "\u3000", "\u2028",
          "\u200b", "\x1c", "é", "É", "ñ", "ç", "ü", "ø", "ß", "İ", "ǅ", "e\u0301", "a\u0308\u0323", "ﬁ", "Ⅻ", "１", "ａ",
          "中文", "。", "，", "こんにちは", "한국어", "עברית", "عربي", "١٢٫٥", "Monday", "JANUARY", "may", "sunday",
          "3.14", "1,000", "😀", "𝔘"]
CONFIGS = [DEF_TEXT_NORM_CONFIG, replace(DEF_TEXT_NORM_CONFIG, lowercase=False, norm_numbers=False),
           replace(DEF_TEXT_NORM_CONFIG, remove_punctuation=False, norm_unicode_diacritics=False),
           replace(DEF_TEXT_NORM_CONFIG, norm_whitespace=False, norm_weekdays=True, norm_monthnames=True)]


def test_the_same_text_as_datatrove_on_fuzzed_strings():
    rng = random.Random(5)
    texts = ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 40))) for _ in range(20_000)]
    assert sum(t.isascii() for t in texts) > 100  # both paths
    for config in CONFIGS:
        for text in texts:
            assert simplify_text(text, config) == datatrove_simplify_text(text, config), (text, config)


def test_the_same_text_as_datatrove_on_the_extraction_corpus(corpus):
    """The English gold texts, and the text of the Chinese pages."""
    folder = corpus / "extraction"
    with open(folder / "scrapinghub-aeb" / "manifest.jsonl", encoding="utf-8") as f:
        texts = [json.loads(line)["gold_text"] for line in f]
    with open(folder / "zh-dev" / "manifest.jsonl", encoding="utf-8") as f:
        for line in list(f)[:40]:
            page = gzip.decompress((folder / "zh-dev" / json.loads(line)["html_path"]).read_bytes())
            texts.append(LexborHTMLParser(page.decode("utf-8", "replace")).text(separator="\n"))
    assert len(texts) > 200 and sum(not t.isascii() for t in texts) > 100
    for text in texts:
        assert simplify_text(text) == datatrove_simplify_text(text)
