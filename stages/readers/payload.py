"""What a record holds: web page bytes to text, as browsers do it (byte-order mark, then the HTTP charset,
then <meta charset>, then detection by charset_normalizer among the encodings the HTML standard knows), a
test for bytes that are not text at all, and whether a target URI is usable.
"""

from __future__ import annotations

import codecs
import re
from urllib.parse import urlsplit

from charset_normalizer import from_bytes

from stages.utils.deadline import RecordTimeout
from stages.utils.remote_io import TransientError

SNIFF_BYTES = 4096  # where <meta charset> must appear (the HTML standard says the first 1024 bytes; pages are sloppier)
BINARY_SAMPLE = 8192
# C0 controls other than \t \n \f \r and ESC (ISO-2022-JP needs ESC): about 10% of random bytes, ~0 in real HTML
CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\x0c\r\x1b") + b"\x7f"
MAX_CONTROL_FRAC = 0.02
MAX_REPLACED_FRAC = 0.01  # a declared charset that fails on <1% of characters is still right: keep it, replace those
# labels the HTML standard maps to a wider encoding: pages labelled latin-1 are really windows-1252, and so on
CHARSET_ALIASES = {
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
    "us-ascii": "cp1252", "ascii": "cp1252", "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
    "shift_jis": "cp932", "sjis": "cp932", "x-sjis": "cp932", "euc-kr": "cp949", "tis-620": "cp874",
    "iso-8859-9": "cp1254", "big5": "big5hkscs",
}  # fmt: skip
# Python codecs that no web page is written in, refused as a label as a browser refuses an unknown one (then
# <meta charset>, then detection): punycode's decoder is quadratic (a 1 MB page labelled `punycode` took 83 s),
# the escape codecs and idna are transforms of text, not charsets; `undefined` fails on every byte
NOT_WEB_CODECS = {"punycode", "idna", "unicode_escape", "raw_unicode_escape", "undefined"}
# what detection may guess: the HTML standard's encodings, less the Mac ones that tie with windows-125x
# on short pages (charset_normalizer reads a 400-byte windows-1251 page as mac_cyrillic otherwise)
WEB_CHARSETS = ["utf_8", "cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258",
                "cp874", "iso8859_2", "iso8859_4", "iso8859_5", "iso8859_6", "iso8859_7", "iso8859_8", "iso8859_10",
                "iso8859_13", "iso8859_14", "iso8859_15", "iso8859_16", "koi8_r", "koi8_u", "cp866", "gb18030",
                "big5", "euc_jp", "iso2022_jp", "shift_jis", "cp932", "euc_kr", "cp949"]  # fmt: skip
# a byte-order mark beats any declaration (HTML standard); UTF-32 LE first: its mark starts like UTF-16 LE's
BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))  # fmt: skip
META_CHARSET = re.compile(rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([a-zA-Z0-9_.:+-]{1,40})""", re.IGNORECASE)


class DamagedRecord(Exception):
    """A record's bytes do not parse (bad chunking, a broken gzip or brotli body, HTTP headers that are not
    HTTP): the input's fault, counted as `damaged_record`. Any other exception while a record is judged is a
    bug of ccpipe's own: the task fails, and a rerun redoes it (once fixed) instead of blaming the input."""


def parsed(action, *args):
    """`action(*args)` (warcio reading a record's bytes), its failures as DamagedRecord; a transient network
    error (retries exhausted) stays what it is, for the task to fail, and so does the record's time running out
    (`run.record_timeout`: a `timeout` drop, not the input's damage)."""
    try:
        return action(*args)
    except (TransientError, RecordTimeout):
        raise
    except Exception as exc:
        raise DamagedRecord(f"{type(exc).__name__}: {exc}"[:200]) from exc


def read_payload(record, limit: int) -> bytes:
    """At most `limit` bytes of the record's payload, decoded from its transfer and content encodings."""
    return parsed(lambda: record.content_stream().read(limit))


def header_charset(content_type: str | None) -> str | None:
    match = re.search(r"charset\s*=\s*[\"']?([^\"';\s]+)", content_type or "", re.IGNORECASE)
    return match.group(1) if match else None


def codec_for(label: str | None) -> str | None:
    """A Python codec name for a charset label, or None when Python does not know it."""
    if not label:
        return None
    label = label.strip().lower()
    try:
        info = codecs.lookup(CHARSET_ALIASES.get(label, label))
    except LookupError:
        return None
    # bytes-to-bytes and str-to-str codecs (base64, zlib, uu, rot13) are no text encodings at all
    if info.name.replace("-", "_") in NOT_WEB_CODECS or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def looks_binary(payload: bytes, charset: str | None) -> bool:
    if payload.startswith(tuple(bom for bom, _ in BOMS)) or (codec_for(charset) or "").startswith("utf-16"):
        return False  # UTF-16 text is half NUL bytes: judge it after decoding
    sample = payload[:BINARY_SAMPLE]
    controls = len(sample) - len(sample.translate(None, CONTROL_BYTES))
    return controls > MAX_CONTROL_FRAC * len(sample)


def decode_html(payload: bytes, http_charset: str | None) -> str | None:
    """Byte-order mark, then the HTTP charset, then <meta charset>, then detection (charset_normalizer)."""
    for bom, codec in BOMS:
        if payload.startswith(bom):
            return payload.decode(codec, errors="replace")
    meta = META_CHARSET.search(payload[:SNIFF_BYTES])
    meta_codec = codec_for(meta.group(1).decode("ascii")) if meta else None
    if meta_codec and meta_codec.startswith(("utf-16", "utf-32")):
        meta_codec = "utf-8"  # a meta tag readable as ASCII cannot be UTF-16: the HTML standard reads it as UTF-8
    for codec in (codec_for(http_charset), meta_codec):
        text = _decoded(payload, codec) if codec else None
        if text is not None:
            return text
    best = from_bytes(payload, cp_isolation=WEB_CHARSETS).best()
    if best is None:
        return None
    text = str(best)
    return None if looks_binary(text.encode("utf-8"), "utf-8") else text


def _decoded(payload: bytes, codec: str) -> str | None:
    """The payload in `codec`, with the few characters it cannot decode replaced; None when it fails on more
    than MAX_REPLACED_FRAC of them, or fails outright (punycode, idna and `undefined` ignore `errors=`)."""
    try:
        return payload.decode(codec)
    except UnicodeError:
        pass
    try:
        text = payload.decode(codec, errors="replace")
    except UnicodeError:
        return None
    return text if text.count("\ufffd") <= MAX_REPLACED_FRAC * len(text) else None


def valid_url(url: str) -> bool:
    """A scheme, and a host when the scheme is http(s). Benchmark keys like `hard::page.html` pass: they are
    URIs, and the bench keeps them; `not a url`, `http:///x` and `http://[::1/x` do not."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  raises ValueError on a bad port
    except ValueError:  # `http://[::1/x`: Invalid IPv6 URL
        return False
    if not re.fullmatch(r"[a-z][a-z0-9+.-]*", parts.scheme):
        return False
    return bool(parts.hostname) or parts.scheme not in ("http", "https")
