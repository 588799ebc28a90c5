"""Common Crawl WET files: the text CC extracted from each page, one `conversion` record per page.

    WARC-Type: conversion
    WARC-Target-URI: https://an.wikipedia.org/wiki/Escopete
    WARC-Record-ID: <urn:uuid:ba729a40-...>        this record
    WARC-Refers-To: <urn:uuid:2aabeff2-...>        the `response` record of the page in the WARC file
    Content-Type: text/plain                        UTF-8 text, one line per block

A conversion record becomes a document whose id is `WARC-Refers-To` (the id the page has in the WARC, so a
WET document and the WARC one it came from share it) and whose url is the target URI. Its text skips the
HTML steps (the language pre-check and trafilatura) and goes through every stage after extraction.
`metadata["text_source"] = "wet"` marks it; the ledger's kept rows carry it in `detail` (`TEXT_SOURCE_DETAIL`),
and every row names the `.wet.gz` file in `warc`. The FineWeb parquet schema is unchanged.
"""

from __future__ import annotations

from collections import Counter

from datatrove.data import Document

from stages.readers.payload import MAX_REPLACED_FRAC, looks_binary, read_payload, valid_url

WET = "wet"  # the value of metadata["text_source"]
USABLE = ("response", "conversion")  # what ccpipe reads: WARC responses (HTML) and WET conversions (text)


def is_wet_path(path: str) -> bool:
    return path.endswith((".wet.gz", ".wet"))


def is_wet(doc: Document) -> bool:
    return doc.metadata.get("text_source") == WET


def judge_wet(record, max_payload_bytes: int) -> tuple[str | None, str | None, str | None]:
    """(text, reason, detail) for one conversion record, with the reader's reasons; reads at most
    max_payload_bytes + 1 bytes (Common Crawl's WET text is UTF-8)."""
    url = record.rec_headers.get_header("WARC-Target-URI") or ""
    if not valid_url(url):
        return None, "bad_url", url[:200]
    if record.length > max_payload_bytes:
        return None, "too_large", f"declared {record.length} bytes"
    payload = read_payload(record, max_payload_bytes + 1)
    if len(payload) > max_payload_bytes:
        return None, "too_large", f"more than {max_payload_bytes} bytes"
    if not payload.strip():
        return None, "empty", None
    if looks_binary(payload, "utf-8"):
        return None, "binary", None
    text = payload.decode("utf-8", errors="replace")
    if text.count("\ufffd") > MAX_REPLACED_FRAC * len(text):
        return None, "decode_error", "utf-8"
    return text, None, None


def wet_document(record, text: str, meta: dict) -> Document:
    """The document of a conversion record (kept, or dropped with text="")."""
    headers = record.rec_headers
    return Document(text=text, id=headers.get_header("WARC-Refers-To") or headers.get_header("WARC-Record-ID") or "",
                    metadata={
        "url": headers.get_header("WARC-Target-URI"),
        "date": headers.get_header("WARC-Date"),
        "dump": meta["dump"],
        "file_path": meta["file_path"],
        "offset": meta["offset"],
        "content_type": (headers.get_header("Content-Type") or "text/plain").split(";")[0].strip().lower(),
        "text_source": WET,
    })  # fmt: skip


def no_usable_records(path: str, held: Counter) -> str:
    """The per-file error of a file whose records ccpipe cannot use, naming what it holds."""
    what = ", ".join(f"{n} {kind}" for kind, n in sorted(held.items()))
    kinds = set(held) - {"warcinfo"}
    guess = ""
    if kinds == {"metadata"}:
        guess = " (a WAT file: metadata only)"
    elif kinds == {"request"}:
        guess = " (requests only)"
    return (f"{path}: holds no record ccpipe can use: {what}{guess}; ccpipe reads WARC `response` "
            "and WET `conversion` records")
