"""Records an adversary would write (tests/hostile_corpus.py): each one bounded in memory and time, and
dropped under a counted reason, while the records around it are read as usual."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from stages.readers.headers import HEADER_CAP
from stages.readers.payload import decode_html
from tests.fixtures import html_page
from tests.hostile_corpus import write_header_bomb
from tests.stages.readers.test_warc import assert_conserved, read

pytestmark = pytest.mark.timeout(60)

AFTER = html_page("After", "The record after the bomb is read as usual, with its own text.")


def test_a_huge_http_header_line_is_dropped_without_holding_it(tmp_path):
    # 128 MiB in one header line (128 KB gzipped): held whole by warcio before, and the record kept
    path = write_header_bomb(tmp_path / "bomb.warc.gz", 128 << 20, then=[{"url": "https://after.example.com/",
                                                                        "body": AFTER}])
    tracemalloc.start()
    try:
        docs, files, rows = read(tmp_path, [path])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [d.metadata["url"] for d in docs] == ["https://after.example.com/"] and docs[0].text == AFTER
    assert [(r["reason"], r["detail"]) for r in rows] == [("too_large", f"HTTP headers over {HEADER_CAP} bytes")]
    assert files[0]["error"] is None and files[0]["responses"] == 2
    assert_conserved(files)
    # what is held: a 16 KiB compressed block inflated (up to ~16 MiB, a few copies at once), not the line
    assert peak < 96 << 20, peak


@pytest.mark.parametrize("charset", ["punycode", "rot13", "unicode_escape", "raw_unicode_escape",
                                     "base64", "uu", "zlib"])
def test_a_codec_that_is_no_web_charset_is_ignored_as_an_unknown_label(charset):
    # punycode decoding is quadratic: 83 s for a 1 MB page labelled with it; the others are no text encodings
    body = ("<html><body><p>" + "plain ascii words in C:\\new \\u0041 " * 4000 + "</p></body></html>").encode("ascii")
    started = time.process_time()
    assert decode_html(body, charset) == body.decode("ascii")
    assert decode_html(b'<meta charset="' + charset.encode() + b'">' + body, None).endswith(body.decode("ascii"))
    assert time.process_time() - started < 2
