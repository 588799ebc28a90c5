"""Words as datatrove's English filters see them (spaCy's blank English tokenizer), computed once per
distinct whitespace-separated chunk, and the n-gram counts of Gopher's repetition filter without Python
loops over every position. `stages/quality.py` uses them; each equals datatrove's own function.
"""

from __future__ import annotations

from collections import Counter

from stages import without_torch

WORD_CACHE_SIZE = 200_000  # distinct chunks remembered (~40 MB); cleared whole when over
_SHARED: SpacyWords | None = None


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


def repeated_chars(words: list[str], n: int) -> int:
    """datatrove's `find_all_duplicate(words, n)`, without its Python loop over every position.

    Its loop: at each position, an n-gram (joined without spaces) seen at a position it visited counts its
    characters and jumps n ahead; an unseen one is remembered and the loop steps by one. Only n-grams that
    occur more than once anywhere can ever count, so we visit only their positions: one is visited unless a
    jump passed over it, and it counts when an earlier occurrence of the same n-gram was visited.
    """
    grams = ["".join(words[i:i + n]) for i in range(len(words) - n + 1)]
    counts = Counter(grams)
    if len(counts) == len(grams):
        return 0
    visited: set[str] = set()  # repeated n-grams at positions the loop visited
    total, pos = 0, 0
    for i in (i for i, g in enumerate(grams) if counts[g] > 1):
        if i < pos:  # passed over by a jump: never visited
            continue
        gram = grams[i]
        if gram in visited:
            total += len(gram)
            pos = i + n
        else:
            visited.add(gram)
            pos = i + 1
    return total


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
            # an ASCII word of letters only is one token unless it is a special case ("cannot", "gonna")
            special = self.special_cases
            hard = []
            for c in missing:
                if c.isascii() and c.isalpha() and c not in special:
                    cache[c] = (c,)
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
