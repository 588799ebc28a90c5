"""The four quality filters of FineWeb's recipe, with FineWeb's thresholds: datatrove's own filters.

Their drop reasons are prefixed with the filter's name (`gopher_rep_dup_line_frac`, `gopher_short_doc`,
`c4_curly_bracket`, `fineweb_line_punct_ratio`) so that two filters' `empty` cannot be confused.

| filter            | thresholds (FineWeb)                                                       |
|-------------------|----------------------------------------------------------------------------|
| Gopher repetition | dup line 0.3, dup para 0.3, dup line chars 0.2, dup para chars 0.2,        |
|                   | top 2/3/4-gram 0.20/0.18/0.16, dup 5..10-gram 0.15..0.10                   |
| Gopher quality    | 50..100k words, mean word 3..10 chars, symbol/word <= 0.1, bullets <= 0.9, |
|                   | ellipsis lines <= 0.3, alpha words >= 0.2, >= 2 stop words                 |
| C4                | no terminal-punctuation rule; drops lorem ipsum, "{", < 5 sentences;       |
|                   | removes javascript/policy lines and lines under 3 words                    |
| FineWeb quality   | line punct >= 0.12, short lines (< 30 chars) <= 0.67, dup chars <= 0.01,   |
|                   | newline/word <= 0.3                                                         |
"""

from __future__ import annotations

import re

from datatrove.data import Document
from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

from pipeline.config import QualityConfig
from pipeline.ledger import DropLedger

_NOT_SNAKE = re.compile(r"[^a-z0-9]+")


def _prefixed(base: type, prefix: str) -> type:
    """A subclass of a datatrove filter whose drop reasons carry `prefix` and are snake_case."""

    def filter(self, doc: Document):
        result = base.filter(self, doc)
        if isinstance(result, tuple) or result is False:
            reason = result[1] if isinstance(result, tuple) else "dropped"
            reason = _NOT_SNAKE.sub("_", str(reason).lower()).strip("_")
            return False, reason if reason.startswith(prefix) else prefix + reason
        return result

    return type(base.__name__, (base,), {"filter": filter, "__module__": __name__})


GopherRepetition = _prefixed(GopherRepetitionFilter, "gopher_rep_")
GopherQuality = _prefixed(GopherQualityFilter, "gopher_")
C4Quality = _prefixed(C4QualityFilter, "c4_")
FineWebQuality = _prefixed(FineWebQualityFilter, "fineweb_")


def quality_filters(config: QualityConfig, ledger_folder: str) -> list:
    """FineWeb's filters in FineWeb's order, each with its own file in the quality stage's ledger."""

    def ledger(part: str) -> DropLedger:
        return DropLedger(ledger_folder, "quality", part=part)

    filters = []
    if config.gopher_repetition:
        filters.append(GopherRepetition(exclusion_writer=ledger("gopher_rep")))
    if config.gopher_quality:
        filters.append(GopherQuality(exclusion_writer=ledger("gopher")))
    if config.c4:
        filters.append(C4Quality(exclusion_writer=ledger("c4"), filter_no_terminal_punct=False))
    if config.fineweb:
        filters.append(FineWebQuality(exclusion_writer=ledger("fineweb")))
    return filters
