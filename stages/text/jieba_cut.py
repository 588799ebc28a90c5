"""jieba 0.42.1's `cut(text, cut_all=False)` (HMM on), word for word, at under half its cost.

jieba cuts a text into runs of Han characters, letters, digits and `+#&._%-` and segments each run on its own:
a DAG of the dictionary words found in the run (`get_DAG`), the most probable route through it (`calc`), and
an HMM (`finalseg`) over the characters the route leaves single and the dictionary does not join. Here:

- the DAG comes from one pass of an Aho-Corasick automaton of the dictionary's words (C, pyahocorasick) over
  the run read backwards, instead of a dict lookup per prefix of every position: jieba's scan stops at the
  first prefix that no word has, and its prefix dictionary holds every prefix of every word, so both find
  the same words. The automaton loads from a pickle in 0.06 s (`stages/text/chinese.py`), the 498,113-entry
  dict in 0.2 s;
- the route is `calc`'s, with the same floats in the same order (`log(freq) - log(total) + route`) and its ties
  to the longer word, as `max` over `(score, end)` tuples gives them;
- the HMM is `finalseg.viterbi` with back pointers instead of copied paths, its four states unrolled, each
  character's four emissions looked up once, the same sums and its ties to the later state letter.

On the 18,317 distinct runs (183,855 characters) of the 151 texts of warc/zh that reach the quality stage and
of their simplified forms: 0.62 s of CPU with jieba's `__cut_DAG`, 0.27 s here (least of 3 to 7 runs).
`BlockCut` remembers each run's words (the quality filters and MinHash segment the same runs: MinHash's
simplified text has punctuation as spaces). Tests check the words against jieba's on those texts, zh-dev's
pages and 100,000 fuzzed strings.
"""

from __future__ import annotations

from math import log

BLOCK_CACHE_SIZE = 200_000  # distinct runs remembered (~30 MB); cleared whole when over
LENGTH_BITS = 5  # an automaton value is count << 5 | length: jieba's longest word has 16 characters
LENGTH_MASK = (1 << LENGTH_BITS) - 1


def key(text: str) -> str:
    """`text` (characters of the Basic Multilingual Plane, as jieba's runs are) as the automaton reads it:
    backwards, two characters of 0-255 per character (its UTF-16 bytes). pyahocorasick looks a node's children
    up one by one, and its root has 11,772 (the dictionary's first characters) where it has 81 with two bytes
    a character: 0.23 s -> 0.10 s for the 184,000 characters of the runs of warc/zh's texts. A match of keys
    made so ends on a character's second byte, unless it began on a second byte: such matches are no words
    and are skipped."""
    return text[::-1].encode("utf-16-be").decode("latin-1")


_PREVIOUS = {"B": "ES", "M": "MB", "S": "SE", "E": "BM"}  # finalseg.PrevStatus, which `_viterbi` unrolls


class BlockCut:
    """jieba's `cut(text, cut_all=False)` as a list. `words`: an automaton of jieba's words of count > 0
    (value count << LENGTH_BITS | length) with the dictionary's `total`."""

    def __init__(self, jieba, words, total: int, cache_size: int = BLOCK_CACHE_SIZE):
        self.re_han, self.re_skip, self.finalseg = jieba.re_han_default, jieba.re_skip_default, jieba.finalseg
        self.words, self.logtotal = words, log(total)
        self.cache: dict[str, tuple[str, ...]] = {}
        self.cache_size = cache_size
        self._trans: tuple[float, ...] | None = None  # finalseg's transitions, as `_viterbi` reads them
        self._emits: dict[str, tuple[float, float, float, float]] = {}  # per character
        fs = self.finalseg
        if fs.PrevStatus != _PREVIOUS or set(fs.start_P) != set("BMES"):
            self._hmm_words = lambda run: list(fs.__dict__["__cut"](run))  # another HMM: jieba's own

    def __call__(self, text: str) -> list[str]:
        cache = self.cache
        if len(cache) > self.cache_size:
            cache.clear()
        words: list[str] = []
        for block in self.re_han.split(text):
            if not block:
                continue
            if self.re_han.match(block):
                cut = cache.get(block)
                if cut is None:
                    cut = cache[block] = tuple(self.cut_run(block))
                words.extend(cut)
            else:  # whitespace and "\r\n" as they are, anything else character by character
                for part in self.re_skip.split(block):
                    if self.re_skip.match(part):
                        words.append(part)
                    else:
                        words.extend(part)
        return words

    def route(self, run: str) -> list[int]:
        """jieba's `calc` over `get_DAG`: for each position, the end (exclusive) of the word the best route
        takes from there. The automaton reads the run backwards, so its words come by start, last first, as
        `calc` scores the positions."""
        n, logtotal = len(run), self.logtotal
        score = [0.0] * (n + 1)
        ends = list(range(1, n + 1))  # no word of the dictionary: the character alone
        at, best = n, None  # the position being scored, its best score so far
        for last, value in self.words.iter(key(run)):
            if not last & 1:  # a match that starts with a character's second byte is no word of the run
                continue
            start = n - 1 - (last >> 1)
            if start != at:  # the words from `at` all seen: score the positions down to `start`
                if best is not None:
                    score[at] = best
                for i in range(at - 1, start, -1):  # jieba's DAG: the character alone, count `FREQ.get(c) or 1`
                    score[i] = 0.0 - logtotal + score[i + 1]
                at, best = start, None
            stop = start + (value & LENGTH_MASK)
            s = log(value >> LENGTH_BITS) - logtotal + score[stop]
            # max((s, x)) over the words: an equal score goes to the longer word
            if best is None or s > best or (s == best and stop > ends[start]):
                best, ends[start] = s, stop
        if best is not None:
            score[at] = best
        for i in range(at - 1, -1, -1):
            score[i] = 0.0 - logtotal + score[i + 1]
        return ends

    def cut_run(self, run: str) -> list[str]:
        """jieba's `Tokenizer.__cut_DAG(run)`."""
        ends, out = self.route(run), []
        x, n, buf = 0, len(run), ""
        while x < n:
            y = ends[x]
            if y - x == 1:
                buf += run[x]
            else:
                if buf:
                    self._single(buf, out)
                    buf = ""
                out.append(run[x:y])
            x = y
        if buf:
            self._single(buf, out)
        return out

    def _single(self, buf: str, out: list[str]) -> None:
        """Characters the route left alone: one as it is, several through the HMM unless they are a word."""
        if len(buf) == 1:
            out.append(buf)
        elif key(buf) not in self.words:
            out.extend(self._hmm(buf))
        else:
            out.extend(buf)

    def _hmm(self, sentence: str):
        """jieba's `finalseg.cut`."""
        fs = self.finalseg
        for blk in fs.re_han.split(sentence):
            if fs.re_han.match(blk):
                for word in self._hmm_words(blk):
                    if word not in fs.Force_Split_Words:
                        yield word
                    else:
                        yield from word
            else:
                for x in fs.re_skip.split(blk):
                    if x:
                        yield x

    def _hmm_words(self, run: str) -> list[str]:
        """jieba's `finalseg.__cut`: the words of the most probable B/M/E/S tags."""
        tags = self._viterbi(run)
        words, begin, nexti = [], 0, 0
        for i, tag in enumerate(tags):
            if tag == "B":
                begin = i
            elif tag == "E":
                words.append(run[begin:i + 1])
                nexti = i + 1
            elif tag == "S":
                words.append(run[i])
                nexti = i + 1
        if nexti < len(run):
            words.append(run[nexti:])
        return words

    def _viterbi(self, obs: str) -> list[str]:
        """`finalseg.viterbi(obs, "BMES", ...)`'s path. Each state's best predecessor is the `max` of
        `(V[y0] + trans[y0][y] + emit, y0)` over its two: an equal sum goes to the later letter."""
        if self._trans is None:
            fs, lo = self.finalseg, self.finalseg.MIN_FLOAT
            self._trans = tuple(fs.trans_P[a].get(b, lo) for a, b in ("EB", "SB", "BM", "MM", "ES", "SS", "BE", "ME"))
        tEB, tSB, tBM, tMM, tES, tSS, tBE, tME = self._trans
        emits = self._emits
        e = emits.get(obs[0]) or self._emit(obs[0])
        start = self.finalseg.start_P
        vB, vM, vE, vS = start["B"] + e[0], start["M"] + e[1], start["E"] + e[2], start["S"] + e[3]
        back = []  # per position after the first: the predecessors of B, M, E, S
        for c in obs[1:]:
            eB, eM, eE, eS = emits.get(c) or self._emit(c)
            a, b = vE + tEB + eB, vS + tSB + eB
            nB, pB = (b, "S") if b >= a else (a, "E")
            a, b = vB + tBM + eM, vM + tMM + eM
            nM, pM = (b, "M") if b >= a else (a, "B")
            a, b = vB + tBE + eE, vM + tME + eE
            nE, pE = (b, "M") if b >= a else (a, "B")
            a, b = vE + tES + eS, vS + tSS + eS
            nS, pS = (b, "S") if b >= a else (a, "E")
            vB, vM, vE, vS = nB, nM, nE, nS
            back.append(pB + pM + pE + pS)
        state = "S" if vS >= vE else "E"
        tags = [state]
        for step in reversed(back):
            state = step["BMES".index(state)]
            tags.append(state)
        tags.reverse()
        return tags

    def _emit(self, c: str) -> tuple[float, float, float, float]:
        """The HMM's emission log-probabilities of `c` in states B, M, E, S (`emit_P[y].get(c, MIN_FLOAT)`)."""
        fs = self.finalseg
        e = self._emits[c] = tuple(fs.emit_P[y].get(c, fs.MIN_FLOAT) for y in "BMES")
        return e
