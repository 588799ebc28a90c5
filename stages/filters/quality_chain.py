"""datatrove's four quality filters themselves, their drop reasons prefixed with the filter's name
(`gopher_rep_dup_line_frac`, `gopher_short_doc`, `c4_curly_bracket`, `fineweb_line_punct_ratio`): the chain
`quality.fast: false` runs, and the one FineWeb-2's profiles configure (stages/filters/quality.py)."""

from __future__ import annotations

import re

from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)

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

    return type(base.__name__, (base,), {"filter": filter, "__module__": __name__, "stage": "quality"})


GopherRepetition = _prefixed(GopherRepetitionFilter, "gopher_rep_")
GopherQuality = _prefixed(GopherQualityFilter, "gopher_")
C4Quality = _prefixed(C4QualityFilter, "c4_")
FineWebQuality = _prefixed(FineWebQualityFilter, "fineweb_")
