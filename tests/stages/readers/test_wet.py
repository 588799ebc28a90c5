"""WET input: `conversion` records become text documents; files with no usable record are named errors."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from stages.readers.warc import WarcReader
from stages.readers.wet import is_wet
from tests.stages.readers.test_warc import ledger_rows

pytestmark = pytest.mark.timeout(60)

TEXT = "Tomatoes grow well on balconies.\nWater them in the morning, not at noon.\n"


def write_records(path: Path, records: list[tuple[str, str, bytes]], one_member: bool = False) -> Path:
    """(type, url, body) records, as Common Crawl writes WET (`conversion`, text/plain) and WAT files."""
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=not one_member)
    writer.write_record(writer.create_warcinfo_record(path.name, {"isPartOf": "CC-MAIN-2016-50"}))
    for i, (kind, url, body) in enumerate(records):
        headers = {"WARC-Record-ID": f"<urn:uuid:wet-{i}>", "WARC-Refers-To": f"<urn:uuid:warc-{i}>",
                   "WARC-Date": "2016-12-02T17:55:01Z"}
        if kind == "request":
            record = writer.create_warc_record(url, kind, payload=io.BytesIO(body), warc_headers_dict=headers,
                                               http_headers=StatusAndHeaders("GET / HTTP/1.1", [], is_http_request=True))
        else:
            content_type = "text/plain" if kind == "conversion" else "application/json"
            record = writer.create_warc_record(url, kind, payload=io.BytesIO(body), warc_headers_dict=headers,
                                               warc_content_type=content_type)
        writer.write_record(record)
    data = buffer.getvalue()
    path.write_bytes(gzip.compress(data, mtime=0) if one_member else data)
    return path


def read(tmp_path: Path, path: Path):
    reader = WarcReader([str(path)], str(tmp_path / "ledger"), str(tmp_path / "report"))
    docs = list(reader.run())
    return docs, json.loads((tmp_path / "report" / "00000.json").read_text())["files"][0]


@pytest.mark.parametrize("one_member", [False, True], ids=["gzip-per-record", "one-gzip-member"])
def test_conversion_records_become_text_documents(tmp_path, one_member):
    path = write_records(tmp_path / "x.warc.wet.gz", [("conversion", "https://example.com/a", TEXT.encode()),
                                                       ("conversion", "https://example.com/b", b"  \n"),
                                                       ("conversion", "not a url", TEXT.encode())],
                         one_member=one_member)
    docs, fate = read(tmp_path, path)
    assert fate["error"] is None and (fate["responses"], fate["kept"], fate["dropped"]) == (3, 1, 2)
    doc = docs[0]
    assert doc.text == TEXT and doc.id == "<urn:uuid:warc-0>" and is_wet(doc)  # the id of the page's response
    assert doc.metadata["url"] == "https://example.com/a" and doc.metadata["dump"] == "CC-MAIN-2016-50"
    assert doc.metadata["content_type"] == "text/plain"
    assert sorted(r["reason"] for r in ledger_rows(tmp_path / "ledger")) == ["bad_url", "empty"]


@pytest.mark.parametrize("kind, holds", [("metadata", "a WAT file"), ("request", "requests only")])
def test_a_file_with_no_usable_record_is_a_named_error(tmp_path, kind, holds):
    path = write_records(tmp_path / f"x.{kind}.warc.gz", [(kind, "https://example.com/a", b"{}")])
    docs, fate = read(tmp_path, path)
    assert docs == [] and fate["responses"] == 0
    assert fate["error"].startswith(f"{path}: holds no record ccpipe can use: 1 {kind}, 1 warcinfo") and holds in fate["error"]


def test_an_empty_file_is_no_error(tmp_path):
    (tmp_path / "empty.warc.gz").write_bytes(b"")
    docs, fate = read(tmp_path, tmp_path / "empty.warc.gz")
    assert docs == [] and fate["error"] is None


def test_wet_text_skips_the_precheck():
    from datatrove.data import Document

    from stages.filters.langid import LanguagePrecheck

    wet = Document(text="texto en otra lengua", id="x", metadata={"text_source": "wet"})
    assert LanguagePrecheck(("en",), threshold=0.99).filter(wet) is True
