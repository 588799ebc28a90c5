"""A hostile corpus, built rather than committed: pages and records an adversary would craft, each at most the
1 MiB payload limit, plus a record whose HTTP header is one line of `header_line_bytes` (1 GiB compresses to ~1 MB).

    python -m tests.hostile_corpus OUT_DIR [--header-line-mib 1024]

writes OUT_DIR/hostile-00000.warc.gz; bench/bench_hostile.py runs the pipeline's stages over it, and the tests
use `hostile_pages()` and `write_header_bomb()` directly with smaller sizes.
"""

from __future__ import annotations

import argparse
import gzip
import uuid
import zlib
from pathlib import Path

from tests.fixtures import write_warc

MIB = 1 << 20
WORDS = "the quick brown fox jumps over the lazy dog and then it rests under a tree ".split()


def _text(n_chars: int) -> str:
    line = " ".join(WORDS) + " "
    return (line * (n_chars // len(line) + 1))[:n_chars]


def hostile_pages() -> dict[str, tuple[str, bytes]]:
    """{name: (Content-Type, payload)}: every payload <= 1 MiB."""
    prose = _text(2000)
    pages = {
        # 141 s in Lexbor's tree builder before the pre-check bounded it: every <div> scans the open elements
        "deep_nesting": "<div>" * 200_000 + "<p>x</p>",
        "deep_formatting": "<b><i><u>" * 60_000 + prose,
        "unclosed_anchors": "<a href=x>" * 100_000 + prose,
        "tables_in_tables": "<table><tr><td>" * 60_000 + prose,
        "huge_attribute": '<html><body><div title="' + "a" * (MIB - 200) + f'"><p>{prose}</p></div></body></html>',
        "many_tiny_tags": "<html><body>" + "<b>x</b>" * 120_000 + "</body></html>",
        "megabyte_line": "<html><body><p>" + _text(MIB - 100) + "</p></body></html>",
        "megabyte_word": "<html><body><p>" + "x" * (MIB - 100) + "</p></body></html>",
        # what PII recognizers scan: digits, @ and colons everywhere, on one line
        "pii_dense_line": "<html><body><p>" + "jane.roe@example.org 4111-111 10.0.0.1 +1 (555) 010-0100 " * 17_000
                          + "</p></body></html>",
        "digits_line": "<html><body><p>" + "1" * (MIB - 100) + "</p></body></html>",
        "many_lines": "<html><body><pre>" + "a b\n" * 250_000 + "</pre></body></html>",
    }
    out = {name: ("text/html; charset=utf-8", html.encode("utf-8")[:MIB]) for name, html in pages.items()}
    body = ("<html><body><p>" + prose * 500 + "</p></body></html>").encode("ascii")[:MIB]
    # codecs that are no web charset: punycode decoding is quadratic (83 s for 1 MB before the reader refused it)
    for charset in ("punycode", "idna", "rot13", "utf-7", "unicode_escape", "raw_unicode_escape", "base64",
                    "zlib", "uu", "x-user-defined", "utf-32"):
        out[f"charset_{charset}"] = (f"text/html; charset={charset}", body)
    out["meta_charset_punycode"] = ("text/html", b'<meta charset="punycode">' + body[: MIB - 30])
    return out


def write_hostile_warc(path: Path) -> Path:
    """Every page of `hostile_pages()` as a response record of a gzip-per-record WARC."""
    records = [{"url": f"https://hostile.example.com/{name}", "body": body, "content_type": ctype,
                "record_id": f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}>"}
               for name, (ctype, body) in hostile_pages().items()]
    return write_warc(path, records)


def write_header_bomb(path: Path, header_line_bytes: int, then: list[dict] | None = None) -> Path:
    """A WARC whose first response has an HTTP header of one `header_line_bytes`-byte line, written as a gzip
    member in 1 MiB pieces (never held whole), then the records `then` (write_warc's records)."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Bomb: "
    tail = b"\r\n\r\n<p>x</p>"
    length = len(head) + header_line_bytes + len(tail)
    warc_headers = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: https://bomb.example.com/\r\n"
                    f"WARC-Date: 2024-05-20T10:00:00Z\r\nWARC-Record-ID: <urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'bomb')}>\r\n"
                    f"Content-Type: application/http; msgtype=response\r\nContent-Length: {length}\r\n\r\n").encode()
    with open(path, "wb") as f:
        z = zlib.compressobj(6, zlib.DEFLATED, 31)  # one gzip member: the record
        f.write(z.compress(warc_headers + head))
        left, piece = header_line_bytes, b"a" * MIB
        while left > 0:
            f.write(z.compress(piece[:min(left, MIB)]))
            left -= MIB
        f.write(z.compress(tail + b"\r\n\r\n"))
        f.write(z.flush())
        if then:
            rest = write_warc(path.with_suffix(".rest"), then)
            f.write(rest.read_bytes())
            rest.unlink()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--header-line-mib", type=int, default=1024)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write_hostile_warc(args.out / "hostile-00000.warc.gz")
    write_header_bomb(args.out / "hostile-00001.warc.gz", args.header_line_mib * MIB,
                      then=[{"url": "https://after.example.com/", "body": "<p>" + _text(3000) + "</p>"}])
    with gzip.open(args.out / "hostile-00001.warc.gz") as f:  # check: the file reads as gzip to the end
        while f.read(MIB):
            pass


if __name__ == "__main__":
    main()
