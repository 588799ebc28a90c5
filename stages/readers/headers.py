"""Record headers read with a bound: warcio reads each header line whole, however long.

One response whose HTTP header is a single 1 GiB line (1 MB gzipped) took the reader to 1,013 MB; 3 GiB to
1,708 MB. Here every WARC or HTTP header block is read in lines of at most what is left of `HEADER_CAP`
(64 KiB: Common Crawl's largest header blocks are a few KB; Apache refuses request headers over 8 KiB a line):

- HTTP headers over the cap: the record is kept in the stream as `OversizedHeaders` (no status line, no
  fields), which the reader drops as `too_large`; the rest of the record is skipped in 1 MiB reads, so the
  file goes on with the next record;
- WARC headers over the cap: `HeaderTooLarge`, damage that stops the file (the reader names it);
- a line of junk between records is read in pieces of at most `HEADER_CAP` bytes.

What is held per record is then at most `max_payload_bytes` + `HEADER_CAP` plus warcio's buffers (one 16 KiB
compressed block inflates to at most ~16 MiB).
"""

from __future__ import annotations

import functools

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import BufferedReader
from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser
from zlib_ng import zlib_ng

HEADER_CAP = 64 * 1024

# A record's rest is skipped by inflating it: one response whose header line is 1 GiB of one byte (1 MB
# gzipped, the most a 1 MiB gzip member holds) cost 3.3 s of zlib; zlib-ng inflates the same bytes in 0.77 s
# (isal 1.05 s). Same bytes out, same members, errors and `eof`.
_DECOMPRESSORS = {**BufferedReader.DECOMPRESSORS, "gzip": lambda: zlib_ng.decompressobj(16 + zlib_ng.MAX_WBITS)}


class HeaderTooLarge(ValueError):
    """A header block longer than HEADER_CAP bytes."""


class OversizedHeaders(StatusAndHeaders):
    """Stands for HTTP headers over HEADER_CAP: nothing of them is kept."""

    def __init__(self):
        super().__init__("", [], protocol="")


class _CappedLines:
    """A stream whose `readline` returns lines of at most what is left of `cap` bytes in all."""

    def __init__(self, stream, cap: int):
        self.stream, self.left = stream, cap

    def readline(self, length: int | None = None) -> bytes:
        line = self.stream.readline(self.left + 1)
        self.left -= len(line)
        if self.left < 0:
            raise HeaderTooLarge(f"header block over {HEADER_CAP} bytes")
        return line


class BoundedParser(StatusAndHeadersParser):
    """warcio's header parser reading at most HEADER_CAP bytes. `oversized_ok`: HTTP headers over the cap give
    `OversizedHeaders` instead of raising, so the iterator goes on to the record's end and the next record."""

    def __init__(self, statuslist, verify: bool = True, oversized_ok: bool = False):
        super().__init__(statuslist, verify)
        self.oversized_ok = oversized_ok

    def parse(self, stream, full_statusline=None):
        try:
            return super().parse(_CappedLines(stream, HEADER_CAP - len(full_statusline or b"")), full_statusline)
        except HeaderTooLarge:
            if self.oversized_ok:
                return OversizedHeaders()
            raise


@functools.cache
def bounded_iterator(base: type = ArchiveIterator) -> type:
    """`base` (an ArchiveIterator) with every header read bounded by HEADER_CAP."""

    class BoundedIterator(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.reader.DECOMPRESSORS = _DECOMPRESSORS  # read_next_member() makes each member's from it
            self.reader._init_decomp(self.reader.decomp_type)
            loader = self.loader
            loader.warc_parser = BoundedParser(loader.warc_parser.statuslist, loader.warc_parser.verify)
            loader.http_parser = BoundedParser(loader.http_parser.statuslist, loader.http_parser.verify, True)
            loader.http_req_parser = BoundedParser(loader.http_req_parser.statuslist, loader.http_req_parser.verify,
                                                   True)

        def _consume_blanklines(self):
            reader = self.reader
            capped = _Piecewise(reader)
            self.reader = capped
            try:
                return super()._consume_blanklines()
            finally:
                self.reader = reader

    return BoundedIterator


class _Piecewise:
    """The iterator's reader as `_consume_blanklines` sees it: lines read HEADER_CAP bytes at most at a time."""

    def __init__(self, reader):
        self._reader = reader

    def readline(self, length: int | None = None) -> bytes:
        return self._reader.readline(HEADER_CAP if length is None else min(length, HEADER_CAP))

    def __getattr__(self, name):
        return getattr(self._reader, name)


@functools.cache
def truncation_aware_iterator() -> type:
    """warcio's ArchiveIterator, noticing what it lets pass quietly: a file that ends inside a gzip member;
    headers read with a bound (stages/readers/headers.py)."""
    class TruncationAwareIterator(bounded_iterator()):
        truncated = False

        def close(self):
            decompressor = self.reader.decompressor if self.reader else None
            if decompressor is not None and self.reader.num_read > 0 and not decompressor.eof:
                self.truncated = True
            super().close()

    return TruncationAwareIterator


def ensure_http_headers(record) -> None:
    """Parse the HTTP headers warcio leaves unparsed when the target URI is not http(s) (`hard::page.html`
    in extraction benchmarks): the WARC Content-Type, not the URI, says whether the block is an HTTP message."""
    if record.http_headers is not None or not (record.content_type or "").startswith("application/http"):
        return
    if not record.length:
        return
    start = record.raw_stream.tell()
    record.http_headers = BoundedParser(["HTTP/1.0", "HTTP/1.1"], verify=False, oversized_ok=True).parse(
        record.raw_stream)
    record.payload_length = record.length - (record.raw_stream.tell() - start)
