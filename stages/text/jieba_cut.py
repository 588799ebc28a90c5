"""jieba 0.42.1's `cut(text, cut_all=False)` (HMM on), word for word, at half its cost.

jieba cuts a text into runs of Han characters, letters, digits and `+#&._%-` and segments each run on its own:
a DAG of the dictionary words found in the run (`get_DAG`), the most probable route through it (`calc`), and
an HMM (`finalseg`) over the characters the route leaves single and the dictionary does not join. Here:

- the DAG comes from one pass of an Aho-Corasick automaton of the dictionary's words (C, pyahocorasick) instead
  of a dict lookup per prefix of every position: jieba's scan stops at the first prefix that no word has, and
  its prefix dictionary holds every prefix of every word, so both find the same words. The automaton loads
  from a pickle in 0.06 s (`stages/text/chinese.py`), the 498,113-entry dict in 0.2 s;
- the route is `calc`'s, with the same floats in the same order (`log(freq) - log(total) + route`) and its ties
  to the longer word, as `max` over `(score, end)` tuples gives them;
- the HMM is `finalseg.viterbi` with back pointers instead of copied paths, its four states unrolled, the same
  sums and its ties to the later state letter.

On the 18,317 distinct runs (183,855 characters) of the 151 texts of warc/zh that reach the quality stage and
of their simplified forms: 0.59 s of CPU with jieba's `__cut_DAG`, 0.30 s here. `BlockCut` remembers each
run's words (the quality filters and MinHash segment the same runs: MinHash's simplified text has punctuation
as spaces). Tests check the words against jieba's on those texts, zh-dev's pages and 100,000 fuzzed strings.
"""

from __future__ import annotations

from math import log

BLOCK_CACHE_SIZE = 200_000  # distinct runs remembered (~30 MB); cleared whole when over
LENGTH_BITS = 5  # an automaton value is count << 5 | length: jieba's longest word has 16 characters
LENGTH_MASK = (1 << LENGTH_BITS) - 1


def key(text: str) -> str:
    """`text` (characters of the Basic Multilingual Plane, as jieba's runs are) as the automaton reads it: two
    characters of 0-255 per character, its UTF-16 bytes. pyahocorasick looks a node's children up one by one,
    and its root has 11,772 (the dictionary's first characters) where it has 81 with two bytes a character: 0.23 s
    -> 0.10 s for the 184,000 characters of the runs of warc/zh's texts. A match of keys made so ends on a
    character's second byte, unless it began on a second byte: such matches are no words and are skipped."""
    return text.encode("utf-16-be").decode("latin-1")


_PREVIOUS = {"B": "ES", "M": "MB", "S": "SE", "E": "BM"}  # finalseg.PrevStatus, which `_viterbi` unrolls


class BlockCut:
    """jieba's `cut(text, cut_all=False)` as a list. `words`: an automaton of jieba's words of count > 0
    (value count << LENGTH_BITS | length) with the dictionary's `total`."""

    def __init__(self, jieba, words, total: int, cache_size: int = BLOCK_CACHE_SIZE):
        self.re_han, self.re_skip, self.finalseg = jieba.re_han_default, jieba.re_skip_default, jieba.finalseg
        self.words, self.logtotal = words, log(total)
        self.cache: dict[str, tuple[str, ...]] = {}
        self.cache_size = cache_size
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
        takes from there."""
        n, logtotal = len(run), self.logtotal
        starts: list[list] = [[] for _ in range(n)]
        for last, value in self.words.iter(key(run)):  # by last character: each start's words shortest first
            if last & 1:  # a match that starts with a character's second byte is no word of the run
                stop = (last + 1) >> 1
                starts[stop - (value & LENGTH_MASK)].append((stop, value >> LENGTH_BITS))
        score = [0.0] * (n + 1)
        ends = [0] * n
        for i in range(n - 1, -1, -1):
            found = starts[i]
            if not found:  # jieba's DAG holds the character alone, count `FREQ.get(c) or 1`
                score[i], ends[i] = 0.0 - logtotal + score[i + 1], i + 1
                continue
            best, end = None, 0
            for stop, count in found:
                s = log(count) - logtotal + score[stop]
                if best is None or s >= best:  # max((s, x)): an equal score goes to the longer word
                    best, end = s, stop
            score[i], ends[i] = best, end
        return ends

    def cut_run(self, run: str):
        """jieba's `Tokenizer.__cut_DAG(run)`."""
        ends, words = self.route(run), self.words
        x, n, buf = 0, len(run), ""
        while x < n:
            y = ends[x]
            if y - x == 1:
                buf += run[x]
            else:
                if buf:
                    yield from self._single(buf, words)
                    buf = ""
                yield run[x:y]
            x = y
        if buf:
            yield from self._single(buf, words)

    def _single(self, buf: str, words):
        """Characters the route left alone: one as it is, several through the HMM unless they are a word."""
        if len(buf) == 1:
            yield buf
        elif key(buf) not in words:
            yield from self._hmm(buf)
        else:
            yield from buf

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
        fs = self.finalseg
        lo = fs.MIN_FLOAT
        start, trans, emit = fs.start_P, fs.trans_P, fs.emit_P
        eB, eM, eE, eS = emit["B"], emit["M"], emit["E"], emit["S"]
        tEB, tSB = trans["E"].get("B", lo), trans["S"].get("B", lo)
        tBM, tMM = trans["B"].get("M", lo), trans["M"].get("M", lo)
        tES, tSS = trans["E"].get("S", lo), trans["S"].get("S", lo)
        tBE, tME = trans["B"].get("E", lo), trans["M"].get("E", lo)
        c = obs[0]
        vB, vM = start["B"] + eB.get(c, lo), start["M"] + eM.get(c, lo)
        vE, vS = start["E"] + eE.get(c, lo), start["S"] + eS.get(c, lo)
        back = []  # per position after the first: the predecessors of B, M, E, S
        for c in obs[1:]:
            em = eB.get(c, lo)
            a, b = vE + tEB + em, vS + tSB + em
            nB, pB = (b, "S") if b >= a else (a, "E")
            em = eM.get(c, lo)
            a, b = vB + tBM + em, vM + tMM + em
            nM, pM = (b, "M") if b >= a else (a, "B")
            em = eS.get(c, lo)
            a, b = vE + tES + em, vS + tSS + em
            nS, pS = (b, "S") if b >= a else (a, "E")
            em = eE.get(c, lo)
            a, b = vB + tBE + em, vM + tME + em
            nE, pE = (b, "M") if b >= a else (a, "B")
            vB, vM, vE, vS = nB, nM, nE, nS
            back.append({"B": pB, "M": pM, "E": pE, "S": pS})
        state = "S" if vS >= vE else "E"
        tags = [state]
        for step in reversed(back):
            state = step[state]
            tags.append(state)
        tags.reverse()
        return tags
