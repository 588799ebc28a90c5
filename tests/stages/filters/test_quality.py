import gzip
import json
import random

import pytest
from datatrove.utils.text import split_into_words

from pipeline.plan.config import QualityConfig
from stages.filters.langid import html_text
from stages.filters.quality import (
    C4Quality,
    FineWebQuality,
    GopherQuality,
    GopherRepetition,
    QualityFilters,
    SpacyWords,
    quality_filters,
)
from stages.text.ngrams import TopDuplicates, repeated_chars, top_duplicate_chars
from stages.text.words import blank_english
from tests.fixtures import make_doc

GOOD = """The village council met on a rainy evening in early October to discuss the state of the old bridge.
Several farmers explained that they needed it repaired before the harvest, since the detour through the hills added an hour to every trip.
The treasurer reported that the repair fund held enough money for new timber but not for a stone foundation.
After a long debate, the members agreed to ask the neighbouring town for a loan and to start work within a month.
One elderly resident reminded everyone that the bridge had been rebuilt twice before, once after a flood and once after a fire.
Children from the local school had drawn pictures of the bridge, and these were displayed on the walls of the meeting hall.
The mayor thanked the volunteers who had cleared fallen branches from the river banks during the summer storms.
Before closing the meeting, the council scheduled a public hearing so that every household could comment on the plan."""


def test_good_text_passes_all_four():
    for f in quality_filters(QualityConfig(), "unused"):
        assert f.filter(make_doc(GOOD)) is True, f.name


def test_reasons_are_prefixed_snake_case():
    assert GopherRepetition().filter(make_doc("spam spam spam\n" * 50)) == (False, "gopher_rep_dup_line_frac")
    assert GopherQuality().filter(make_doc("too short")) == (False, "gopher_short_doc")
    assert C4Quality(filter_no_terminal_punct=False).filter(make_doc(GOOD + "\nvar x = {a: 1};")) == (False, "c4_curly_bracket")
    assert FineWebQuality().filter(make_doc("a\nb\nc\nd")) == (False, "fineweb_line_punct_ratio")


def test_filters_can_be_switched_off():
    assert len(quality_filters(QualityConfig(c4=False, fineweb=False, fast=False), "unused")) == 2
    (one_pass,) = quality_filters(QualityConfig(c4=False, fineweb=False), "unused")
    assert one_pass.c4 is None and one_pass.fw is None and one_pass.rep is not None
    doc = make_doc(GOOD + "\nvar x = {a: 1};")
    assert one_pass.filter(doc) is True and doc.text.endswith("{a: 1};")


# ------------------------------------------------------------------ the one pass (quality.fast, the default)

DATATROVE_CHAIN = (GopherRepetition, GopherQuality, lambda: C4Quality(filter_no_terminal_punct=False), FineWebQuality)


def chain_decision(text: str):
    doc = make_doc(text)
    for make in DATATROVE_CHAIN:
        result = make().filter(doc)
        if result is not True:
            return result, doc.text
    return True, doc.text


def test_one_pass_builds_by_default_and_datatrove_filters_on_request():
    assert [type(f) for f in quality_filters(QualityConfig(), "unused")] == [QualityFilters]
    assert [type(f).__name__ for f in quality_filters(QualityConfig(fast=False), "unused")] == [
        "GopherRepetitionFilter", "GopherQualityFilter", "C4QualityFilter", "FineWebQualityFilter"]
    assert quality_filters(QualityConfig(gopher_repetition=False, gopher_quality=False, c4=False, fineweb=False),
                           "unused") == []


def test_one_pass_reasons_signals_and_detail():
    q = QualityFilters()
    doc = make_doc("spam spam spam\n" * 50)
    assert q.filter(doc) == (False, "gopher_rep_dup_line_frac")
    assert doc.metadata["drop_detail"] == "dup_line_frac 0.9608 > 0.3"
    assert doc.metadata["quality_signals"]["gopher_rep_dup_line_frac"] == pytest.approx(49 / 51)
    doc = make_doc("too short")
    assert chain_decision("too short")[0] == q.filter(doc) == (False, "gopher_rep_top_2_gram")
    assert QualityFilters(gopher_repetition=False).filter(doc) == (False, "gopher_short_doc")
    assert doc.metadata["drop_detail"] == "word_count 2 < 50"
    assert q.filter(make_doc(GOOD + "\nvar x = {a: 1};")) == (False, "c4_curly_bracket")
    doc = make_doc(GOOD)
    assert q.filter(doc) is True
    signals = doc.metadata["quality_signals"]
    assert signals["gopher_word_count"] == 164 and signals["fineweb_line_punct_ratio"] == 1.0
    assert {"gopher_rep_duplicated_10_n_grams", "c4_too_few_sentences", "fineweb_list_ratio"} <= set(signals)


def test_c4_rewrite_is_datatrove_s():
    text = GOOD + "\nPlease enable JavaScript to view the comments.\nok\nRead our privacy policy here today."
    doc = make_doc(text)
    assert QualityFilters(fineweb=False).filter(doc) is True
    assert doc.text == chain_decision(text)[1] == GOOD


@pytest.mark.parametrize("text", [
    "o.Ä. cannot gonna Im im U.S. don't e-mail http://x.org/a?b=1 (see [1]) 3.5kg 10,000 :) — “quoted” ...",
    "Kurtaxe o.Ä.\n- 30% Anzahlung\n\n\tTabs\u00a0and\u2009odd spaces \x1c here",
    "日本語のテキスト、句読点。 混在 text",
    "Hello. hello, etc. etc, cannot, gonna. A. aB. ABC. U.S. vs. e.g., Mr. mr. Inc. ok! ok? ok: ok; a. I.",
    "",
])
def test_words_are_spacys(text):
    assert SpacyWords()(text) == split_into_words(text)


def test_ngram_helpers_equal_datatrove_s():
    from datatrove.pipeline.filters.gopher_repetition_filter import (
        find_all_duplicate,
        find_top_duplicate,
        get_n_grams,
    )

    words = ["a", "b", "ab", "a", "b", "ab", "ba", "a", "b", "a", "b", "c", "ab", "c", "a", "b"] + ["", "ab", ""]
    for n in range(1, 8):
        assert repeated_chars(words, n) == find_all_duplicate(words, n)
        grams = get_n_grams(words, n)
        assert top_duplicate_chars(words, n) == (find_top_duplicate(grams) if grams else None)
        assert TopDuplicates(words)(n) == top_duplicate_chars(words, n)
    rng = random.Random(5)  # words of 1-3 characters, as jieba's: n-grams shorter than KEY_CHARS
    for _ in range(200):
        words = ["".join(rng.choices("ab", k=rng.randint(1, 3))) for _ in range(rng.randint(0, 60))]
        for n in range(1, 11):
            assert repeated_chars(words, n) == find_all_duplicate(words, n), (words, n)


def real_texts(corpus, limit: int) -> list[str]:
    """Web text of every kind: the trafilatura benchmark's pages as raw HTML text (menus, lists, many languages)
    and the scrapinghub benchmark's gold article texts."""
    texts = []
    with open(corpus / "extraction" / "trafilatura" / "manifest.jsonl") as f:
        for line in list(f)[:limit]:
            page = json.loads(line)
            with gzip.open(corpus / "extraction" / "trafilatura" / page["html_path"]) as h:
                html = h.read().decode("utf-8", errors="replace")
            texts.append(html_text(html).replace("  ", "\n"))
    with open(corpus / "extraction" / "scrapinghub-aeb" / "manifest.jsonl") as f:
        texts += [json.loads(line)["gold_text"] for line in f][:limit]
    return [t for t in texts if t]


@pytest.mark.slow
def test_words_are_spacys_on_real_text(corpus):
    texts = real_texts(corpus, limit=250)
    chunks = sorted({c for t in texts for c in t.split()})
    assert len(chunks) > 50_000
    nlp, words = blank_english(), SpacyWords()
    for chunk in chunks:  # spaCy never looks across whitespace: chunk by chunk is the whole text
        assert words(chunk) == [t.text for t in nlp.tokenizer(chunk)], chunk
    for text in texts[:40]:
        assert SpacyWords()(text) == split_into_words(text)


@pytest.mark.slow
def test_one_pass_decides_as_datatrove_on_real_text(corpus):
    texts = real_texts(corpus, limit=250)
    q = QualityFilters()
    reasons = set()
    for text in texts:
        expected, expected_text = chain_decision(text)
        doc = make_doc(text)
        assert q.filter(doc) == expected, text[:200]
        if expected is True:
            assert doc.text == expected_text
        else:
            reasons.add(expected[1])
    # the corpus exercises many exits, not only the first one
    assert len(reasons) >= 8, reasons
