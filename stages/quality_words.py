"""Words as datatrove's English filters see them (spaCy's blank English tokenizer), computed once per
distinct whitespace-separated chunk, and the n-gram counts of Gopher's repetition filter without Python
loops over every position. `stages/quality.py` uses them; each equals datatrove's own function.
"""

from __future__ import annotations

from collections import Counter
from itertools import accumulate

import numpy as np

from stages import without_torch

WORD_CACHE_SIZE = 200_000  # distinct chunks remembered (~40 MB); cleared whole when over
_SHARED: SpacyWords | None = None
_SUFFIXES = frozenset(",;:!?.")


def top_duplicate_chars(words: list[str], n: int) -> int | None:
    """datatrove's `find_top_duplicate(get_n_grams(words, n))`: the most common n-gram (the first seen among
    ties) times its length as words joined by spaces; None without any n-gram.

    Counted as tuples of words, in C: no word holds whitespace (words come from `str.split()` chunks), so
    joining with spaces maps distinct tuples to distinct strings and the counts and their order are the same.
    """
    grams = list(zip(*(words[i:] for i in range(n))))
    if not grams:
        return None
    gram, count = Counter(grams).most_common(1)[0]
    return (sum(map(len, gram)) + n - 1) * count


KEY_CHARS = 16  # the characters that open every n-gram of a position, compared first (repeated_chars)


class RepeatedChars:
    """datatrove's `find_all_duplicate(words, n)` for each n, without its Python loop over every position,
    and building the n-grams only where one can repeat.

    Its loop: at each position, an n-gram (joined without spaces) seen at a position it visited counts its
    characters and jumps n ahead; an unseen one is remembered and the loop steps by one. Only n-grams that
    occur more than once anywhere can ever count, so we visit only their positions: one is visited unless a
    jump passed over it, and it counts when an earlier occurrence of the same n-gram was visited.

    Which positions can hold a repeated n-gram: two equal n-grams of `KEY_CHARS` characters or more open with
    the same `KEY_CHARS` characters of the joined text, whatever the n. So the n-grams are built only at the
    positions whose opening characters occur at another position too, and where the n-gram is shorter than
    that (bench's English pages: 0.81 s -> 0.2 s for n = 5..10, the same values).
    """

    def __init__(self, words: list[str]):
        self.offsets = list(accumulate(map(len, words), initial=0))
        self.text = "".join(words)
        keys = [self.text[o:o + KEY_CHARS] for o in self.offsets[:-1]]
        seen = Counter(keys)
        self.shared = np.fromiter((seen[k] > 1 for k in keys), dtype=bool, count=len(keys))
        self.np_offsets = np.asarray(self.offsets, dtype=np.int64)

    def __call__(self, n: int) -> int:
        o, text, m = self.offsets, self.text, len(self.offsets) - n  # m: positions with an n-gram
        if m <= 0:
            return 0
        short = (self.np_offsets[n:n + m] - self.np_offsets[:m]) < KEY_CHARS
        starts = np.flatnonzero(self.shared[:m] | short).tolist()
        grams = [text[o[i]:o[i + n]] for i in starts]
        counts = Counter(grams)
        if len(counts) == len(grams):
            return 0
        visited: set[str] = set()  # repeated n-grams at positions the loop visited
        total, pos = 0, 0
        for i, gram in zip(starts, grams):
            if counts[gram] < 2 or i < pos:  # never counts, or passed over by a jump: never visited
                continue
            if gram in visited:
                total += len(gram)
                pos = i + n
            else:
                visited.add(gram)
                pos = i + 1
        return total


def repeated_chars(words: list[str], n: int) -> int:
    """datatrove's `find_all_duplicate(words, n)` (see RepeatedChars, for several n over the same words)."""
    return RepeatedChars(words)(n)


def blank_english():
    """spaCy's blank English pipeline (its tokenizer only), built without importing PyTorch."""
    with without_torch():
        import spacy

        return spacy.blank("en")


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

    def _tokenize(self, chunks: list[str]) -> None:
        if self._nlp is None:
            # a fresh pipeline whenever our cache is cleared bounds spaCy's vocabulary too
            self._nlp = blank_english()
        tokenizer = self._nlp.tokenizer
        # one call per chunk: chunks joined by spaces in one call do not always come out the same
        # (after some history, "o.Ä." came back as "o", ".", "Ä." instead of "o.", "Ä.")
        for chunk in chunks:
            self.cache[chunk] = tuple(t.text for t in tokenizer(chunk))

    @property
    def special_cases(self) -> set[str]:
        if self._special is None:
            if self._nlp is None:
                self._nlp = blank_english()
            self._special = set(self._nlp.tokenizer.rules)
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
