"""trafilatura's pruning XPaths evaluated in Python: the same elements, in the same order, 2-5x faster.

trafilatura 2.3 prunes every page with XPaths of one shape, `.//*[self::div or self::p ...][a test on the
id, class, style or role attributes]`, evaluated two to five times a page on the raw tree, its copies and
the cleaned tree. libxml2 walks every element and evaluates each `or` branch anew, a node set per `@class`,
a call into Python per `re:test`. Here the tags are matched in C (`iterdescendants(*tags)`) and the test
is answered once per distinct (tag, attributes) of a page, the answer remembered: a page repeats its class
names. `selector(path)` translates the small grammar these XPaths use and returns None for anything else,
which is then left to libxml2.

XPath 1.0's rules, as libxml2 applies them, that the translation keeps:
- `@id|@class` as a string is the value of the one of them that comes first in the element's attribute
  list (document order), "" when neither is there; `re:test` (lxml's EXSLT, in Python) searches that
  string with `re.search`, the pattern compiled without flags ('i': IGNORECASE).
- `@x` alone is true when the attribute is there, empty or not; `@x='v'` compares its value.
- `.//*[...]` is every element below the context node (not itself), in document order; a trailing `[1]`
  keeps, of each parent, its first child that passes; `(.//*[...])[1]` keeps the first of all.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# (tag, attributes) answers remembered per selector, then all forgotten: ~430 bytes each, the 17 selectors hold
# 15 MB at most (uncapped, 135 MB after the 3,089 pages of warc/bench, zh, the English run and extraction/,
# where the child is recycled at 150 MB); most hits are within a page, evaluated 2-5 times on its trees
MEMO_KEYS = 2048

_QUOTED = r"'([^']*)'"
_COMMA = r",\s*"
_NAMES = r"@([\w-]+(?:\|@[\w-]+)*)"
_ATOMS = [  # (pattern, kind): what an atom of a predicate tests
    (_SELF := re.compile(r"self::([\w-]+)$"), "tag"),
    (re.compile(r"@([\w-]+)$"), "present"),
    (re.compile(rf"@([\w-]+)={_QUOTED}$"), "equals"),
    (re.compile(rf"contains\({_NAMES}{_COMMA}{_QUOTED}\)$"), "contains"),
    (re.compile(rf"contains\(translate\(@([\w-]+){_COMMA}{_QUOTED}{_COMMA}{_QUOTED}\){_COMMA}{_QUOTED}\)$"),
     "translate"),
    (re.compile(rf"starts-with\({_NAMES}{_COMMA}{_QUOTED}\)$"), "starts-with"),
    (re.compile(rf"re:test\({_NAMES}{_COMMA}{_QUOTED}(?:{_COMMA}'(i?)')?\)$"), "re:test"),
]
_NOT_BELOW = re.compile(r"not\(\.//([\w-]+)\)$")  # no descendant of that tag: a test of the tree, not remembered
ORDERED = "|"  # among the names a predicate reads: it reads `@a|@b`, the first of them in the attribute list


def _names(names: str) -> tuple[str, ...]:
    return tuple(names.split("|@"))


def _first(attrs: dict, names: tuple[str, ...]) -> str:
    """The string value of `@a|@b`: the first of them in the attribute list (dicts keep it), or ""."""
    if len(names) == 1:
        return attrs.get(names[0], "")
    return next((value for name, value in attrs.items() if name in names), "")


def _translate(m: re.Match):
    name, source, target, needle = m.groups()
    if len(source) != len(target):  # XPath drops the extra characters: not needed by the paths we know
        raise ValueError("translate with unequal lengths")
    table = str.maketrans(source, target)
    return lambda tag, attrs: needle in attrs.get(name, "").translate(table)


def _split(text: str, word: str) -> list[str]:
    """`text` split at ` word ` outside parentheses and quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    i = 0
    while i < len(text):
        c = text[i]
        if c == "'":
            quoted = not quoted
        elif not quoted and c in "([":
            depth += 1
        elif not quoted and c in ")]":
            depth -= 1
        elif not quoted and depth == 0 and text.startswith(f" {word} ", i):
            parts.append(text[start:i])
            i += len(word) + 2
            start = i
            continue
        i += 1
    return [*parts, text[start:]]


def _predicate(text: str, names: set[str]) -> tuple[Callable, bool]:
    """An `or` of atoms -> (test(tag, attrs, element), whether it looks below the element); adds the names
    of the attributes it reads to `names` ("" for a test of the tag, `ORDERED` for one of `@a|@b`)."""
    either, below = _Either(), False
    for atom in _split(text.strip(), "or"):
        atom = atom.strip()
        if atom.startswith("not(self::"):
            inner, _ = _predicate(atom[4:-1], names)
            either.others.append(lambda tag, attrs, e, inner=inner: not inner(tag, attrs, e))
            continue
        if m := _NOT_BELOW.match(atom):
            below = True
            names.add("")
            either.others.append(lambda tag, attrs, e, name=m[1]: next(e.iterdescendants(name), None) is None)
            continue
        for pattern, kind in _ATOMS:
            if m := pattern.match(atom):
                group = _names(m[1]) if pattern is not _SELF else ("",)
                names.update(group)
                if len(group) > 1:
                    names.add(ORDERED)
                either.add(kind, m, group)
                break
        else:
            raise ValueError(f"not understood: {atom}")
    return either.compiled(), below


class _Either:
    """An `or` of atoms, as a few lookups: the tags in a set, the attributes tested for presence, the values
    compared per attribute in a set, and the `contains`, `starts-with` and `re:test` atoms on the same
    attribute(s) as one regular expression (`(?:a)|(?:b)|...`: it finds a match where one of them would).
    trafilatura's tests are `or`s of up to ~60 atoms on `@class` and `@id`, a lambda call each before. With the
    memo keyed on what the tests read and the loop inlined (`Selector`): the 17 selectors over 200 raw trees of
    the English pages, twice each, best of 5 alternated in one process, 2.78 s -> 2.08 s; trafilatura on the
    355 pages, 5.8-6.2 s -> 5.1-5.8 s (alternated, a busy machine), the same texts."""

    def __init__(self):
        self.tags: set[str] = set()
        self.present: list[str] = []
        self.equals: dict[str, set[str]] = {}
        self.searches: dict[tuple, list[str]] = {}  # (names, flags) -> patterns
        self.others: list[Callable] = []  # (tag, attrs, element) -> bool

    def add(self, kind: str, m: re.Match, group: tuple[str, ...]) -> None:
        if kind == "tag":
            self.tags.add(m[1])
        elif kind == "present":
            self.present.append(m[1])
        elif kind == "equals":
            self.equals.setdefault(m[1], set()).add(m[2])
        elif kind == "translate":
            test = _translate(m)
            self.others.append(lambda tag, attrs, e: test(tag, attrs))
        else:
            if kind == "contains":
                pattern, flags = re.escape(m[2]), 0
            elif kind == "starts-with":
                pattern, flags = r"\A" + re.escape(m[2]), 0
            else:  # re:test, lxml's EXSLT: re.search, 'i' for IGNORECASE
                pattern, flags = m[2], re.I if m[3] else 0
            re.compile(pattern, flags)  # re.error for a pattern Python cannot read: the XPath stays libxml2's
            self.searches.setdefault((group, flags), []).append(pattern)

    def compiled(self) -> Callable:
        tags, present, equals = frozenset(self.tags), tuple(self.present), tuple(self.equals.items())
        searches = [(group, search) for (group, flags), patterns in self.searches.items()
                    for search in _searches(patterns, flags)]
        one = tuple((group[0], search) for group, search in searches if len(group) == 1)  # @a
        first = tuple((group, search) for group, search in searches if len(group) > 1)  # @a|@b
        others = tuple(self.others)

        def test(tag, attrs, e) -> bool:
            if tag in tags:
                return True
            for name in present:
                if name in attrs:
                    return True
            for name, values in equals:
                if attrs.get(name) in values:
                    return True
            for name, search in one:
                if search(attrs.get(name, "")) is not None:
                    return True
            for group, search in first:
                if search(_first(attrs, group)) is not None:
                    return True
            return bool(others) and any(other(tag, attrs, e) for other in others)

        return test


_UNJOINABLE = re.compile(r"\\[1-9]|\(\?P=|\(\?\(|\(\?[aiLmsux]+\)")  # back-references, conditions, global flags


def _searches(patterns: list[str], flags: int) -> list[Callable]:
    """`re.search` of each pattern, as few as can be joined into one: those holding a back-reference or a
    condition (group numbers shift when joined), or global flags (only allowed first), stay alone."""
    alone = [p for p in patterns if _UNJOINABLE.search(p)]
    joined = [p for p in patterns if not _UNJOINABLE.search(p)]
    out = [re.compile(p, flags).search for p in alone]
    if joined:
        try:
            out.append(re.compile("|".join(f"(?:{p})" for p in joined), flags).search)
        except re.error:  # named groups of the same name, say
            out += [re.compile(p, flags).search for p in joined]
    return out


class Selector:
    """A callable standing in for a `lxml.etree.XPath` of the shape above (`path` keeps its text): the
    elements of its tags tested in order, the answer remembered per value of what the tests read.

    The memo's key is only what the tests read: the values of their attributes (`e.get`, None when absent),
    with the tag where a test reads it; where `@a|@b` takes the first of them in the attribute list, the tag
    and every attribute, in their order."""

    def __init__(self, xpath, tags: tuple[str, ...], steps: list[tuple[Callable, bool]], first: str,
                 names: set[str] | None = None):
        self.xpath, self.path, self.tags, self.first = xpath, xpath.path, tags, first
        tests = [test for test, below in steps if not below]  # answered once per key
        self.below = [test for test, below in steps if below]  # looking below the element: for each
        self.test = tests[0] if len(tests) == 1 else (lambda tag, attrs, e: all(t(tag, attrs, e) for t in tests))
        self.memo: dict = {}
        # what the tests read: None (unknown) keys on the tag and every attribute, in their order
        self.names = None if names is None or ORDERED in names else tuple(sorted(n for n in names if n))
        tagged = names is None or "" in names
        self.single = self.names[0] if self.names is not None and len(self.names) == 1 and not tagged else None
        self.key = _key_of(self.names, tagged)

    def answer(self, e, key) -> bool:
        """The tests on `e`, remembered under `key` (all forgotten past `MEMO_KEYS`)."""
        memo = self.memo
        if len(memo) >= MEMO_KEYS:
            memo.clear()
        found = memo[key] = self.test(e.tag, dict(e.items()), e)
        return found

    def passes(self, e) -> bool:
        key = self.key(e)
        found = self.memo.get(key)
        if found is None:
            found = self.answer(e, key)
        return found and all(test(e.tag, dict(e.items()), e) for test in self.below)

    def __call__(self, tree) -> list:
        if not hasattr(tree, "iterdescendants"):  # a whole document (`_ElementTree`): as it was
            return self.xpath(tree)
        elements = tree.iterdescendants(*self.tags)
        if self.first == "all":
            return next(([e] for e in elements if self.passes(e)), [])
        selected, parents, each = [], set(), self.first == "each"
        if self.below:
            passing = filter(self.passes, elements)
        else:  # inline, as this runs for every element of its tags, 2-5 times a page
            passing = []
            memo, answer, name, key = self.memo, self.answer, self.single, self.key
            if name is not None:  # one attribute read, not the tag
                for e in elements:
                    value = e.get(name)
                    found = memo.get(value)
                    if found is None:
                        found = answer(e, value)
                    if found:
                        passing.append(e)
            else:
                for e in elements:
                    value = key(e)
                    found = memo.get(value)
                    if found is None:
                        found = answer(e, value)
                    if found:
                        passing.append(e)
            if not each:
                return passing
        for e in passing:
            if each:
                parent = e.getparent()
                if parent in parents:
                    continue
                parents.add(parent)
            selected.append(e)
        return selected


def _key_of(names: tuple[str, ...] | None, tagged: bool) -> Callable:
    """The memo key of an element: the values of `names` (and its tag), or its tag and attribute list."""
    if names is None:
        return lambda e: (e.tag, *e.items())
    if tagged:
        return lambda e: (e.tag, *map(e.get, names))
    if len(names) == 1:
        name = names[0]
        return lambda e: e.get(name)
    if len(names) == 2:
        first, second = names
        return lambda e: (e.get(first), e.get(second))
    return lambda e: tuple(map(e.get, names))


_SHAPE = re.compile(r"(\()?\.//\*((?:\[.*?\])+?)(\[1\])?(\)\[1\])?$")


def selector(xpath) -> Selector | None:
    """The `Selector` doing what `xpath` (a `lxml.etree.XPath`) does, or None where its path is not of the
    shape it knows."""
    text = " ".join(xpath.path.split())
    m = _SHAPE.match(text)
    if not m or bool(m[1]) != bool(m[4]) or (m[3] and m[4]):
        return None
    steps = _steps(m[2])
    if not steps:
        return None
    tags: tuple[str, ...] = ()
    names: set[str] = set()
    try:
        if all(atom.strip().startswith("self::") for atom in _split(steps[0], "or")):
            tags = tuple(atom.strip()[len("self::"):] for atom in _split(steps[0], "or"))
            if not all(re.fullmatch(r"[\w-]+", tag) for tag in tags):
                return None
            steps = steps[1:]
        compiled = [_predicate(step, names) for step in steps]
    except (ValueError, re.error):
        return None
    if not tags:  # every element tested (OVERALL_DISCARD_XPATH[1]): libxml2 is faster
        return None
    return Selector(xpath, tags, compiled, "all" if m[4] else "each" if m[3] else "", names)


def attribute_guard(path: str) -> str | None:
    """`.//*[P]`, P an `or` of attribute tests false on an element without any of the attributes it reads,
    as `.//*[@a or @b ...][P]`: libxml2 then skips P on the elements with none of them (3 of 4 on a page),
    the same elements selected. None for any other path."""
    text = " ".join(path.split())
    m = _SHAPE.match(text)
    if not m or m[1] or m[3] or m[4] or text[:5] != ".//*[" or len(steps := _steps(m[2]) or []) != 1:
        return None
    names: set[str] = set()
    try:
        test, _ = _predicate(steps[0], names)
    except (ValueError, re.error):
        return None
    names.discard(ORDERED)
    if "" in names or not names or test("", {}, None):
        return None
    return f".//*[{' or '.join('@' + name for name in sorted(names))}][{steps[0]}]"


def _steps(predicates: str) -> list[str] | None:
    """'[a][b or c]' -> ['a', 'b or c'], brackets inside quotes or parentheses kept."""
    steps, depth, quoted, start = [], 0, False, 0
    for i, c in enumerate(predicates):
        if c == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif c == "[":
            depth += 1
            if depth == 1:
                start = i + 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                steps.append(predicates[start:i])
        elif depth == 0 and c != " ":
            return None
    return steps if depth == 0 and not quoted else None
