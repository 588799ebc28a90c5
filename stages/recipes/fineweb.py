"""FineWeb's own steps, for `recipe: fineweb`: datatrove's URLFilter and PIIFormatter exactly as
datatrove's `examples/fineweb.py` runs them, tagged with ccpipe's stage names.

The default recipe replaces these two with ccpipe's own (stages/filters/blocklist.py: the same UT1 list and word
lists plus the project's lists, host-word rules and allowlist; stages/pii/scrub.py: presidio with seven entity
types); README "Differences from FineWeb" lists every difference.
"""

from __future__ import annotations

from datatrove.pipeline.filters import URLFilter
from datatrove.pipeline.formatters import PIIFormatter


class FineWebURLFilter(URLFilter):
    """datatrove's URLFilter with its integrated lists (UT1 adult domains and URLs, banned words)."""

    stage = "blocklist"

    def __init__(self, soft_word_threshold: int = 2, exclusion_writer=None):
        from tldextract import TLDExtract  # as datatrove's: only for this recipe (with requests: ~45 ms to import)

        super().__init__(soft_word_threshold=soft_word_threshold, exclusion_writer=exclusion_writer)
        # its default TLDExtract() fetches the public suffix list first: the bundled snapshot, offline
        self.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)


class FineWebPII(PIIFormatter):
    """datatrove's PIIFormatter: public IP addresses and e-mail addresses replaced, nothing else."""

    stage = "pii"
