"""The patches of trafilatura's XPaths, applied in the extraction child only (`stages/utils/patches.py`
`EXTRACTION_PATCHES`, applied by stages/extractors/child.py: its parent never imports trafilatura).

Both keep every selection trafilatura makes, element for element and in the same order (tested on real pages:
tests/stages/utils/test_patches.py, test_selectors.py), so every extracted text is the same.
"""

from __future__ import annotations

import re

from stages.utils.io import cache_dir, write_text_atomic
from stages.utils.selectors import Selector, attribute_guard, selector

# `re:test(@id|@class, 'pattern')`: EXSLT's regex test on the first of the attributes, with no flags
_RE_TEST = re.compile(r"re:test\((@[\w-]+(?:\|@[\w-]+)*), '([^']*)'\)")
_PREDICATES = re.compile(r"\[[^\[\]]*\]")
_EXSLT_REGEXP = "http://exslt.org/regular-expressions"


def _returns_elements(path: str) -> bool:
    """Whether an XPath's own steps (its predicates aside) can only select elements: no attribute or text."""
    while _PREDICATES.search(path):
        path = _PREDICATES.sub("", path)
    return not any(token in path for token in ("@", "text()", "string(", "::", "re:"))


_REGEX_TESTS = "urn:ccpipe:regex-tests"  # the namespace of `cc:test`, RegexTests below
MEMO_VALUES = 1 << 16  # attribute values remembered per pattern, then forgotten: the child lives as long as its worker


class RegexTests:
    """EXSLT's `re:test(@id|@class, 'pattern')` as an XPath extension function, `cc:test(@id|@class, number)`,
    the pattern compiled once by its number: the same answer (Python's `re.search` of the pattern in the first
    attribute's value, in "" when there is none), remembered per value (a page repeats its class names).
    One call costs 1.5 us instead of 4.4 us for the 559-character pattern of OVERALL_DISCARD_XPATH."""

    def __init__(self):
        self.patterns: list[re.Pattern] = []
        self.numbers: dict[str, int] = {}
        self.memos: list[dict[str, bool]] = []

    def number(self, pattern: str) -> int:
        if pattern not in self.numbers:
            compiled = re.compile(pattern)  # lxml's flags for a test without 'i': none
            self.numbers[pattern] = len(self.patterns)
            self.patterns.append(compiled)
            self.memos.append({})
        return self.numbers[pattern]

    def __call__(self, _context, values: list, number: float) -> bool:
        value = values[0] if values else ""
        memo = self.memos[int(number)]
        found = memo.get(value)
        if found is None:
            if len(memo) >= MEMO_VALUES:
                memo.clear()
            found = memo[value] = self.patterns[int(number)].search(value) is not None
        return found


def rewritten_xpath(path: str, tests: RegexTests) -> str:
    """Each `re:test(@id, 'P')` -> `cc:test(@id, N)`, guarded by the attribute's presence, `((@id) and
    cc:test(@id, N))`, where P cannot match "": an element without the attribute (half of a page's) is then
    answered in libxml2 instead of by a call into Python."""

    def rewrite(m: re.Match) -> str:
        attributes, pattern = m.groups()
        try:
            number = tests.number(pattern)
        except re.error:  # EXSLT's call raises the same error
            return m.group(0)
        test = f"cc:test({attributes}, {number})"
        if tests.patterns[number].search("") is not None:  # true on an absent attribute: the call must run
            return test
        return f"(({' or '.join(attributes.split('|'))}) and {test})"

    return _RE_TEST.sub(rewrite, path)


def trafilatura_xpath_callbacks() -> bool:
    """trafilatura prunes each page with XPaths whose `re:test(@class, ...)` calls back into Python for every
    element they reach, absent attribute or not, each attribute handed over as an lxml "smart string" (a
    string that knows its parent element), the pattern decoded, hashed and looked up again at each call.
    Rewritten (`rewritten_xpath`) and compiled with `smart_strings=False` (the regex sees the same plain
    string; these XPaths select elements, which the option does not touch), the same elements come back: on
    the raw trees of the 440 pages of warc/bench that reach trafilatura, its pruning XPaths take 3.95 s
    instead of 6.2 s; extracting the 1,650 pages of warc/bench, zh, other and cc, 28.8 s of CPU instead of
    34.1 s, the same texts byte for byte."""
    from lxml.etree import FunctionNamespace, XPath
    from trafilatura import xpaths

    if getattr(xpaths, "REGEXP_NS", None) != _EXSLT_REGEXP:
        return False
    tests = RegexTests()
    FunctionNamespace(_REGEX_TESTS)["test"] = tests
    namespaces = {"re": _EXSLT_REGEXP, "cc": _REGEX_TESTS}
    patched = 0
    for value in vars(xpaths).values():  # the lists are shared with the modules that import them: patched in place
        if not (isinstance(value, list) and value and all(isinstance(x, (XPath, Selector)) for x in value)):
            continue
        for i, expression in enumerate(value):
            if not isinstance(expression, XPath) or "re:test(" not in expression.path \
                    or not _returns_elements(expression.path.strip()):
                continue
            value[i] = XPath(rewritten_xpath(expression.path, tests), namespaces=namespaces, smart_strings=False)
            patched += 1
    return patched > 0



# the lists of XPaths trafilatura calls only as `expression(tree)` (prune_unwanted_nodes, _extract,
# extract_comments, extract_metainfo): a Selector can stand in for one of them
_CALLED_XPATHS = ("BODY_XPATH", "COMMENTS_XPATH", "REMOVE_COMMENTS_XPATH", "REMOVE_COMMENTS_AND_LISTS_XPATH",
                  "RAW_TREE_PRUNE_XPATH", "OVERALL_DISCARD_XPATH", "TEASER_DISCARD_XPATH", "PRECISION_DISCARD_XPATH",
                  "DISCARD_IMAGE_ELEMENTS", "COMMENTS_DISCARD_XPATH", "AUTHOR_DISCARD_XPATHS")


def trafilatura_python_selectors() -> bool:
    """trafilatura's `.//*[self::div or ...][test of the attributes]` XPaths, evaluated by a `Selector`
    (stages/utils/selectors.py): the tags matched in C, the test answered once per distinct (tag,
    attributes), the same elements in the same order; those over every element (OVERALL_DISCARD_XPATH[1]),
    where libxml2 stays faster, guarded by the presence of the attributes they read (`attribute_guard`).
    Applied before `trafilatura_xpath_callbacks`, which then rewrites the `re:test` calls of those left.
    Extracting page by page, alternating with that patch alone in one process, CPU seconds: warc/bench
    21.2 instead of 23.5, the 355 pages of the English run 5.9 instead of 6.4, zh 4.1 instead of 5.1,
    extraction/ 18.8 instead of 21.2 (-10 to -20 %); the same texts byte for byte on those 3,176 pages."""
    from lxml.etree import XPath
    from trafilatura import xpaths

    lists = [getattr(xpaths, name, None) for name in _CALLED_XPATHS]
    if getattr(xpaths, "REGEXP_NS", None) != _EXSLT_REGEXP or not all(
            isinstance(value, list) and all(isinstance(x, (XPath, Selector)) for x in value) for value in lists):
        return False
    patched = 0
    for value in lists:
        for i, expression in enumerate(value):
            if not isinstance(expression, XPath):
                continue
            if (python := selector(expression)) is not None:
                value[i] = python
            elif guarded := attribute_guard(expression.path):
                value[i] = XPath(guarded, namespaces={"re": _EXSLT_REGEXP})
            else:
                continue
            patched += 1
    return patched > 0


def html_element_lookup():
    """lxml.html's element classes (`HtmlElementClassLookup`'s) from lxml's C lookups, or None where lxml.html
    keeps them otherwise: a namespace-class lookup (`form` -> FormElement, ...) over a default one
    (HtmlElement, HtmlComment, HtmlProcessingInstruction, HtmlEntity)."""
    from lxml import etree, html

    classes = getattr(html.HtmlElementClassLookup, "_default_element_classes", None)
    if not isinstance(classes, dict):
        return None
    lookup = etree.ElementNamespaceClassLookup(etree.ElementDefaultClassLookup(
        element=html.HtmlElement, comment=html.HtmlComment, pi=html.HtmlProcessingInstruction,
        entity=html.HtmlEntity))
    registry = lookup.get_namespace(None)
    for tag, cls in classes.items():
        registry[tag] = cls
    return lookup


def trafilatura_element_classes() -> bool:
    """trafilatura's HTML parser (`trafilatura.utils.HTML_PARSER`, lxml.html's `HTMLParser`) picks each
    element's class with lxml.html's `HtmlElementClassLookup`, a Python method called whenever lxml makes a
    Python object for an element: ~1 million calls on the 355 English pages. The same classes from lxml's C
    lookups (`html_element_lookup`): iterating the elements of those pages, 0.154 s -> 0.099 s per 356,000.
    The Python lookup lower-cases the tag first: libxml2's HTML parser has done so already."""
    from lxml import html
    from trafilatura import utils

    parser = getattr(utils, "HTML_PARSER", None)
    lookup = html_element_lookup()
    if not isinstance(parser, html.HTMLParser) or lookup is None:
        return False
    parser.set_element_class_lookup(lookup)
    return True


def _stoplist_cache_path():
    from importlib.metadata import version

    return cache_dir("justext", f"stoplists-{version('justext')}-trafilatura-{version('trafilatura')}.txt")


def _cached_stoplists(original):
    """trafilatura's `jt_stoplist_init` from a cache file: every word of justext's stoplists, one a line, as
    `original()` (trafilatura's own) gave them the first time; a frozenset, whose hash Python keeps."""

    def jt_stoplist_init():
        from trafilatura import external

        path = _stoplist_cache_path()
        try:
            words = frozenset(path.read_text(encoding="utf-8").split("\n"))
        except (OSError, UnicodeDecodeError):
            words = frozenset(original())
            if not any("\n" in word for word in words):
                try:
                    write_text_atomic(path, "\n".join(sorted(words)))
                except OSError:
                    pass  # a cache we cannot write: the next child reads justext's files again
        external.JT_STOPLIST = words
        return words

    return jt_stoplist_init


def trafilatura_justext_stoplist() -> bool:
    """trafilatura's justext fallback on a page of no known language (9 of the English run's 355) first joins
    justext's ~100 stoplists (154,484 words from ~100 files: 0.09-0.15 s, once per extraction child), then justext
    hashes that 154,484-word tuple at every call (`define_stoplist`'s lru_cache key: 2.4 ms). The same words from
    ccpipe's cache (by justext's and trafilatura's versions: 0.03 s), as a frozenset: justext lower-cases them
    into the same set, once."""
    from trafilatura import external

    original = getattr(external, "jt_stoplist_init", None)
    if not callable(original) or getattr(external, "JT_STOPLIST", 0) is not None:
        return False
    external.jt_stoplist_init = _cached_stoplists(original)
    return True
