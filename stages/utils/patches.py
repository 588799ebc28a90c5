"""The patches ccpipe makes to other libraries, all here and all applied by one call, `apply()`.

Nothing is patched at import: the CLI calls `apply()` before it builds a run, and every engine's worker calls
it before its first task (`pipeline/engines/local.py` `quiet_console`). Each patch is guarded by the versions
it was measured on and by the shape of what it replaces: after an upgrade it is skipped, with one log line,
and the run is slower (the figures below) but still right. None of them changes an output byte.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import importlib.machinery
import importlib.metadata
import logging
import os
import re
import sys
import types

from stages.utils.selectors import Selector, attribute_guard, selector

logger = logging.getLogger(__name__)

# the versions each patch was written against (major.minor); another version skips the patch
TESTED = {"datatrove": ("0.10",), "loguru": ("0.7",), "presidio-analyzer": ("2.2",), "spacy": ("3.8",),
          "trafilatura": ("2.3",)}

_APPLIED: set[str] = set()


@functools.cache  # the scoped spaCy patches below ask at every use (C4's sentence count: once per document)
def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _tested(distribution: str, patch: str) -> bool:
    version = _version(distribution)
    if version and version.startswith(tuple(v + "." for v in TESTED.get(distribution, ()))):
        return True
    logger.info("%s %s is not a version %s was measured on: left unpatched (slower, not wrong)",
                distribution, version, patch)
    return False


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


@functools.cache
def _distribution_folders() -> frozenset[str]:
    """The names of the `{name}-{version}.dist-info` / `.egg-info` folders on sys.path: 0.6 ms, where reading
    every distribution's metadata takes ~0.1 s (186 distributions; 5% of a `--reuse` run's parent process).
    The same 186 names here."""
    found = set()
    for folder in sys.path:
        try:
            entries = os.listdir(folder or ".")
        except OSError:  # a zip file, a folder gone
            continue
        found.update(_normalized(e.rsplit(".", 1)[0].split("-")[0]) for e in entries
                     if e.endswith((".dist-info", ".egg-info")))
    return frozenset(found)


@functools.cache
def _distribution_names() -> frozenset[str]:
    return frozenset(_normalized(name) for dist in importlib.metadata.distributions()
                     if (name := (dist.metadata or {}).get("Name")))


def _is_distribution_available(distribution_name: str) -> bool | None:
    """datatrove's check, from one scan of the installed distributions instead of one per name: each step
    checks its dependencies when it is built, unpickled or copied, and datatrove reads the metadata of every
    installed distribution for each new name (7 names, 0.45 s per process; one scan, 0.08 s). The folder
    names first; a name not among them is looked for in the metadata, as datatrove would."""
    name = _normalized(distribution_name)
    return True if name in _distribution_folders() or name in _distribution_names() else None


def _datatrove_dependency_check() -> bool:
    from datatrove.utils import _import_utils

    if not callable(getattr(_import_utils, "_is_distribution_available", None)):
        return False
    _import_utils._is_distribution_available = _is_distribution_available
    return True


def _loguru_lib_dirs() -> bool:
    """loguru looks up the interpreter's library folders (36 sysconfig calls, 4.8 ms) for every handler it adds,
    and datatrove and our quiet console add five per task: 1 s of the 40 tasks of a run over 8 files. They do
    not change while a process runs."""
    from loguru._better_exceptions import ExceptionFormatter

    original = ExceptionFormatter.__dict__.get("_get_lib_dirs")
    if not isinstance(original, staticmethod):
        return False
    ExceptionFormatter._get_lib_dirs = staticmethod(functools.cache(original.__func__))
    return True


def _minhash_progress_bar() -> bool:
    """datatrove's MinHash clustering draws its own "Reading dup files" bar, which would show on the console
    among ccpipe's per-phase bars: a silent tqdm in that module only."""
    import datatrove.pipeline.dedup.minhash as minhash
    from tqdm import tqdm

    if getattr(minhash, "tqdm", None) is not tqdm:
        return False
    minhash.tqdm = functools.partial(tqdm, disable=True)
    return True


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


def _trafilatura_xpath_callbacks() -> bool:
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


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls `patch(module)` as soon as module `name` has run, before any other module imports from it."""

    def __init__(self, name: str, patch):
        self.name, self.patch = name, patch

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader, patch = spec.loader, self.patch

        class Patching(importlib.abc.Loader):
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                loader.exec_module(module)
                module.__loader__ = module.__spec__.loader = loader
                patch(module)

        spec.loader = Patching()
        return spec


_BUILT_IN_RECOGNIZERS = "presidio_analyzer.predefined_recognizers."


def _unchecked_builtin_patterns(module) -> None:
    check = module.Pattern.__dict__.get("_Pattern__validate_regex")
    if not isinstance(check, staticmethod):
        logger.info("presidio pattern checks: what it replaces has changed shape: left unpatched (slower, not wrong)")
        return

    def validate(pattern: str) -> None:  # called by Pattern.__init__, called by the code making the pattern
        if not sys._getframe(2).f_globals.get("__name__", "").startswith(_BUILT_IN_RECOGNIZERS):
            check.__func__(pattern)

    module.Pattern._Pattern__validate_regex = staticmethod(validate)


def _presidio_pattern_checks() -> bool:
    """presidio checks every `Pattern` it is given by compiling it (without flags) as it is made, and importing
    presidio makes the 173 of its own recognizers' class attributes: 0.15 s of the 0.31 s import, in every
    process that scrubs PII, for patterns that are compiled again (with their flags) when a recognizer runs,
    and only for the few recognizers a run uses. Those built-in patterns go unchecked; a pattern made anywhere
    else (ours: stages/pii/zh.py) is checked as before. Applied before presidio is imported (`apply()` runs
    first in every process), at its `pattern` module's import."""
    if "presidio_analyzer" in sys.modules or any(isinstance(f, _AfterImport) for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, _AfterImport("presidio_analyzer.pattern", _unchecked_builtin_patterns))
    return True


# Two scoped patches of spaCy, for the `with` blocks that build its pipelines (stages/utils/loading.py
# `without_torch`, stages/text/words.py `blank_english`) rather than for the whole process


def _spacy_info(*args, **kwargs):
    """`spacy.info`, imported when called: spaCy's command line, which `spacy_without_cli` left out."""
    from spacy.cli.info import info

    return info(*args, **kwargs)


@contextlib.contextmanager
def spacy_without_cli():
    """`import spacy` without `spacy.cli`: spaCy's `__init__` imports `spacy.cli.info` for `spacy.info`, and with
    it the whole command line (weasel, httpx, typer, rich, jinja2): 0.25-0.4 s of CPU in each process that
    imports spaCy, for commands a pipeline never runs. Inside the block `spacy.cli.info` is a stand-in whose
    `info` imports the real one when called; afterwards `import spacy.cli` imports the real command line.
    Does nothing when spaCy is already imported, or is not a version it was measured on."""
    if "spacy" in sys.modules or "spacy.cli.info" in sys.modules or not _tested("spacy", "spaCy without its CLI"):
        yield
        return
    stand_in = types.ModuleType("spacy.cli.info")
    stand_in.info = _spacy_info
    sys.modules["spacy.cli.info"] = stand_in
    try:
        yield
    finally:
        if sys.modules.get("spacy.cli.info") is stand_in:
            del sys.modules["spacy.cli.info"]


@contextlib.contextmanager
def spacy_without_plugins():
    """spaCy pipelines made inside the block leave out the pipeline components other packages register with
    spaCy (entry points): each new pipeline imports them all, and presidio's imports presidio (0.15-0.3 s), for
    tokenizers that use none. Another spaCy version: its pipelines are built as it builds them. Import spaCy
    (within `without_torch`) before."""
    import spacy

    plugins = getattr(spacy.util.registry, "_entry_point_factories", None)
    if plugins is None or not hasattr(plugins, "entry_points") or not _tested("spacy", "spaCy without plugins"):
        yield
        return
    before, plugins.entry_points = plugins.entry_points, False
    try:
        yield
    finally:
        plugins.entry_points = before
# the lists of XPaths trafilatura calls only as `expression(tree)` (prune_unwanted_nodes, _extract,
# extract_comments, extract_metainfo): a Selector can stand in for one of them
_CALLED_XPATHS = ("BODY_XPATH", "COMMENTS_XPATH", "REMOVE_COMMENTS_XPATH", "REMOVE_COMMENTS_AND_LISTS_XPATH",
                  "RAW_TREE_PRUNE_XPATH", "OVERALL_DISCARD_XPATH", "TEASER_DISCARD_XPATH", "PRECISION_DISCARD_XPATH",
                  "DISCARD_IMAGE_ELEMENTS", "COMMENTS_DISCARD_XPATH", "AUTHOR_DISCARD_XPATHS")


def _trafilatura_python_selectors() -> bool:
    """trafilatura's `.//*[self::div or ...][test of the attributes]` XPaths, evaluated by a `Selector`
    (stages/utils/selectors.py): the tags matched in C, the test answered once per distinct (tag,
    attributes), the same elements in the same order; those over every element (OVERALL_DISCARD_XPATH[1]),
    where libxml2 stays faster, guarded by the presence of the attributes they read (`attribute_guard`).
    Applied before `_trafilatura_xpath_callbacks`, which then rewrites the `re:test` calls of those left.
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


PATCHES = {
    "datatrove dependency check": ("datatrove", _datatrove_dependency_check),
    "loguru library folders": ("loguru", _loguru_lib_dirs),
    "datatrove minhash progress bar": ("datatrove", _minhash_progress_bar),
    "presidio pattern checks": ("presidio-analyzer", _presidio_pattern_checks),
}
# applied by the extraction child (stages/extractors/child.py) only: its parent never imports trafilatura
EXTRACTION_PATCHES = {
    "trafilatura python selectors": ("trafilatura", _trafilatura_python_selectors),
    "trafilatura xpath callbacks": ("trafilatura", _trafilatura_xpath_callbacks),
}


def apply(patches: dict | None = None) -> list[str]:
    """Applies each patch of `patches` (default `PATCHES`) once per process where its library is a tested
    version; returns the names applied."""
    for name, (distribution, patch) in (PATCHES if patches is None else patches).items():
        if name in _APPLIED or not _tested(distribution, name):
            continue
        try:
            done = patch()
        except (ImportError, AttributeError) as exc:
            logger.info("%s: not applied (%s): slower, not wrong", name, exc)
            done = False
        if done:
            _APPLIED.add(name)
        else:
            logger.info("%s: what it replaces has changed shape: left unpatched (slower, not wrong)", name)
    return sorted(_APPLIED)


def applied() -> list[str]:
    return sorted(_APPLIED)
