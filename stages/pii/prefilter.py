"""The cheap pre-filter of the PII stage (stages/pii/scrub.py): which lines presidio must see, for which
entities, and how much work they hold.

No recognizer can match across a newline, and each entity's patterns need something a cheap regex finds in
the line (`LINE_NEEDS`; phones: `phone_possible`). `line_windows` joins adjacent lines that need the same
entities into the windows presidio analyzes, and counts their *candidates*: each match of an entity's need,
and each digit group of a line that may hold a phone. presidio's work grows with that count, not with the
text's length: phonenumbers' matcher, run once per region (8 of them), parses every digit group it can join
into a candidate, ~0.1-0.6 ms per group; a 1 MB line of `+1 (555) 010-0100 ` holds ~170,000 and took ~60 s.
The scrubber drops a document over `pii.max_candidates` as `pii_too_dense` instead (a count, so the same
documents are dropped on any machine under any load).

    "mail a@b.de, call +49 30 2019433"  -> EMAIL_ADDRESS 1 (`@`) + CREDIT_CARD 1 (`2019433`: 4 + 3 digits)
                                           + PHONE_NUMBER 3 (49, 30, 2019433) = 5
"""

from __future__ import annotations

import contextlib
import functools
import json

import regex

from stages.utils.io import cache_dir, write_text_atomic

# What each entity's patterns cannot match without, as a regex over one line: a superset of every match that
# can score >= 0.3 (see the module docstring). `regex`'s \d is the digit set presidio's patterns use.
LINE_NEEDS = {
    "EMAIL_ADDRESS": regex.compile(r"@"),
    # IPv4: four dotted [0-9] groups; every IPv6 form (mapped, embedded, unspecified) has a colon
    "IP_ADDRESS": regex.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]|:"),
    # presidio's pattern: 4 digits, then 3-4, 3-4 and 3-5, each optionally after "-" or " "
    "CREDIT_CARD": regex.compile(r"\d{4}[- ]?\d{3}"),
    # two letters (any case, any script: a superset of [A-Z] under case folding) and two digits open an IBAN
    "IBAN_CODE": regex.compile(r"[^\W\d_]{2}[0-9]{2}"),
    # only "SSN5 (medium)" scores 0.5; the other four score 0.05 and no context can raise them (no lemmas)
    "US_SSN": regex.compile(r"[0-9]{3}[- .][0-9]{2}[- .][0-9]{4}"),
    "CN_RESIDENT_ID": regex.compile(r"[0-9]{17}"),
}
TRIGGER_LINE = regex.compile(r"[^\n]*[\d@:][^\n]*")  # a line any entity could need


@functools.cache
def _phone_rules(regions: tuple[str, ...]) -> tuple:
    """What a line needs for phonenumbers' matcher to find a valid number in any of `regions`.

    The matcher's candidates (its `_PATTERN`) are digits joined by its punctuation class, after optional
    opening brackets and plus signs; their extension part does not count towards the number. So every
    number found lies in a run of those characters, and its digits are that run's (or fewer). A valid number
    needs at least min(possible lengths) digits in its region, and 6 written internationally ("+" and the
    country code: Austria's 2 + 4). We list every digit string of up to `short` digits valid in a region
    (10,000 parses for Germany, whose shortest numbers have 4 digits; ~0.12 s, kept in the cache directory by
    phonenumbers' version, so once per machine); longer runs always go to the matcher.
    """
    # phonenumbers loads its metadata for every region on import (~0.3 s): only when the PII stage runs
    import phonenumbers
    from phonenumbers import PhoneMetadata, phonenumbermatcher, phonenumberutil

    # the runs that hold a digit (a run without one holds no number), each whole: from a position no run character
    # precedes, its digitless opening, a digit, the rest. Possessive (`*+`): linear, as a plain `[...]+` over the
    # line. The 5,210 lines bench's English pages ask about: 0.068 s instead of 0.12 s for every run
    chars = "[\\d" + phonenumberutil._VALID_PUNCTUATION + phonenumbermatcher._LEAD_CLASS_CHARS + "]"
    run = regex.compile(f"(?<!{chars})[{chars}--\\d]*+\\d{chars}*+", regex.V1)
    short = 5  # runs of 5+ digits always go to the matcher
    # the short valid numbers depend on phonenumbers' metadata only: kept in the cache directory by its version
    # (~0.12 s of parsing for presidio's 8 regions, in every worker of every run; a read is ~0.1 ms)
    cached = cache_dir("pii") / f"short-phones-{phonenumbers.__version__}-{short}-{'-'.join(regions)}.json"
    try:
        return run, short, frozenset(_digit_strings(json.loads(cached.read_text())))
    except (OSError, ValueError):
        pass  # none yet (or unreadable): computed, and kept for the next process
    valid = set()
    for region in regions:
        lengths = PhoneMetadata.metadata_for_region(region).general_desc.possible_length
        for n in range(min(lengths), short):
            for i in range(10 ** n):
                digits = str(i).zfill(n)
                try:
                    if phonenumbers.is_valid_number(phonenumbers.parse(digits, region)):
                        valid.add(digits)
                except phonenumbers.NumberParseException:
                    pass
    with contextlib.suppress(OSError):  # a read-only cache directory: computed again next time
        write_text_atomic(cached, json.dumps(sorted(valid)))
    return run, short, frozenset(valid)


def _digit_strings(value) -> list[str]:
    """The cached list as written, or ValueError: a file of anything else is not taken for it."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v.isdigit() and v.isascii() for v in value):
        raise ValueError("not a list of digit strings")
    return value


def phone_possible(line: str, regions: tuple[str, ...]) -> bool:
    """False when no region's matcher can find a valid phone number in `line` (True may still find none)."""
    run, short, valid = _phone_rules(regions)
    for m in run.finditer(line):
        digits = "".join(_DIGITS.findall(m.group()))
        if len(digits) >= short or digits in valid:
            return True
    return False


_DIGITS = regex.compile(r"\d")


_DIGIT_GROUP = regex.compile(r"\d+")


def line_windows(text: str, entities, phone_test) -> tuple[list[tuple[int, int, frozenset]], int]:
    """(start, end, entities) for runs of adjacent lines that some of `entities` could match in, and the
    number of candidates in them (see the module docstring). `phone_test(line)`: may the line hold a phone."""
    windows, candidates = [], 0
    needs = [(e, LINE_NEEDS.get(e)) for e in entities]
    for m in TRIGGER_LINE.finditer(text):
        line = m.group()
        ents = frozenset(e for e, need in needs if (need.search(line) if need is not None else phone_test(line)))
        if not ents:
            continue
        for e, need in needs:
            if e in ents:
                candidates += len((need or _DIGIT_GROUP).findall(line))
        if windows and windows[-1][1] + 1 == m.start() and windows[-1][2] == ents:
            windows[-1] = (windows[-1][0], m.end(), ents)
        else:
            windows.append((m.start(), m.end(), ents))
    return windows, candidates
