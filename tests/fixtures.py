"""Tiny inputs built in the test: documents and WARC files written with warcio from inline HTML."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

from datatrove.data import Document
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from stages.filters.langid import html_text


def make_doc(text: str, url: str = "https://example.com/page", doc_id: str = "doc-0", **metadata) -> Document:
    return Document(text=text, id=doc_id, metadata={"url": url, **metadata})


def html_page(title: str, *paragraphs: str) -> str:
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return f"<!doctype html><html><head><title>{title}</title></head><body><article><h1>{title}</h1>{body}</article></body></html>"


def write_warc(path: Path, records: list[dict], gzip: bool = True, warcinfo: dict | None = None) -> Path:
    """Write a WARC of response records. Each record: {"url", "body" (str|bytes), and optionally
    "status" ("200 OK"), "content_type" ("text/html; charset=utf-8"), "payload_type", "record_id",
    "date", "headers" (extra HTTP headers)}."""
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=gzip)
        if warcinfo is not None:
            writer.write_record(writer.create_warcinfo_record(path.name, warcinfo))
        for i, rec in enumerate(records):
            body = rec["body"].encode("utf-8") if isinstance(rec["body"], str) else rec["body"]
            http_headers = [("Content-Type", rec.get("content_type", "text/html; charset=utf-8"))]
            http_headers += list(rec.get("headers", []))
            status = StatusAndHeaders(rec.get("status", "200 OK"), http_headers, protocol="HTTP/1.1")
            warc_headers = {
                "WARC-Record-ID": rec.get("record_id", f"<urn:uuid:00000000-0000-0000-0000-{i:012d}>"),
                "WARC-Date": rec.get("date", "2024-05-20T10:00:00Z"),
            }
            if "payload_type" in rec:
                warc_headers["WARC-Identified-Payload-Type"] = rec["payload_type"]
            record = writer.create_warc_record(
                rec["url"], "response", payload=io.BytesIO(body), http_headers=status, warc_headers_dict=warc_headers
            )
            writer.write_record(record)
    return path


def classifier_examples(corpus: Path, folder: Path, negatives: int = 200) -> tuple[Path, Path]:
    """Training files for a small quality classifier, from the extraction corpus: the gold article texts of
    scrapinghub-aeb (positive) against the whole visible text of trafilatura's test pages, menus, footers and
    all (negative). JSONL with a `text` field, as `ccpipe classifier train` reads."""
    aeb, traf = corpus / "extraction" / "scrapinghub-aeb", corpus / "extraction" / "trafilatura"
    positive = [json.loads(line)["gold_text"] for line in (aeb / "manifest.jsonl").read_text().splitlines()]
    negative = []
    for line in (traf / "manifest.jsonl").read_text().splitlines()[:negatives]:
        html = gzip.decompress((traf / json.loads(line)["html_path"]).read_bytes()).decode("utf-8", "replace")
        negative.append(html_text(html))
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "positive.jsonl", folder / "negative.jsonl"
    for path, texts in zip(paths, (positive, negative)):
        path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts if t.strip()))
    return paths
