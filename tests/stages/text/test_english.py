"""spaCy's English tokenizer run from its rules (stages/text/english.py): the same tokens as spaCy's own, its
cache's history included, and the same sentence counts as datatrove's `split_into_sentences`."""

import json
import random

import pytest
import spacy
from datatrove.utils.text import split_into_sentences, split_into_words

from stages.text import english
from stages.text.english import Sentences, Tokenizer, blank_english
from stages.text.words import SpacyWords, sentence_count

pytestmark = pytest.mark.skipif(not spacy.__version__.startswith(english.SUPPORTED),
                                reason=f"mirrors spaCy {english.SUPPORTED}x's tokenizer")

PIECES = [*"aAbBeEgGiImMsStTxXzZ0123456789.,;:!?'\"()[]{}<>-_/\\@#$%^&*+=~`|…—–’“”«»¡¿°§•€£©®™ÄäöÜßéñçø中ですカ한😀",
          "'s", "n't", "e.g.", "U.S.", ":)", "10a.m.", "http://", "https://x.org/a?b=c", ".com", "www.", "Mr.",
          "'ll", "...", "--", "o.Ä.", "a.m.", "No.", "can", "not", "gon", "na"]
SPACES = [" ", " ", " ", "  ", "\t", "\xa0", " \t", "\u3000", "   "]


@pytest.fixture(scope="module")
def rules():
    return english.rules()


def english_texts(corpus, limit: int = 120) -> list[str]:
    """Gold texts of the extraction corpus' English pages."""
    with open(corpus / "extraction" / "scrapinghub-aeb" / "manifest.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["gold_text"] for line in f][:limit]


def fuzzed(rng: random.Random, pieces: list[str], n: int, most: int) -> list[str]:
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(1, most))) for _ in range(n)]


def assert_same_words(rules, chunks: list[str]) -> None:
    """Chunk after chunk through one tokenizer of each kind, as SpacyWords calls them (spaCy's cache fills
    as it goes)."""
    ours, theirs = Tokenizer(rules), blank_english().tokenizer
    for chunk in chunks:
        assert ours.words(chunk) == [t.text for t in theirs(chunk)], chunk


def test_the_rules_are_cached_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("CCPIPE_CACHE", str(tmp_path))
    english.rules.cache_clear()
    try:
        built = english.rules()
        [path] = (tmp_path / "spacy-en").glob("*.json")
        english.rules.cache_clear()
        assert english.rules() == built  # from the file
        path.write_text("{not json")
        english.rules.cache_clear()
        assert english.rules() == built  # unreadable: read from spaCy again, and written again
        assert json.loads(path.read_text()) == built
        monkeypatch.setattr(english, "SUPPORTED", "0.0.")
        english.rules.cache_clear()
        assert english.rules() is None  # another spaCy: SpacyWords and sentence_count use spaCy itself
        assert SpacyWords()("Hello, world: it's e.g. 10a.m.") == split_into_words("Hello, world: it's e.g. 10a.m.")
    finally:
        english.rules.cache_clear()
    tokenizer = blank_english().tokenizer
    assert set(built["specials"]) == set(tokenizer.rules)
    assert built["prefix"] == [tokenizer.prefix_search.__self__.pattern, tokenizer.prefix_search.__self__.flags]


def test_the_matcher_patterns_are_spacys_pieces_without_special_cases(rules):
    """spaCy finds a special case with an affix again by its pieces as cut without special cases: those of a
    spaCy tokenizer with no special cases."""
    nlp = blank_english()
    tokenizer = nlp.tokenizer
    plain = type(tokenizer)(nlp.vocab, rules={}, prefix_search=tokenizer.prefix_search,
                            suffix_search=tokenizer.suffix_search, infix_finditer=tokenizer.infix_finditer,
                            token_match=tokenizer.token_match, url_match=tokenizer.url_match)
    assert len(rules["matched"]) > 300
    with nlp.memory_zone():  # no cache: each special case alone, as spaCy adds it
        for chunk, pieces in rules["matched"].items():
            assert [t.text for t in plain(chunk)] == pieces, chunk


def test_words_are_spacys_on_english_pages(corpus, rules):
    chunks = list(dict.fromkeys(c for text in english_texts(corpus) for c in text.split()))
    assert len(chunks) > 10_000
    assert_same_words(rules, chunks)


def test_words_are_spacys_on_fuzzed_strings(rules):
    rng = random.Random(7)
    specials = list(rules["matched"])
    chunks = fuzzed(rng, PIECES, 20_000, 10)
    chunks += ["".join(s.split()) or "x" for s in fuzzed(rng, specials + PIECES[:60], 20_000, 4)]
    assert_same_words(rules, chunks)
    # the special cases found again after the split came into play
    plain = Tokenizer(rules)
    plain.patterns = {}
    assert sum(Tokenizer(rules).words(c) != plain.words(c) for c in chunks[20_000:]) > 100


def test_sentence_counts_are_datatroves(corpus, rules):
    sentences = Sentences(rules)
    lines = [line.strip() for text in english_texts(corpus, 60) for line in text.splitlines() if line.strip()]
    rng = random.Random(11)
    for _ in range(8_000):
        line = "".join(rng.choice(PIECES + list(rules["matched"])[:80]) + rng.choice(SPACES)
                       for _ in range(rng.randint(1, 10))).strip()
        if line:
            lines.append(line)
    assert len(lines) > 9_000
    for line in lines:
        assert sentences.count(line) == len(split_into_sentences(line)), line
        assert sentence_count(line) == sentences.count(line)
    assert sentence_count("IS_ALPHA. Then more.") == len(split_into_sentences("IS_ALPHA. Then more."))
