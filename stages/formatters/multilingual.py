"""The final touches FineWeb-2 adds for languages other than English (its MinHash shingles cut by each
language's word segmenter are `stages/dedup.LanguageSignature`).

English documents go through each step untouched, so a run that keeps only English is FineWeb's.

- `FixEncoding` (before PII) and `RemoveTableLines` (after), FineWeb-2's step 6: datatrove's FTFYFormatter,
  and SymbolLinesFormatter(symbols_to_remove=["|"], replace_char="\\n") for the lines of `|` that trafilatura
  leaves where a table was.
"""

from __future__ import annotations

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.formatters import FTFYFormatter, SymbolLinesFormatter


class _ForLanguages(PipelineStep):
    type = "✂️ - FORMAT"

    def __init__(self, languages):
        super().__init__()
        self.languages = frozenset(languages)
        self._formatter = None

    def formatter(self):
        raise NotImplementedError

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            if doc.metadata.get("language") in self.languages:
                if self._formatter is None:
                    self._formatter = self.formatter()
                with self.track_time():
                    text = self._formatter.format(doc.text)
                if text != doc.text:
                    self.stat_update("changed")
                    doc.text = text
            yield doc


class FixEncoding(_ForLanguages):
    """ftfy's encoding fixes (datatrove's FTFYFormatter, its defaults: no width or quote normalization)."""

    name = "😎 FTFY (FineWeb-2)"

    def formatter(self):
        return FTFYFormatter()


class RemoveTableLines(_ForLanguages):
    """Lines made only of `|` (and spaces), trafilatura's table borders: each run becomes one blank line."""

    name = "⚞ Table lines (FineWeb-2)"

    def formatter(self):
        return SymbolLinesFormatter(symbols_to_remove=["|"], replace_char="\n")
