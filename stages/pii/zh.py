"""Chinese PII for `stages/pii/scrub.py`: recognizers, context words, word boundaries next to CJK text, surrogates.

Chinese documents (language `zh`, or GlotLID's `cmn_Hani`, ...) are analyzed as presidio language "zh": every
recognizer the English set has (e-mail, phone via phonenumbers, IP, card, IBAN, SSN, resident ID), plus
regex recognizers for the way numbers are written in China:

    mobile     13812345678, 138-1234-5678, 138 1234 5678, +86 138 1234 5678, (+86)13812345678
    landline   010-62751234, 021-6888 8888, 0755-12345678, (0755)12345678   (area codes 010, 02x, 0[3-9]xx)
    UnionPay   62 + 14..17 digits, plain or grouped in fours, Luhn-valid (presidio's card pattern stops at 17)

Word boundaries: Chinese puts numbers directly against characters (`身份证号码为11010519491231002X。`). Han
characters are `\\w` to `regex`, so presidio's `\\b...\\b` patterns never match there. Before any recognizer
runs, `mask_unspaced` turns every character of a script written without spaces (Han, kana, Hangul, Thai, ...)
into U+2063 INVISIBLE SEPARATOR: one code point for one, so every offset stays valid, and `\\b` falls where
a reader sees a word edge. Not a space: phonenumbers' matcher joins digit groups across spaces, and would
read the date `2023年12月31日 10:30` as the number `2023 12 31 10`; U+2063 is neither a word character, nor
whitespace, nor in any recognizer's pattern or phonenumbers' punctuation. This applies to every entity and every language (a text without such characters is unchanged).
The spaCy pass, when one runs (a model with a lemmatizer or NER), still sees the original text, so
presidio's context enhancer can use the Chinese context words below.

Surrogates in Chinese documents keep the value's format: every digit after an international prefix becomes
0 and everything else stays (`+86 138 1234 5678` -> `+86 000 0000 0000`, `11010519491231002X` ->
`00000000000000000X`): the text still reads as a phone, card or ID number, and no real one is left.
"""

from __future__ import annotations

import datetime

import regex

# languages whose documents get the Chinese recognizer set: lid.176's `zh`, ISO 639-3 and GlotLID labels
CHINESE_LABELS = frozenset({"zh", "zho", "cmn", "yue", "wuu", "lzh"})

MASK = "\u2063"  # INVISIBLE SEPARATOR
# scripts written without spaces between words, and Hangul (particles attach to numbers: 010-1234-5678로)
_UNSPACED = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Bopomofo}\p{Thai}\p{Lao}\p{Khmer}"
                          r"\p{Myanmar}]")

PHONE_CONTEXT = ["电话", "電話", "手机", "手機", "联系", "聯繫", "致电", "致電", "热线", "熱線", "tel", "phone",
                 "mobile"]
CARD_CONTEXT = ["银行卡", "銀行卡", "卡号", "卡號", "信用卡", "借记卡", "借記卡", "银联", "銀聯", "card"]
ID_CONTEXT = ["身份证", "身份證", "证件", "證件", "identity", "resident", "id"]

# no letter or digit right before / after (CJK is masked first); "+" before: not inside "+8613..."
_START, _END = r"(?<![\w+])", r"(?![\w])"
_CC = r"(?:(?:\+|00)86[- ]?|\(\+?86\)[- ]?)"  # +86, 0086, (+86), (86)
MOBILE_PATTERN = _START + r"(?:" + _CC + r")?" + r"1[3-9][0-9](?:[- ]?[0-9]{4}){2}" + _END
_AREA = r"(?:010|02[0-9]|0[3-9][0-9]{2})"  # Beijing 010, 02x (Shanghai 021, ...), else 4 digits 0[3-9]xx
LANDLINE_PATTERN = _START + r"(?:\(" + _AREA + r"\)|" + _AREA + r")[- ]?[0-9]{3,4}[- ]?[0-9]{4}" + _END
UNIONPAY_PATTERN = _START + r"62[0-9]{2}(?:[- ]?[0-9]{4}){2}[- ]?[0-9]{4}(?:[- ]?[0-9]{1,3})?" + _END

# phonenumbers' regions for Chinese documents, instead of presidio's US, GB, DE, FR, IL, IN, CA, BR: their
# national formats take Chinese text's date-times (`04-01 12:19`), postcodes (`030001`) and 6-digit counts for
# phones (8 such false finds on warc/zh, now 0), while "+CC ..." numbers are found from any region
PHONE_REGIONS = ("CN", "TW")
# what a line needs for the Chinese phone patterns (a superset, as stages/pii/prefilter.py's LINE_NEEDS): the
# patterns without their edges and country code. Any 3 digits before: every line with a year went to
# phonenumbers' matcher (PII on the 151 zh texts of warc/zh: 0.165 s -> 0.114 s, the same findings)
PHONE_LINE_NEED = regex.compile(MOBILE_PATTERN.removeprefix(_START + r"(?:" + _CC + r")?").removesuffix(_END) + "|" +
                                LANDLINE_PATTERN.removeprefix(_START).removesuffix(_END))

_INTERNATIONAL_PREFIX = regex.compile(r"\(?\+[0-9]{1,3}\)?")
_DIGIT = regex.compile(r"[0-9]")


def is_chinese(language: str | None) -> bool:
    """True for lid.176's `zh` and labels such as `cmn_Hani`, `zh-Hant`, `zho`."""
    if not language:
        return False
    return regex.split(r"[_-]", language.lower(), maxsplit=1)[0] in CHINESE_LABELS


def mask_unspaced(text: str) -> str:
    """`text` with each character of an unspaced script replaced by MASK (same length, same offsets)."""
    if text.isascii():
        return text
    return _UNSPACED.sub(MASK, text)


def keep_format(value: str) -> str:
    """The value with its digits zeroed after any `+CC` / `(+CC)` prefix: `(+86)138-1234-5678` -> `(+86)000-0000-0000`."""
    prefix = _INTERNATIONAL_PREFIX.match(value)
    cut = prefix.end() if prefix else 0
    return value[:cut] + _DIGIT.sub("0", value[cut:])


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


# ---------------------------------------------------------------- CN resident identity card number (GB 11643)

_CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_CHECK = "10X98765432"  # ISO 7064 MOD 11-2: sum of weighted digits mod 11 indexes this


def cn_resident_id_is_valid(value: str) -> bool:
    """18 characters: 6-digit region, YYYYMMDD birth date, 3-digit sequence, MOD 11-2 check (digit or X)."""
    value = value.upper()
    if len(value) != 18 or not value[:17].isascii() or not value[:17].isdigit():
        return False
    try:
        datetime.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _CN_WEIGHTS))
    return _CN_CHECK[total % 11] == value[17]


def cn_resident_id_recognizer(language: str):
    from presidio_analyzer import Pattern, PatternRecognizer

    class CnResidentIdRecognizer(PatternRecognizer):
        """Chinese resident identity card numbers (18 characters), checksum-validated."""

        def __init__(self, supported_language: str = "en"):
            # \b on both sides: never inside a longer run of digits or letters
            pattern = Pattern("CN resident ID (18)",
                              r"\b[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
                              r"[0-9]{3}[0-9X]\b", 0.5)
            super().__init__(supported_entity="CN_RESIDENT_ID", patterns=[pattern],
                             context=ID_CONTEXT, supported_language=supported_language,
                             name="CnResidentIdRecognizer")

        def validate_result(self, pattern_text: str) -> bool:
            return cn_resident_id_is_valid(pattern_text)

    return CnResidentIdRecognizer(supported_language=language)


# ---------------------------------------------------------------- mainland phones, UnionPay


def chinese_recognizers() -> list:
    """The Chinese-only recognizers (presidio language "zh")."""
    from presidio_analyzer import Pattern, PatternRecognizer

    class CnPhoneRecognizer(PatternRecognizer):
        """Mainland mobiles (1[3-9]x, 11 digits) and landlines with their area code."""

        def __init__(self):
            # 0.5: above the 0.3 threshold on the pattern alone (presidio's phonenumbers matches score 0.4);
            # with a lemmatizing pipeline a context word nearby adds presidio's usual 0.35
            super().__init__(supported_entity="PHONE_NUMBER", name="CnPhoneRecognizer", supported_language="zh",
                             patterns=[Pattern("CN mobile", MOBILE_PATTERN, 0.5),
                                       Pattern("CN landline", LANDLINE_PATTERN, 0.4)],
                             context=PHONE_CONTEXT)

    class UnionPayRecognizer(PatternRecognizer):
        """UnionPay debit/credit cards: 62, 16-19 digits, Luhn check digit."""

        def __init__(self):
            super().__init__(supported_entity="CREDIT_CARD", name="UnionPayRecognizer", supported_language="zh",
                             patterns=[Pattern("UnionPay (16-19)", UNIONPAY_PATTERN, 0.3)], context=CARD_CONTEXT)

        def validate_result(self, pattern_text: str) -> bool:
            digits = "".join(_DIGIT.findall(pattern_text))
            # a valid resident ID from Gansu (region 62xxxx) can pass Luhn by chance: it is an ID, not a card
            return luhn_valid(digits) and not (len(pattern_text) == 18 and cn_resident_id_is_valid(pattern_text))

    return [CnPhoneRecognizer(), UnionPayRecognizer()]
