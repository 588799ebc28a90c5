"""The patches ccpipe makes to other libraries, all listed here and all applied by one call, `apply()`
(trafilatura's, applied by the extraction child, live in stages/utils/trafilatura_patches.py).

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

from stages.utils.trafilatura_patches import (
    trafilatura_element_classes,
    trafilatura_justext_stoplist,
    trafilatura_python_selectors,
    trafilatura_xpath_callbacks,
)

logger = logging.getLogger(__name__)

# the versions each patch was written against (major.minor); another version skips the patch
# (loguru 0.8.0's `_get_lib_dirs` is 0.7.3's, line for line)
TESTED = {"datatrove": ("0.10",), "loguru": ("0.7", "0.8"), "presidio-analyzer": ("2.2",), "spacy": ("3.8",),
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

PATCHES = {
    "datatrove dependency check": ("datatrove", _datatrove_dependency_check),
    "loguru library folders": ("loguru", _loguru_lib_dirs),
    "datatrove minhash progress bar": ("datatrove", _minhash_progress_bar),
    "presidio pattern checks": ("presidio-analyzer", _presidio_pattern_checks),
}
# applied by the extraction child (stages/extractors/child.py) only: its parent never imports trafilatura
EXTRACTION_PATCHES = {
    "trafilatura python selectors": ("trafilatura", trafilatura_python_selectors),
    "trafilatura xpath callbacks": ("trafilatura", trafilatura_xpath_callbacks),
    "trafilatura element classes": ("trafilatura", trafilatura_element_classes),
    "trafilatura justext stoplist": ("trafilatura", trafilatura_justext_stoplist),
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
