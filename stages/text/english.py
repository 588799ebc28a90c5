"""spaCy's blank English tokenizer, and datatrove's English sentence split, run from spaCy's own rules.

datatrove splits English words with spaCy's blank English tokenizer (`split_into_words`) and C4 counts
sentences with the same plus spaCy's sentencizer (`split_into_sentences`). Each process built two spaCy
pipelines for this, 0.12 s and 0.13 s of CPU (measured on bench's English pages, spaCy 3.8), for rules that are
data: 1,347 special cases, three regular expressions and the sentencizer's punctuation. Here `Tokenizer`
runs spaCy 3.8's algorithm (spacy/tokenizer.pyx: `_tokenize_affixes`, `_split_affixes`, `_attach_tokens`,
`_apply_special_cases`) in Python on those rules, read from spaCy once and kept in ccpipe's cache as JSON
(`rules()`): a process compiles the three regexes (0.06 s) and nothing else.

Two of spaCy's behaviours are kept as they are, so that the words are the same:
- its cache: a chunk it split is remembered whole (up to `max_cache_size` chunks), and a later chunk whose
  middle, once its prefixes and suffixes are cut, is that same string takes the remembered tokens.
  `Tokenizer(history=True)` keeps that cache as spaCy does; `history=False` is spaCy inside a memory zone,
  which saves nothing (datatrove's sentence split).
- special cases with affixes ("'s", ":)", "10a.m."): spaCy finds their pieces again after splitting (a phrase
  matcher on the tokens) and puts the special case back; `_special_cases` does the same on the same spans,
  across the chunks of a text too.

tests/stages/text/test_english.py compares the tokens with spaCy's, history included, on the corpus' texts and
fuzzed strings, and the sentence counts with datatrove's.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import unicodedata
from functools import lru_cache

from stages.utils import patches
from stages.utils.io import cache_dir, write_json_atomic
from stages.utils.loading import without_torch

SUPPORTED = "3.8."  # the spaCy whose tokenizer and sentencizer these mirror
_VERSION = re.compile(r"""__version__\s*=\s*["']([^"']+)["']""")


def blank_english():
    """spaCy's blank English pipeline (its tokenizer only), built without importing PyTorch, nor the pipeline
    components other packages register with spaCy: each new pipeline imports them all, and presidio's imports
    presidio (0.4 s of regex compiling), for a tokenizer that uses none."""
    with without_torch():
        import spacy

        with patches.spacy_without_plugins():  # stages/utils/patches.py
            return spacy.blank("en")


def _spacy_version() -> tuple[str, str] | None:
    """(spaCy's version, a stamp of its install) from its files, without importing it; None without spaCy."""
    spec = importlib.util.find_spec("spacy")
    if spec is None or not spec.origin:
        return None
    about = os.path.join(os.path.dirname(spec.origin), "about.py")
    try:
        with open(about, encoding="utf-8") as f:
            found = _VERSION.search(f.read())
        stat = os.stat(about)
    except OSError:
        return None
    return (found.group(1), f"{stat.st_size}-{stat.st_mtime_ns}") if found else None


@lru_cache(maxsize=1)
def rules() -> dict | None:
    """spaCy's English tokenizer rules and sentencizer punctuation, from ccpipe's cache (read from spaCy and
    written there the first time); None where spaCy is not the supported version: callers use spaCy itself."""
    version = _spacy_version()
    if version is None or not version[0].startswith(SUPPORTED):
        return None
    path = cache_dir("spacy-en", f"{version[0]}-{version[1]}.json")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("spacy") == version[0]:
            return data
    except (OSError, ValueError, AttributeError):
        pass  # none yet, or unreadable: read spaCy's again
    data = rules_from_spacy()
    try:
        write_json_atomic(path, data)
    except OSError:
        pass  # a cache we cannot write (a read-only home): the next process reads spaCy again
    return data


def rules_from_spacy() -> dict:
    """What `Tokenizer` needs of spaCy's blank English tokenizer and sentencizer, as JSON data."""
    import spacy
    from spacy.pipeline import Sentencizer
    from spacy.symbols import ORTH

    tokenizer = blank_english().tokenizer

    def pattern(search):
        return None if search is None else [search.__self__.pattern, search.__self__.flags]

    specials = {chunk: [piece[ORTH] for piece in pieces] for chunk, pieces in sorted(tokenizer.rules.items())}
    data = {
        "spacy": spacy.__version__,
        "specials": specials,
        "prefix": pattern(tokenizer.prefix_search),
        "suffix": pattern(tokenizer.suffix_search),
        "infix": pattern(tokenizer.infix_finditer),
        "token_match": pattern(tokenizer.token_match),
        "url_match": pattern(tokenizer.url_match),
        "faster_heuristics": tokenizer.faster_heuristics,
        # not readable from Python: spaCy's default, which its English tokenizer factory does not change
        "max_cache_size": 10_000,
        "punct_chars": sorted(Sentencizer.default_punct_chars),
    }
    # the phrase-matcher patterns of the special cases that hold an affix: their pieces as spaCy cuts them
    # without special cases (`add_special_case`)
    plain = Tokenizer(data, history=False, special_cases=False)
    data["matched"] = {chunk: plain.tokens(chunk)[0] for chunk in specials
                       if not data["faster_heuristics"] or plain.affixed(chunk) or " " in chunk}
    return data


def _compiled(pattern, method: str):
    return None if pattern is None else getattr(re.compile(pattern[0], pattern[1]), method)


class Tokenizer:
    """spaCy 3.8's `Tokenizer.__call__` on the rules of `rules()`: `tokens(text)` gives the tokens' texts and
    whether a space follows each, as spaCy's Doc holds them."""

    def __init__(self, data: dict, history: bool = True, special_cases: bool = True):
        self.specials = {chunk: tuple(pieces) for chunk, pieces in data["specials"].items()} if special_cases else {}
        self.prefix_search = _compiled(data["prefix"], "search")
        self.suffix_search = _compiled(data["suffix"], "search")
        self.infix_finditer = _compiled(data["infix"], "finditer")
        self.token_match = _compiled(data["token_match"], "match")
        self.url_match = _compiled(data["url_match"], "match")
        self.max_cache_size = data["max_cache_size"] if history else 0
        self.cache: dict[str, tuple[str, ...]] = {}
        # pattern (pieces) -> its special case, and the patterns' lengths
        self.patterns = {tuple(pieces): chunk for chunk, pieces in data.get("matched", {}).items()} \
            if special_cases else {}
        self.lengths = sorted({len(p) for p in self.patterns})

    def affixed(self, chunk: str) -> bool:
        """spaCy's test for a special case that the phrase matcher must find again."""
        return bool(self._prefix(chunk) or self._suffix(chunk) or
                    (self.infix_finditer is not None and list(self.infix_finditer(chunk))))

    def _prefix(self, string: str) -> int:
        if self.prefix_search is None:
            return 0
        match = self.prefix_search(string)
        return match.end() - match.start() if match is not None else 0

    def _suffix(self, string: str) -> int:
        if self.suffix_search is None:
            return 0
        match = self.suffix_search(string)
        return match.end() - match.start() if match is not None else 0

    def words(self, chunk: str) -> list[str]:
        """The tokens of `chunk`, a string without whitespace (spaCy's tokenizer called on it alone)."""
        texts = self._span(chunk, [False])
        return self._special_cases(texts, [False] * len(texts))[0] if self.patterns else texts

    def tokens(self, text: str) -> tuple[list[str], list[bool]]:
        """(token texts, whether a space follows each) of `text`, as spaCy's `_tokenize_affixes` and
        `_apply_special_cases` make them."""
        texts: list[str] = []
        spaces: list[bool] = []
        if not text:
            return texts, spaces
        special = [False]  # spaCy's has_special: set for the whole text once a special case is hit
        start, in_ws = 0, text[0].isspace()
        for i, char in enumerate(text):
            if char.isspace() != in_ws:
                if start < i:
                    pieces = self._span(text[start:i], special)
                    texts += pieces
                    spaces += [False] * len(pieces)
                if char == " ":
                    spaces[-1] = True
                    start = i + 1
                else:
                    start = i
                in_ws = not in_ws
        if start < len(text):
            pieces = self._span(text[start:], special)
            texts += pieces
            spaces += [False] * len(pieces)
            spaces[-1] = text[-1] == " " and not in_ws
        return self._special_cases(texts, spaces) if self.patterns else (texts, spaces)

    def _span(self, span: str, special: list[bool]) -> list[str]:
        """`_try_specials_and_cache`, then `_tokenize` (affixes, infixes, and the cache saved) on one span."""
        pieces = self.specials.get(span)
        if pieces is not None:
            special[0] = True
            return list(pieces)
        pieces = self.cache.get(span)
        if pieces is not None:
            return list(pieces)
        prefixes: list[str] = []
        suffixes: list[str] = []
        string = self._split_affixes(span, prefixes, suffixes)
        out = prefixes
        if string:
            self._attach(string, out, special)
        out += reversed(suffixes)
        if len(self.cache) < self.max_cache_size and not special[0] and out:
            self.cache[span] = tuple(out)
        return out

    def _split_affixes(self, string: str, prefixes: list[str], suffixes: list[str]) -> str:
        specials = self.specials
        last = 0
        while string and len(string) != last:
            if self.token_match is not None and self.token_match(string):
                break
            if string in specials:
                break
            last = len(string)
            pre = self._prefix(string)
            if pre:
                prefix, minus_pre = string[:pre], string[pre:]
                if minus_pre and minus_pre in specials:
                    prefixes.append(prefix)
                    return minus_pre
            suf = self._suffix(string[pre:])
            if suf:
                suffix, minus_suf = string[-suf:], string[:-suf]
                if minus_suf and minus_suf in specials:
                    suffixes.append(suffix)
                    return minus_suf
            if pre and suf and pre + suf <= len(string):
                string = string[pre:-suf]
                prefixes.append(prefix)
                suffixes.append(suffix)
            elif pre:
                string = minus_pre
                prefixes.append(prefix)
            elif suf:
                string = minus_suf
                suffixes.append(suffix)
        return string

    def _attach(self, string: str, out: list[str], special: list[bool]) -> None:
        pieces = self.specials.get(string)
        if pieces is not None:
            special[0] = True
            out += pieces
            return
        pieces = self.cache.get(string)
        if pieces is not None:
            out += pieces
            return
        if (self.token_match is not None and self.token_match(string)) or \
                (self.url_match is not None and self.url_match(string)):
            out.append(string)
            return
        matches = list(self.infix_finditer(string)) if self.infix_finditer is not None else []
        start = 0
        for match in matches:
            infix_start, infix_end = match.start(), match.end()
            if infix_start == 0:  # spaCy's `start_before_infixes`
                continue
            if infix_start != start:
                out.append(string[start:infix_start])
            if infix_start != infix_end:
                out.append(string[infix_start:infix_end])
            start = infix_end
        if string[start:]:
            out.append(string[start:])

    def _special_cases(self, texts: list[str], spaces: list[bool]) -> tuple[list[str], list[bool]]:
        """`_apply_special_cases`: every match of a pattern, the longest first (then the leftmost) unless its
        first or last token is in a match seen before; each kept span whose text is a special case becomes
        that special case's pieces."""
        n = len(texts)
        found = [(start, start + length) for start in range(n) for length in self.lengths
                 if start + length <= n and tuple(texts[start:start + length]) in self.patterns]
        if not found:
            return texts, spaces
        found.sort(key=lambda span: (span[1] - span[0], -span[0]))
        seen: set[int] = set()
        kept = {}
        for start, end in reversed(found):
            if start not in seen and end - 1 not in seen:
                kept[start] = end
            seen.update(range(start, end))
        out_texts: list[str] = []
        out_spaces: list[bool] = []
        i = 0
        while i < n:
            end = kept.get(i)
            if end is None:
                out_texts.append(texts[i])
                out_spaces.append(spaces[i])
                i += 1
                continue
            text = "".join(t + (" " if s else "") for t, s in zip(texts[i:end - 1], spaces[i:end - 1])) + texts[end - 1]
            pieces = self.specials.get(text)
            if pieces is None:
                out_texts += texts[i:end]
                out_spaces += spaces[i:end]
            else:
                out_texts += pieces
                out_spaces += [False] * (len(pieces) - 1) + [spaces[end - 1]]
            i = end
        return out_texts, out_spaces


def _is_punct(text: str) -> bool:
    """spaCy's `is_punct` lexical attribute (spacy/lang/lex_attrs.py)."""
    return all(unicodedata.category(char).startswith("P") for char in text)


class Sentences:
    """How many sentences datatrove's `split_into_sentences(text)` (English) finds: spaCy's blank English
    tokenizer in a memory zone (no cache), then its sentencizer."""

    def __init__(self, data: dict):
        self.tokenizer = Tokenizer(data, history=False)
        self.punct_chars = frozenset(data["punct_chars"])

    def count(self, text: str) -> int:
        texts, _ = self.tokenizer.tokens(text)
        count, seen_period = 1, False
        for token in texts:
            in_punct_chars = token in self.punct_chars
            if seen_period and not in_punct_chars and not _is_punct(token):
                count += 1
                seen_period = False
            elif in_punct_chars:
                seen_period = True
        return count
