"""Loading what the steps need once per process: models, lists and vocabularies (`load_once`), fastText models
(`FastTextModel`), and spaCy or presidio without PyTorch or spaCy's command line (`without_torch`)."""

import contextlib
import os
import sys
from functools import cached_property

from stages.utils import patches
from stages.utils.io import cache_dir, cached_json, files_key

_LOADED: dict = {}


def load_once(key: tuple, load):
    """`load()`, once per process for each `key`: the models, lists and vocabularies steps load lazily.

    datatrove copies a phase's steps for every task, so a step's own cache starts empty in each task: the
    blocklist's lists, two fastText models and a BPE vocabulary were loaded again for every file (0.7 s of a
    26 s run over 8 files, more with the tokenizer's 0.1 s per task). Keys name the files (with their
    modification time where they can change) and every setting that changes what is loaded.
    """
    if key not in _LOADED:
        _LOADED[key] = load()
    return _LOADED[key]


def fasttext_model(path: str):
    """The fastText model at `path`, loaded once per process: by the steps, and by `ccpipe run` before it forks
    its workers (`FastTextModel.warm`), which then have it already (lid.176.ftz: ~20 ms a load, 4 MB)."""
    import fasttext  # fasttext-predict's loader suffices to predict; never at import (steps are pickled)

    stat = os.stat(path)
    return load_once(("fasttext", path, stat.st_mtime_ns, stat.st_size), lambda: fasttext.load_model(path))


def fasttext_labels(path: str) -> list[str]:
    """The labels of the fastText model at `path` ("__label__en", ...), kept in the cache directory under the
    file's path, size and modification time: `ccpipe run` checks the config's languages against them, and
    loading the model for that (~25 ms with fastText's import) was wasted in a run that reuses the language
    scores. Raises what loading raises for a file that is no fastText model."""
    # fasttext-predict has no get_labels(): every label, each with its (possibly tiny) probability
    return cached_json(cache_dir("fasttext-labels") / f"{files_key(path)}.json",
                       lambda: list(fasttext_model(path).predict("label", k=-1, threshold=-1.0)[0]))


def tld_extractor():
    """tldextract on its bundled public-suffix snapshot (no fetch, no cache directory), one per process: the
    blocklist's host rules and presidio's e-mail check (stages/pii/analyzer.py) each built their own suffix
    trie (25-40 ms)."""
    from tldextract import TLDExtract

    return load_once(("tldextract",), lambda: TLDExtract(suffix_list_urls=(), cache_dir=None))


class FastTextModel:
    """A step scoring with the fastText model at `self.model_path` (language ID, the quality classifier): the
    model loads lazily, once per worker process, and stays out of the pickle a step is sent to workers in."""

    model_path: str
    model_unused = False  # set where the step will be handed every score it needs (a reuse run's language ID)

    @cached_property
    def model(self):
        return fasttext_model(self.model_path)

    def warm(self) -> None:
        """Load the model now: `ccpipe run` calls this before it forks its local workers, which then have it."""
        if not self.model_unused:
            self.model

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("model", None)  # fastText models do not pickle: each worker loads its own
        return state


@contextlib.contextmanager
def without_torch():
    """Import spaCy or presidio inside this, and PyTorch is not imported with them.

    thinc (under spaCy) and presidio import torch whenever it is installed (the `train` extra installs it):
    ~200 MB in every worker, for blank tokenizers and regex recognizers that never use it. Inside the block
    `import torch` fails, so they record "no torch"; afterwards torch imports normally again. Does nothing
    when torch is already imported. spaCy's first import also leaves its command line out
    (stages/utils/patches.py `spacy_without_cli`).
    """
    with patches.spacy_without_cli():
        if "torch" in sys.modules:
            yield
            return
        sys.modules["torch"] = None  # an ImportError for `import torch`, as if it were not installed
        try:
            yield
        finally:
            if sys.modules.get("torch", 0) is None:
                del sys.modules["torch"]
