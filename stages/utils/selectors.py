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
_ATOMS = [  # (pattern, builder of a test of the element's tag and attribute list)
    (_SELF := re.compile(r"self::([\w-]+)$"), lambda m: (lambda tag, attrs, name=m[1]: tag == name)),
    (re.compile(r"@([\w-]+)$"), lambda m: (lambda tag, attrs, name=m[1]: name in attrs)),
    (re.compile(rf"@([\w-]+)={_QUOTED}$"), lambda m: (lambda tag, attrs, n=m[1], v=m[2]: attrs.get(n) == v)),
    (re.compile(rf"contains\({_NAMES}{_COMMA}{_QUOTED}\)$"),
     lambda m: (lambda tag, attrs, n=_names(m[1]), s=m[2]: s in _first(attrs, n))),
    (re.compile(rf"contains\(translate\(@([\w-]+){_COMMA}{_QUOTED}{_COMMA}{_QUOTED}\){_COMMA}{_QUOTED}\)$"),
     lambda m: _translate(m)),
    (re.compile(rf"starts-with\({_NAMES}{_COMMA}{_QUOTED}\)$"),
     lambda m: (lambda tag, attrs, n=_names(m[1]), s=m[2]: _first(attrs, n).startswith(s))),
    (re.compile(rf"re:test\({_NAMES}{_COMMA}{_QUOTED}(?:{_COMMA}'(i?)')?\)$"),
     lambda m: (lambda tag, attrs, n=_names(m[1]), r=re.compile(m[2], re.I if m[3] else 0):
                r.search(_first(attrs, n)) is not None)),
]
_NOT_BELOW = re.compile(r"not\(\.//([\w-]+)\)$")  # no descendant of that tag: a test of the tree, not remembered


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
    of the attributes it reads to `names` ("" for a test of the tag)."""
    tests, below = [], False
    for atom in _split(text.strip(), "or"):
        atom = atom.strip()
        if atom.startswith("not(self::"):
            inner, _ = _predicate(atom[4:-1], names)
            tests.append(lambda tag, attrs, e, inner=inner: not inner(tag, attrs, e))
            continue
        if m := _NOT_BELOW.match(atom):
            below = True
            names.add("")
            tests.append(lambda tag, attrs, e, name=m[1]: next(e.iterdescendants(name), None) is None)
            continue
        for pattern, build in _ATOMS:
            if m := pattern.match(atom):
                test = build(m)
                names.update(_names(m[1]) if pattern is not _SELF else ("",))
                tests.append(lambda tag, attrs, e, test=test: test(tag, attrs))
                break
        else:
            raise ValueError(f"not understood: {atom}")
    return (lambda tag, attrs, e: any(test(tag, attrs, e) for test in tests)), below


class Selector:
    """A callable standing in for a `lxml.etree.XPath` of the shape above (`path` keeps its text): the
    elements of its tags tested in order, the answer remembered per (tag, attribute list)."""

    def __init__(self, xpath, tags: tuple[str, ...], steps: list[tuple[Callable, bool]], first: str):
        self.xpath, self.path, self.tags, self.first = xpath, xpath.path, tags, first
        self.tests = [test for test, below in steps if not below]  # answered once per (tag, attributes)
        self.below = [test for test, below in steps if below]  # looking below the element: for each
        self.memo: dict[tuple, bool] = {}

    def passes(self, e) -> bool:
        items = e.items()
        key = (e.tag, *items)  # the attributes in their order: `@a|@b` is the first of them there
        found = self.memo.get(key)
        if found is None:
            if len(self.memo) >= MEMO_KEYS:
                self.memo.clear()
            attrs = dict(items)
            found = self.memo[key] = all(test(e.tag, attrs, e) for test in self.tests)
        return found and all(test(e.tag, dict(items), e) for test in self.below)

    def __call__(self, tree) -> list:
        if not hasattr(tree, "iterdescendants"):  # a whole document (`_ElementTree`): as it was
            return self.xpath(tree)
        elements = tree.iterdescendants(*self.tags)
        if self.first == "all":
            return next(([e] for e in elements if self.passes(e)), [])
        selected, parents = [], set()
        for e in elements:
            if self.passes(e):
                if self.first == "each":
                    parent = e.getparent()
                    if parent in parents:
                        continue
                    parents.add(parent)
                selected.append(e)
        return selected


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
    return Selector(xpath, tags, compiled, "all" if m[4] else "each" if m[3] else "")


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
