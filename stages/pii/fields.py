"""The PII scrubbing of the text, applied to the other text fields that leave the machine: URLs (parquet `url`,
the published ledger's `url` and `duplicate_of_url`), and the ledger's `detail` and `excerpt`.

A URL is scrubbed piece by piece between its delimiters, so that its shape survives and a recognizer never
runs across a `/` or an `&` (presidio's e-mail pattern would take `www.example.com/contact?email=jane` as the
local part); a percent-encoded piece is looked at decoded (`jane%40example.org`):

    https://www.example.com/contact?email=jane.roe@example.org&tel=+1-212-555-0123
 -> https://www.example.com/contact?email=email@example.com&tel=555-0142
    http:///mary.major@example.org/4111111111111111
 -> http:///firstname.lastname@example.org/0000 0000 0000 0000

Pieces with neither a digit nor an `@` are skipped: every entity scrubbed needs one of them. A bare run of
digits is an id in a URL, not a phone number (`_an_id`).
"""

from __future__ import annotations

import functools
import re
from urllib.parse import unquote

from stages.utils.memo import text_key

_URL_DELIMITERS = re.compile(r"([/?&=#;,+]+)")
_MAY_HOLD_PII = re.compile(r"[\d@]")


def scrub_url(scrubber, url: str | None, memo: dict | None = None) -> tuple[str | None, int]:
    """(url with each PII value replaced, how many were), with `scrubber` a stages.pii.scrub.PIIScrubber. `memo`:
    the PII stage's memo (stages/utils/memo.py) of URLs scrubbed before with these settings, replayed and added
    to: a `--reuse` run that keeps no new text then builds no presidio engine (0.3 s on bench)."""
    if not url or not _MAY_HOLD_PII.search(url):
        return url, 0
    key = text_key("\x00url\x00" + url) if memo is not None else None  # texts' keys start with their language
    if key in (memo or {}):
        found, *changed = memo[key]  # [found] or [found, scrubbed url]: most URLs have no PII
        return (changed[0] if changed else url), found
    scrubbed, found = _scrub_url(scrubber, url)
    if key is not None:
        memo[key] = [found, scrubbed] if scrubbed != url else [found]
    return scrubbed, found


def _scrub_url(scrubber, url: str) -> tuple[str, int]:
    out, found = [], 0
    for piece in _URL_DELIMITERS.split(url):
        if not _MAY_HOLD_PII.search(piece) and "%" not in piece:
            out.append(piece)
            continue
        scrubbed, n = _scrubbed_piece(scrubber, piece)
        out.append(scrubbed)
        found += n
    return "".join(out), found


# URLs repeat their pieces (a site's paths, dates, page numbers): the public ledger copy of bench's 1,416 rows
# analyses 1,789 pieces, 934 of them different, each through presidio's phone matcher for 8 regions where its
# digits could be a phone (~0.25 ms). A scrubber's answer for a piece never changes.
@functools.lru_cache(maxsize=8192)
def _scrubbed_piece(scrubber, piece: str) -> tuple[str, int]:
    plain = unquote(piece) if "%" in piece else piece
    findings = [r for r in scrubber._resolve(plain, scrubber.analyze(plain)) if not _an_id(plain, r)]
    for r in reversed(findings):
        plain = plain[:r.start] + scrubber._replacement_for(r.entity_type, plain[r.start:r.end], "en") + plain[r.end:]
    return (plain if findings else piece), len(findings)


def _an_id(piece: str, finding) -> bool:
    """A bare run of digits taken for a phone number: in a URL that is an article or product id
    (`...-best-original-song-1202189233/`: 19 of the bench corpus's 2,000 URLs), not a number to call."""
    return finding.entity_type == "PHONE_NUMBER" and piece[finding.start:finding.end].isdigit()


def scrub_text(scrubber, text: str | None) -> tuple[str | None, int]:
    """(text with each PII value replaced, how many were): a ledger detail or excerpt."""
    if not text or not _MAY_HOLD_PII.search(text):
        return text, 0
    return _scrubbed_text(scrubber, text)


# a ledger repeats its details: on bench, the 884 rows the language pre-check dropped carry 163 different ones
# ("en 0.0011 < 0.01 on the HTML's text" 45 times), each ~0.75 ms of phone matching (the digits of "0.0011" could
# be one): the public copy's scrubbing took 0.67 s for them. A scrubber's answer for a text never changes.
@functools.lru_cache(maxsize=4096)
def _scrubbed_text(scrubber, text: str) -> tuple[str, int]:
    scrubbed, findings = scrubber.scrub(text)
    return scrubbed, len(findings)
