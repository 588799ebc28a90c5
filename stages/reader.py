"""Read WARC `response` records into documents: HTTP 200 HTML only, decoded to text, every other record counted.

A kept record becomes

    Document(text="<!doctype html>...", id="<urn:uuid:...>", metadata={"url": "https://example.com/",
             "date": "2024-05-20T10:00:00Z", "dump": "CC-MAIN-2024-22", "file_path": "crawl/00000.warc.gz",
             "offset": 12345, "content_type": "text/html"})

and every dropped response goes to the `reader` drop ledger under one of `REASONS`. At the end of `run()` a
report says what happened to each file, in `report_folder/{rank:05d}.json`:

    {"files": [{"path": "crawl/00000.warc.gz", "responses": 3, "kept": 2, "dropped": 1, "other_records": 7,
                "error": null, "stopped_early": false}]}

`responses == kept + dropped` for every file, damaged or not: the run's `records_total` is the sum of
`responses`. A damaged file (truncated gzip, not a WARC, junk between members) stops that file only; the
records read before the damage still count, and `error` names the file and the damage.
"""

from __future__ import annotations

import codecs
import functools
import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from typing import Iterator

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

from stages.ledger import DropLedger, drop

logger = logging.getLogger(__name__)

REASONS = (
    "bad_url",  # no http(s) scheme or host, or unparseable (`http://[::1/x`)
    "http_status",  # not HTTP 200
    "non_html",  # payload type is not text/html or application/xhtml+xml
    "too_large",  # payload over max_payload_bytes, declared or read
    "damaged_record",  # payload unreadable, shorter than declared, or no HTTP headers
    "binary",  # control bytes in a payload that claims to be HTML
    "decode_error",  # no charset decodes it
    "empty",  # zero-byte payload
)
HTML_TYPES = ("text/html", "application/xhtml+xml")
SNIFF_BYTES = 4096  # where <meta charset> must appear (the HTML standard says the first 1024 bytes; pages are sloppier)
BINARY_SAMPLE = 8192
# C0 controls other than \t \n \f \r and ESC (ISO-2022-JP needs ESC): about 10% of random bytes, ~0 in real HTML
CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\x0c\r\x1b") + b"\x7f"
MAX_CONTROL_FRAC = 0.02
MAX_REPLACED_FRAC = 0.01  # a declared charset that fails on <1% of characters is still right: keep it, replace those
DRAIN_CHUNK = 1 << 20  # skip unread payloads 1 MiB at a time (warcio's own drain reads 16 KiB)
# labels the HTML standard maps to a wider encoding: pages labelled latin-1 are really windows-1252, and so on
CHARSET_ALIASES = {
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
    "us-ascii": "cp1252", "ascii": "cp1252", "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
    "shift_jis": "cp932", "sjis": "cp932", "x-sjis": "cp932", "euc-kr": "cp949", "tis-620": "cp874",
    "iso-8859-9": "cp1254", "big5": "big5hkscs",
}  # fmt: skip
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
DUMP_IN_PATH = re.compile(r"CC-MAIN-\d{4}-\d{2}")


@dataclass
class FileFate:
    """What happened to one input file: the rows of the reader report."""

    path: str
    responses: int = 0
    kept: int = 0
    dropped: int = 0
    other_records: int = 0
    error: str | None = None
    stopped_early: bool = False


class WarcReader(PipelineStep):
    """Reads `response` records of (gzip-per-record or plain) WARC files into HTML documents.

    Rank `r` of `world_size` reads `paths[r::world_size]`, in order. Paths are local or fsspec URLs
    (`s3://`, `https://`), read as streams: with `max_records` only the head of a remote file is fetched.
    """

    name = "📖 WARC reader"
    stage = "reader"
    type = "📖 - READER"

    def __init__(
        self,
        paths: list[str],
        ledger_folder: str,
        report_folder: str,
        max_payload_bytes: int = 1 << 20,  # Common Crawl truncates payloads at 1 MiB
        max_records: int | None = None,
        dump: str | None = None,
        progress_folder: str | None = None,
    ):
        super().__init__()
        if isinstance(paths, str):
            raise TypeError("paths must be a list of paths, not one string")
        if max_payload_bytes < 0:
            raise ValueError(f"max_payload_bytes must be >= 0, got {max_payload_bytes}")
        if max_records is not None and max_records < 1:
            raise ValueError(f"max_records must be >= 1 or None, got {max_records}")
        self.paths = list(paths)
        self.ledger_folder = ledger_folder
        self.report_folder = report_folder
        self.max_payload_bytes = max_payload_bytes
        self.max_records = max_records
        self.dump = dump
        self.progress_folder = progress_folder

    def _report_progress(self, rank: int, responses: int) -> None:
        """Responses read so far by this task, in `progress_folder/{rank}`, for the command line's progress bar."""
        path = os.path.join(self.progress_folder, f"{rank:05d}")
        os.makedirs(self.progress_folder, exist_ok=True)
        with open(path + ".tmp", "w") as f:
            f.write(str(responses))
        os.replace(path + ".tmp", path)

    def run(self, data=None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        if data:
            yield from data
        fates = []
        responses = 0
        with DropLedger(self.ledger_folder, "reader") as ledger:
            for path in self.paths[rank::world_size]:
                fate = FileFate(path)
                fates.append(fate)
                self.stat_update("files")
                for doc, reason, detail in self._read_file(path, fate):
                    self.stat_update("responses")
                    responses += 1
                    if self.progress_folder and responses % 200 == 0:
                        self._report_progress(rank, responses)
                    if reason is None:
                        fate.kept += 1
                        self.stat_update("kept")
                        self.update_doc_stats(doc)
                        yield doc
                    else:
                        fate.dropped += 1
                        self.stat_update("dropped", f"dropped_{reason}")
                        drop(ledger, doc, rank, reason, detail)
                if fate.error:
                    self.stat_update("file_errors")
                    logger.warning("%s", fate.error)
        write_report(self.report_folder, rank, fates)
        if self.progress_folder:
            self._report_progress(rank, responses)

    def _read_file(self, path: str, fate: FileFate) -> Iterator[tuple[Document, str | None, str | None]]:
        """(doc, reason or None if kept, detail) per response record. Only warcio calls are guarded: the
        `yield`s are outside every try, so an exception thrown in by a later step is never taken for damage."""
        try:
            f = open_stream(path, whole=self.max_records is None)
        except Exception as exc:
            fate.error = file_error(path, "cannot open", exc)
            return
        with f:
            iterator = truncation_aware_iterator()(f)
            records = iter(iterator)
            dump = self.dump
            while True:
                if self.max_records is not None and fate.responses >= self.max_records:
                    fate.stopped_early = True
                    return
                try:
                    record = next(records)
                    if record.format != "warc":
                        raise ValueError(f"not a WARC record (parsed as {record.format!r})")
                    if record.rec_type == "warcinfo" and dump is None:
                        dump = warcinfo_dump(record)
                except StopIteration:
                    if iterator.truncated:
                        fate.error = f"{path}: file ends inside a gzip member (truncated)"
                    return
                except Exception as exc:
                    fate.error = file_error(path, "unreadable record", exc)
                    return
                if record.rec_type != "response":
                    fate.other_records += 1
                    self.stat_update("other_records")
                    continue
                fate.responses += 1
                with self.track_time():
                    try:
                        text, reason, detail = self._judge(record)
                    except Exception as exc:  # a payload that cannot be read (bad chunking, broken gzip): count it
                        text, reason, detail = None, "damaged_record", f"{type(exc).__name__}: {exc}"[:200]
                    try:
                        drain(record.raw_stream)
                        offset, damage = iterator.get_record_offset(), None
                        if missing := getattr(record.raw_stream, "limit", 0):  # a lying length, a cut file
                            text, reason, detail = None, "damaged_record", f"record ends {missing} bytes short"
                    except Exception as exc:  # the file itself broke under this record: count it, then stop
                        offset, damage = None, exc
                        text, reason, detail = None, "damaged_record", f"{type(exc).__name__}: {exc}"[:200]
                meta = {"dump": dump or dump_from_path(path), "file_path": path, "offset": offset}
                yield record_document(record, text or "", meta), reason, detail
                if damage is not None:
                    fate.error = file_error(path, f"response {fate.responses} unreadable", damage)
                    return

    def _judge(self, record) -> tuple[str | None, str | None, str | None]:
        """(text, reason, detail) for one response record; reads at most max_payload_bytes + 1 payload bytes."""
        ensure_http_headers(record)
        url = record.rec_headers.get_header("WARC-Target-URI") or ""
        if not valid_url(url):
            return None, "bad_url", url[:200]
        if record.http_headers is None:
            return None, "damaged_record", "response record without HTTP headers"
        status = record.http_headers.get_statuscode()
        if status != "200":
            return None, "http_status", status
        mime = payload_type(record)
        if mime not in HTML_TYPES:
            return None, "non_html", mime or "missing"
        if record.payload_length > self.max_payload_bytes:  # declared length, before reading a byte
            return None, "too_large", f"declared {record.payload_length} bytes"
        payload = record.content_stream().read(self.max_payload_bytes + 1)
        if len(payload) > self.max_payload_bytes:  # a lying length, or a Content-Encoding bomb
            return None, "too_large", f"more than {self.max_payload_bytes} bytes"
        if not payload:
            return None, "empty", None
        charset = header_charset(record.http_headers.get_header("Content-Type"))
        if looks_binary(payload, charset):
            return None, "binary", None
        decoded = decode_html(payload, charset)
        if decoded is None:
            return None, "decode_error", charset
        return decoded, None, None


@functools.cache
def truncation_aware_iterator() -> type:
    """warcio's ArchiveIterator, noticing what it lets pass quietly: a file that ends inside a gzip member."""
    from warcio.archiveiterator import ArchiveIterator

    class TruncationAwareIterator(ArchiveIterator):
        truncated = False

        def close(self):
            decompressor = self.reader.decompressor if self.reader else None
            if decompressor is not None and self.reader.num_read > 0 and not decompressor.eof:
                self.truncated = True
            super().close()

    return TruncationAwareIterator


def record_document(record, text: str, meta: dict) -> Document:
    """The document of a response record, kept (with its HTML) or dropped (text="", same id and metadata)."""
    headers = record.rec_headers
    return Document(text=text, id=headers.get_header("WARC-Record-ID") or "", metadata={
        "url": headers.get_header("WARC-Target-URI"),
        "date": headers.get_header("WARC-Date"),
        "dump": meta["dump"],
        "file_path": meta["file_path"],
        "offset": meta["offset"],
        "content_type": payload_type(record),
    })  # fmt: skip


def ensure_http_headers(record) -> None:
    """Parse the HTTP headers warcio leaves unparsed when the target URI is not http(s) (`hard::page.html`
    in extraction benchmarks): the WARC Content-Type, not the URI, says whether the block is an HTTP message."""
    if record.http_headers is not None or not (record.content_type or "").startswith("application/http"):
        return
    if not record.length:
        return
    from warcio.statusandheaders import StatusAndHeadersParser

    start = record.raw_stream.tell()
    record.http_headers = StatusAndHeadersParser(["HTTP/1.0", "HTTP/1.1"], verify=False).parse(record.raw_stream)
    record.payload_length = record.length - (record.raw_stream.tell() - start)


def cache_dir() -> str:
    return os.path.join(os.environ.get("CCPIPE_CACHE", os.path.expanduser("~/.cache/ccpipe")), "warc")


def open_stream(path: str, whole: bool = True):
    """Open a local path or an fsspec URL. A remote file read whole is fetched once into the local cache
    (`$CCPIPE_CACHE/warc`, default ~/.cache/ccpipe/warc) and reused by later runs; one read partly
    (`max_records`) is streamed, so a peek at a 1 GB WARC costs only the bytes it reads."""
    if "://" not in path:
        return open(path, "rb")
    import fsspec

    if whole and not path.startswith(("file://", "memory://")):
        return fsspec.open(f"simplecache::{path}", "rb", simplecache={"cache_storage": cache_dir()}).open()
    return fsspec.open(path, "rb").open()


def drain(stream) -> None:
    """Skip what is left of a record in large reads, holding at most DRAIN_CHUNK bytes."""
    while stream.read(DRAIN_CHUNK):
        pass


def payload_type(record) -> str | None:
    """WARC-Identified-Payload-Type when present and non-empty, else the HTTP Content-Type, lowercased."""
    mime = (record.rec_headers.get_header("WARC-Identified-Payload-Type") or "").strip()
    if not mime and record.http_headers is not None:
        mime = record.http_headers.get_header("Content-Type") or ""
    return mime.split(";")[0].strip().lower() or None


def valid_url(url: str) -> bool:
    """A scheme, and a host when the scheme is http(s). Benchmark keys like `hard::page.html` pass: they are
    URIs, and the bench keeps them; `not a url`, `http:///x` and `http://[::1/x` do not."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  raises ValueError on a bad port
    except ValueError:  # `http://[::1/x`: Invalid IPv6 URL
        return False
    if not re.fullmatch(r"[a-z][a-z0-9+.-]*", parts.scheme):
        return False
    return bool(parts.hostname) or parts.scheme not in ("http", "https")


def header_charset(content_type: str | None) -> str | None:
    match = re.search(r"charset\s*=\s*[\"']?([^\"';\s]+)", content_type or "", re.IGNORECASE)
    return match.group(1) if match else None


def codec_for(label: str | None) -> str | None:
    """A Python codec name for a charset label, or None when Python does not know it."""
    if not label:
        return None
    label = label.strip().lower()
    try:
        return codecs.lookup(CHARSET_ALIASES.get(label, label)).name
    except LookupError:
        return None


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
        if codec is None:
            continue
        try:
            return payload.decode(codec)
        except UnicodeDecodeError:
            text = payload.decode(codec, errors="replace")
            if text.count("\ufffd") <= MAX_REPLACED_FRAC * len(text):
                return text
    from charset_normalizer import from_bytes

    best = from_bytes(payload, cp_isolation=WEB_CHARSETS).best()
    if best is None:
        return None
    text = str(best)
    return None if looks_binary(text.encode("utf-8"), "utf-8") else text


def warcinfo_dump(record) -> str | None:
    """The `isPartOf` field of a warcinfo record (`CC-MAIN-2024-22` in Common Crawl)."""
    fields = record.content_stream().read(64 * 1024).decode("utf-8", errors="replace")
    match = re.search(r"^isPartOf:\s*(\S+)", fields, re.MULTILINE)
    return match.group(1) if match else None


def dump_from_path(path: str) -> str:
    match = DUMP_IN_PATH.search(path)
    return match.group(0) if match else "unknown"


def file_error(path: str, what: str, exc: BaseException) -> str:
    """One line naming the file and the damage; warcio's messages span lines and quote raw bytes."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    message = lines[0] if lines else type(exc).__name__
    if "non-chunked gzip" in str(exc):
        message = "one gzip member holds several records (not gzip-per-record; `warcio recompress` fixes it)"
    message = "".join(c if c.isprintable() and c.isascii() else ascii(c)[1:-1] for c in message[:200])
    return f"{path}: {what}: {type(exc).__name__}: {message}"


def write_report(folder: str, rank: int, fates: list[FileFate]) -> str:
    """Write `{folder}/{rank:05d}.json` atomically (temporary name, then rename)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{rank:05d}.json")
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"files": [asdict(fate) for fate in fates]}, f, indent=1)
    os.replace(tmp, path)
    return path
