"""jieba, as spaCy's Chinese tokenizer calls it, with its words unchanged and its costs cut.

- `JiebaWords`: datatrove's `word_tokenize` for Chinese without spaCy: jieba's words aligned as spaCy aligns
  them. spaCy's Chinese pipeline is built only for a text that has to go to datatrove's own tokenizer.
- `shared_cut()`: one `BlockCut` (stages/text/jieba_cut.py, jieba's `cut` word for word) per process, which
  remembers the words of each run of Han characters for the quality filters and MinHash alike (each of them
  had its own before, and MinHash cut again the runs the quality filters had cut).
- `load_words()`: jieba's dictionary words as the Aho-Corasick automaton `BlockCut` reads, unpickled from
  ccpipe's cache in 0.06 s in every worker that segments Chinese (jieba's 498,113-entry prefix dictionary
  takes 0.2 s from our cache, 0.6 s from jieba's own).
- `load_dictionary()`: jieba's own prefix dictionary from ccpipe's cache (a word list and a numpy array of
  counts, the entries of jieba's own `gen_pfdict`), where jieba itself cuts: another jieba version, or a text
  that goes to datatrove's tokenizer.

The 151 texts of warc/zh that reach the quality stage, split as the quality filters and then MinHash ask
(each text, then its simplified form), took 1.7 s of CPU with jieba's prefix dictionary, its `__cut_DAG`
with a cache per step, and spaCy's Chinese pipeline built; 0.85 s with these (presidio and spaCy imported
before, as the PII stage imports them anyway).

Both follow jieba 0.42.1's code (`Tokenizer.cut`, `Tokenizer.initialize`, `finalseg`); with another version
installed, jieba runs as it is (`SUPPORTED`), slower but with its own words.
"""

from __future__ import annotations

import importlib.metadata
import os
import pickle

import numpy as np

from stages.text.jieba_cut import LENGTH_BITS, LENGTH_MASK, BlockCut, key
from stages.utils.io import atomic_path, cache_dir
from stages.utils.loading import without_torch

SUPPORTED = "0.42.1"  # the jieba whose `cut`, `initialize` and `finalseg` these mirror
_SHARED_CUT = None


def _jieba():
    import jieba  # in the processes that segment Chinese only

    return jieba


def supported() -> bool:
    return _jieba().__version__ == SUPPORTED


def _default(jieba, dt) -> bool:
    return jieba.__version__ == SUPPORTED and dt.dictionary == jieba.DEFAULT_DICT


def _cache_folder(jieba):
    stat = os.stat(os.path.join(os.path.dirname(jieba.__file__), jieba.DEFAULT_DICT_NAME))  # get_dict_file's
    return cache_dir("jieba", f"{jieba.__version__}-{stat.st_size}-{stat.st_mtime_ns}")


def load_dictionary(dt=None) -> bool:
    """Initialize jieba's tokenizer `dt` (default: jieba's own, which spaCy uses) from ccpipe's cache of its
    prefix dictionary, building the cache with jieba's own `gen_pfdict` where there is none. False (jieba left
    to load itself) when jieba is not the supported version, has a custom dictionary, or is initialized."""
    jieba = _jieba()
    dt = dt or jieba.dt
    if not _default(jieba, dt) or dt.initialized:
        return False
    with dt.lock:
        if dt.initialized:
            return False
        dt.FREQ, dt.total = _prefix_dictionary(jieba, dt)
        dt.initialized = True
    return True


def _prefix_dictionary(jieba, dt) -> tuple[dict[str, int], int]:
    """jieba's `gen_pfdict` of its dictionary (every word and every prefix of one, with its count), cached."""
    folder = _cache_folder(jieba)
    words_path, counts_path = folder / "words.txt", folder / "counts.npy"
    cached = _read(words_path, counts_path)
    if cached is not None:
        return cached
    freq, total = dt.gen_pfdict(dt.get_dict_file())
    try:
        with atomic_path(words_path) as tmp:  # no entry holds a newline: dict.txt is read by lines
            tmp.write_bytes("\n".join(freq).encode("utf-8"))
        with atomic_path(counts_path) as tmp:  # the counts last: readers look for them first
            with open(tmp, "wb") as f:
                np.save(f, np.array([total, *freq.values()], dtype=np.int64), allow_pickle=False)
    except OSError:
        pass  # a cache we cannot write (a read-only home): the next process builds it again
    return freq, total


def _read(words_path, counts_path) -> tuple[dict[str, int], int] | None:
    """(entries, total) from the cache, None when it is missing or its two files do not match."""
    try:
        counts = np.load(counts_path, allow_pickle=False)
        words = words_path.read_bytes().decode("utf-8").split("\n")
    except (OSError, ValueError):
        return None
    if len(words) != len(counts) - 1:
        return None
    return dict(zip(words, counts[1:].tolist())), int(counts[0])


class _AutomatonOnly(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) != ("ahocorasick", "Automaton"):
            raise pickle.UnpicklingError(f"{module}.{name} in a jieba words cache")
        return super().find_class(module, name)


def load_words():
    """(automaton, total) for `BlockCut`: jieba's words of count > 0, each with value count << LENGTH_BITS |
    length, and the dictionary's total count; from ccpipe's cache, else built (1.3 s) and cached. None where
    jieba is not the supported version or has another dictionary."""
    import ahocorasick  # in the processes that segment Chinese only

    jieba = _jieba()
    if not _default(jieba, jieba.dt):
        return None
    version = importlib.metadata.version("pyahocorasick")  # the pickle holds its nodes as they are laid out
    path = _cache_folder(jieba) / f"words-reversed-utf16-pyahocorasick-{version}.pickle"
    try:
        with open(path, "rb") as f:
            words, total, count = _AutomatonOnly(f).load()
        if len(words) == count:
            return words, total
    except (OSError, EOFError, pickle.UnpicklingError, TypeError, ValueError):
        pass
    freq, total = _prefix_dictionary(jieba, jieba.dt)
    if max(map(len, freq)) > LENGTH_MASK or max(map(max, freq)) > "\uffff":
        return None
    words = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    for word, count in freq.items():
        if count:
            words.add_word(key(word), count << LENGTH_BITS | len(word))
    words.make_automaton()
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(pickle.dumps((words, total, len(words)), protocol=pickle.HIGHEST_PROTOCOL))
    except OSError:
        pass
    return words, total


def shared_cut():
    """jieba's `cut(text, cut_all=False)` as a list: one `BlockCut` per process, shared by every step and
    task; jieba's own cut where `load_words` gives no automaton."""
    global _SHARED_CUT
    if _SHARED_CUT is None:
        jieba = _jieba()
        loaded = load_words()
        if loaded is None:
            load_dictionary()
            _SHARED_CUT = lambda text: list(jieba.cut(text, cut_all=False))  # noqa: E731
        else:
            _SHARED_CUT = BlockCut(jieba, *loaded)
    return _SHARED_CUT


class JiebaWords:
    """datatrove's `word_tokenize` for Chinese (spaCy's Chinese tokenizer, jieba inside), without spaCy.

    The same words: jieba's cut, aligned with the text as spaCy's `get_words_and_spaces` aligns them (the gaps
    between words become words), stripped, blanks dropped. spaCy then builds a Doc of new lexemes, and its
    alignment copies the rest of the text for every word: half of the quality stage's time on the zh corpus.
    A text spaCy cannot align goes to datatrove's tokenizer (`inner`, a `SpaCyTokenizer("zh")`), which
    raises as it does; its spaCy pipeline (0.2 s to build) is built then only.
    """

    def __init__(self, tokenizer):
        self.inner = tokenizer
        self.cut = shared_cut()

    def _datatrove(self, text: str) -> list[str]:
        load_dictionary()  # before spaCy has jieba load it its own (slower) way
        with without_torch():  # spaCy's import, and its first pipeline (which imports the spaCy plugins installed)
            return self.inner.word_tokenize(text)

    def word_tokenize(self, text: str) -> list[str]:
        words = [w for w in self.cut(text) if w]
        if "".join(words) == text:  # jieba's words cover the text (they always do): the gaps between the words
            # that are not whitespace are whitespace, which the alignment below drops (0.1 s less on warc/zh)
            return [stripped for w in words if (stripped := w.strip())]
        if "".join("".join(words).split()) != "".join(text.split()):
            return self._datatrove(text)
        aligned, pos = [], 0
        for word in (w for w in words if not w.isspace()):
            start = text.find(word, pos)
            if start < 0:
                return self._datatrove(text)
            if start > pos:
                aligned.append(text[pos:start])
            aligned.append(word)
            pos = start + len(word)
            if pos < len(text) and text[pos] == " ":
                pos += 1
        aligned.append(text[pos:])
        return [w.strip() for w in aligned if w.strip()]
