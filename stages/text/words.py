"""Words, split once and shared: the quality filters and the MinHash signatures both take their words here.

- `shared_words()`: datatrove's English split (spaCy's blank English tokenizer), computed once per distinct
  whitespace-separated chunk and remembered across documents, steps and tasks.
- `word_tokenizer(key)`: datatrove's word tokenizer for a language (jieba for Chinese through `JiebaWords`,
  spaCy's rules for German, ...), built once per key and process.
"""

from __future__ import annotations

from functools import lru_cache

from datatrove.utils.text import split_into_sentences
from datatrove.utils.word_tokenizers import SpaCyTokenizer, load_word_tokenizer

from stages.text import english
from stages.text.chinese import JiebaWords, load_dictionary
from stages.text.english import blank_english
from stages.utils.loading import without_torch

WORD_CACHE_SIZE = 200_000  # distinct chunks remembered (~40 MB); cleared whole when over
_SHARED: SpacyWords | None = None
_SUFFIXES = frozenset(",;:!?.")


class SpacyWords:
    """datatrove's `split_into_words(text, "en")` (spaCy's blank English tokenizer), chunk by chunk.

    spaCy cuts text at every whitespace boundary before applying its prefix/suffix/infix rules and special
    cases, none of which contain whitespace; so the tokens of a text are the tokens of its `str.split()`
    chunks, and whitespace tokens are what datatrove strips away.
    """

    def __init__(self, cache_size: int = WORD_CACHE_SIZE):
        self.cache: dict[str, tuple[str, ...]] = {}
        self.cache_size = cache_size
        self._nlp = None
        self._special = None

    def __getstate__(self):
        return {"cache": {}, "cache_size": self.cache_size, "_nlp": None, "_special": None}

    def _pipeline(self):
        """spaCy's English tokenizer: its algorithm on its rules (stages/text/english.py; the same tokens
        without building spaCy's pipeline, 0.12 s), or spaCy itself where that is not the spaCy it mirrors."""
        if self._nlp is None:
            data = english.rules()
            if data is not None:
                self._nlp = english.Tokenizer(data)
            else:
                self._nlp = blank_english()
                # spaCy computes 23 lexical attributes (shape, norm, like_num, ...) in Python for each new word;
                # its tokenizer reads none of them (only the text: rules, prefixes, suffixes, infixes), and we
                # keep only the tokens' text: the 11,938 chunks spaCy splits on bench's English pages, 0.21 s
                # instead of 0.35 s, the same tokens
                self._nlp.vocab.lex_attr_getters = {}
        return self._nlp

    def _tokenize(self, chunks: list[str]) -> None:
        # a fresh tokenizer whenever our cache is cleared bounds spaCy's cache (and vocabulary) too
        tokenizer = self._pipeline()
        if isinstance(tokenizer, english.Tokenizer):
            for chunk in chunks:
                self.cache[chunk] = tuple(tokenizer.words(chunk))
            return
        tokenizer = tokenizer.tokenizer
        # one call per chunk: chunks joined by spaces in one call do not always come out the same
        # (after some history, "o.Ä." came back as "o", ".", "Ä." instead of "o.", "Ä.")
        for chunk in chunks:
            self.cache[chunk] = tuple(t.text for t in tokenizer(chunk))

    @property
    def special_cases(self) -> set[str]:
        if self._special is None:
            nlp = self._pipeline()
            self._special = set(nlp.specials) if isinstance(nlp, english.Tokenizer) else set(nlp.tokenizer.rules)
        return self._special

    def __call__(self, text: str) -> list[str]:
        chunks = text.split()
        cache = self.cache
        if len(cache) > self.cache_size:
            cache.clear()
            self._nlp = None
        missing = list(dict.fromkeys(c for c in chunks if c not in cache))
        if missing:
            # an ASCII word of letters only is one token unless it is a special case ("cannot", "gonna"); so is
            # one followed by one of spaCy's suffixes `,;:!?` (and `.` after a lower-case letter), which splits
            # off ("word," -> "word", ","), unless the chunk or the word is a special case ("etc.", "cannot,");
            # half the chunks spaCy was asked about on bench's English pages
            special = self.special_cases
            hard = []
            for c in missing:
                if c.isascii() and c.isalpha() and c not in special:
                    cache[c] = (c,)
                elif (c[-1:] in _SUFFIXES and c[:-1].isascii() and c[:-1].isalpha() and
                      (c[-1] != "." or c[-2].islower()) and c not in special and c[:-1] not in special):
                    cache[c] = (c[:-1], c[-1])
                else:
                    hard.append(c)
            if hard:
                self._tokenize(hard)
        return [w for c in chunks for w in cache[c]]


def shared_words() -> SpacyWords:
    """One per process, shared by the quality filters and MinHash signatures of every task it runs: building
    spaCy's pipeline costs ~0.2 s (~1 s for the first, which imports the spaCy plugins installed), and the
    words of common chunks are worth remembering across documents, steps and tasks."""
    global _SHARED
    if _SHARED is None:
        _SHARED = SpacyWords()
    return _SHARED


@lru_cache(maxsize=None)
def word_tokenizer(key: str, fast: bool = True):
    """datatrove's word tokenizer `key` (`load_word_tokenizer`), with spaCy imported without PyTorch first; with
    `fast`, Chinese words come from `JiebaWords` (the same words, without spaCy). Built once per key and
    process: the steps ask for it document by document.

    datatrove imports spaCy when a tokenizer is first used, and with torch installed (the `train` extra) spaCy
    imports it too: on the zh corpus that was 1.5 s and ~200 MB more per worker (536 MB peak), for
    segmentation rules that never use it.
    """
    tokenizer = load_word_tokenizer(key)
    if isinstance(tokenizer, SpaCyTokenizer):
        if fast and tokenizer.config == {"nlp": {"tokenizer": {"segmenter": "jieba"}}}:  # datatrove's Chinese
            return JiebaWords(tokenizer)
        if tokenizer.language == "zh":  # jieba's dictionary, before spaCy has jieba load it its own (slower) way
            load_dictionary()
        with without_torch():  # spaCy's import, and its first pipeline (which imports the spaCy plugins installed)
            tokenizer.tokenizer  # noqa: B018 (a property that builds the pipeline)
    return tokenizer


@lru_cache(maxsize=1)
def _english_sentences() -> english.Sentences | None:
    data = english.rules()
    return english.Sentences(data) if data is not None else None


def sentence_count(text: str) -> int:
    """`len(split_into_sentences(text))`, datatrove's English sentence split (spaCy's tokenizer and
    sentencizer), from spaCy's rules without building its pipeline (stages/text/english.py)."""
    sentences = _english_sentences()
    if sentences is None or "IS_ALPHA" in text:  # where datatrove's split takes its own detour
        with without_torch():  # datatrove builds its own spaCy pipeline here
            return len(split_into_sentences(text))
    return sentences.count(text)
