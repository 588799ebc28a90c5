"""The n-gram counts of Gopher's repetition filter without Python loops over every position, each equal to
datatrove's own function (`find_top_duplicate(get_n_grams(...))`, `find_all_duplicate`). `stages/filters/quality.py`
uses them.
"""

from __future__ import annotations

from collections import Counter
from itertools import accumulate

import numpy as np


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


class TopDuplicates:
    """`top_duplicate_chars(words, n)` for each n over the same words, counted in numpy: each distinct word gets
    a number, an n-gram the number `w1 * V^(n-1) + ... + wn` (V distinct words; where that could pass 2^62, the
    tuples are counted instead), and `np.unique` counts them. The top n-gram is the most common one that occurs
    first, as `Counter.most_common` keeps the first seen among ties. Bench's English pages, n = 2, 3, 4: 0.11 s
    instead of 0.17-0.22 s, the same values."""

    def __init__(self, words: list[str]):
        self.words = words
        number = {w: i for i, w in enumerate(dict.fromkeys(words))}
        self.ids = np.fromiter(map(number.__getitem__, words), dtype=np.int64, count=len(words))
        self.distinct = len(number)

    def __call__(self, n: int) -> int | None:
        words, ids = self.words, self.ids
        m = len(words) - n + 1  # n-grams
        if m <= 0:
            return None
        if self.distinct ** n >= 1 << 62:
            return top_duplicate_chars(words, n)
        key = ids[:m]
        for j in range(1, n):
            key = key * self.distinct + ids[j:j + m]
        _, first, counts = np.unique(key, return_index=True, return_counts=True)
        count = counts.max()
        i = int(first[counts == count].min())
        return (sum(map(len, words[i:i + n])) + n - 1) * int(count)


KEY_CHARS = 16  # the characters that open every n-gram of a position, compared first (repeated_chars)
SHORT_KEY_CHARS = 4  # the same for n-grams of 4 to 15 characters (Chinese words are 1-3 characters)


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
    that (bench's English pages: 0.81 s -> 0.2 s for n = 5..10, the same values). Those shorter than that and
    of `SHORT_KEY_CHARS` characters or more likewise need their first `SHORT_KEY_CHARS` characters at another
    position: on the 151 texts of warc/zh (n = 5..10 over jieba's words), 0.16 s -> 0.10 s.
    """

    def __init__(self, words: list[str]):
        self.offsets = list(accumulate(map(len, words), initial=0))
        self.text = "".join(words)
        self.shared = self._shared(KEY_CHARS)
        self.shared_short = self._shared(SHORT_KEY_CHARS)
        self.np_offsets = np.asarray(self.offsets, dtype=np.int64)

    def _shared(self, chars: int) -> np.ndarray:
        """For each position, whether the `chars` characters it opens with open another position too."""
        keys = [self.text[o:o + chars] for o in self.offsets[:-1]]
        seen = Counter(keys)
        return np.fromiter((seen[k] > 1 for k in keys), dtype=bool, count=len(keys))

    def __call__(self, n: int) -> int:
        o, text, m = self.offsets, self.text, len(self.offsets) - n  # m: positions with an n-gram
        if m <= 0:
            return 0
        chars = self.np_offsets[n:n + m] - self.np_offsets[:m]
        shared = np.where(chars >= KEY_CHARS, self.shared[:m], self.shared_short[:m] | (chars < SHORT_KEY_CHARS))
        starts = np.flatnonzero(shared).tolist()
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
