import gzip
import json
import random
import time
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

import stages.readers.warc
from stages.readers.warc import REASONS, WarcReader, decode_html
from tests.fixtures import html_page, write_warc

pytestmark = pytest.mark.timeout(60)

PAGE = html_page("Gardening", "Tomatoes and herbs grow well on balconies.", "Water them in the morning.")


def read(tmp_path: Path, paths, **kwargs):
    """Run the reader on rank 0; return (kept docs, report rows, ledger rows)."""
    reader = WarcReader([str(p) for p in paths], str(tmp_path / "ledger"), str(tmp_path / "report"), **kwargs)
    docs = list(reader.run())
    report = json.loads((tmp_path / "report" / "00000.json").read_text())
    return docs, report["files"], ledger_rows(tmp_path / "ledger")


def ledger_rows(folder: Path, rank: int = 0) -> list[dict]:
    rows = []
    for path in sorted((folder / "reader").glob(f"{rank:05d}.jsonl*")):  # plain or gzip, as the ledger decides
        with (gzip.open(path, "rt") if path.suffix == ".gz" else path.open()) as f:
            rows += [json.loads(line) for line in f]
    return rows


def page(url: str = "https://example.com/a", body=PAGE, **fields) -> dict:
    return {"url": url, "body": body, **fields}


def one_record(tmp_path: Path, record: dict, **kwargs):
    path = write_warc(tmp_path / "one.warc.gz", [record])
    return read(tmp_path, [path], **kwargs)


def assert_conserved(files: list[dict]) -> None:
    for fate in files:
        assert fate["responses"] == fate["kept"] + fate["dropped"], fate


# ---------------------------------------------------------------- kept records


def test_kept_record_becomes_a_document(tmp_path):
    path = write_warc(tmp_path / "a.warc.gz", [page(record_id="<urn:uuid:kept>", date="2024-05-21T08:00:00Z")],
                      warcinfo={"isPartOf": "CC-MAIN-2024-22"})  # fmt: skip
    docs, files, rows = read(tmp_path, [path])
    assert len(docs) == 1 and rows == []
    doc = docs[0]
    assert doc.text == PAGE
    assert doc.id == "<urn:uuid:kept>"
    with open(path, "rb") as f:  # the offset warcio reports, which a range request needs
        iterator = ArchiveIterator(f)
        offsets = [iterator.get_record_offset() for r in iterator if r.rec_type == "response"]
    assert doc.metadata == {"url": "https://example.com/a", "date": "2024-05-21T08:00:00Z", "dump": "CC-MAIN-2024-22",
                            "file_path": str(path), "offset": offsets[0], "content_type": "text/html"}  # fmt: skip
    assert files == [{"path": str(path), "responses": 1, "kept": 1, "dropped": 0, "other_records": 1,
                      "error": None, "stopped_early": False, "failed": False}]  # fmt: skip


@pytest.mark.parametrize(
    "name, dump, warcinfo, expected",
    [
        ("CC-MAIN-2023-50-x.warc.gz", "CC-MAIN-2020-01", {"isPartOf": "CC-MAIN-2024-22"}, "CC-MAIN-2020-01"),
        ("CC-MAIN-2023-50-x.warc.gz", None, {"isPartOf": "CC-MAIN-2024-22"}, "CC-MAIN-2024-22"),
        ("CC-MAIN-2023-50-x.warc.gz", None, None, "CC-MAIN-2023-50"),
        ("crawl.warc.gz", None, {"software": "wget"}, "unknown"),
    ],
)
def test_dump_comes_from_argument_then_warcinfo_then_path(tmp_path, name, dump, warcinfo, expected):
    path = write_warc(tmp_path / name, [page()], warcinfo=warcinfo)
    docs, _, _ = read(tmp_path, [path], dump=dump)
    assert docs[0].metadata["dump"] == expected


def test_uncompressed_warc_is_read(tmp_path):
    path = write_warc(tmp_path / "a.warc", [page(f"https://example.com/{i}") for i in range(3)], gzip=False)
    docs, files, _ = read(tmp_path, [path])
    assert [d.metadata["url"] for d in docs] == [f"https://example.com/{i}" for i in range(3)]
    assert files[0]["error"] is None


def test_empty_payload_type_falls_back_to_http_content_type(tmp_path):
    docs, _, rows = one_record(tmp_path, page(payload_type="", content_type="application/xhtml+xml; charset=utf-8"))
    assert len(docs) == 1 and docs[0].metadata["content_type"] == "application/xhtml+xml" and rows == []


def test_payload_of_exactly_max_bytes_passes(tmp_path):
    # Common Crawl truncates payloads at 1 MiB: such a record's payload is exactly the limit, plus its headers
    body = PAGE.encode() + b" " * ((1 << 20) - len(PAGE.encode()))
    docs, _, rows = one_record(tmp_path, page(body=body))
    assert len(docs) == 1 and rows == []


def test_uri_with_a_scheme_but_no_host_is_kept(tmp_path):
    # extraction benchmarks key pages as `hard::site.html`; warcio leaves their HTTP headers unparsed
    docs, _, rows = one_record(tmp_path, page("hard::example.com-page.html"))
    assert rows == [] and docs[0].text == PAGE and docs[0].metadata["content_type"] == "text/html"


# ---------------------------------------------------------------- drop reasons


BINARY = random.Random(0).randbytes(20_000)
HIGH_BYTES = bytes(b | 0x80 for b in random.Random(1).randbytes(3_000))  # no charset reads these


@pytest.mark.parametrize(
    "record, kwargs, reason",
    [
        (page(content_type="image/jpeg", body=b"\xff\xd8\xff\xe0"), {}, "non_html"),
        (page(payload_type="application/pdf"), {}, "non_html"),  # the identified type wins over the header
        (page(status="404 Not Found"), {}, "http_status"),
        (page(status="301 Moved Permanently", headers=[("Location", "https://example.com/b")]), {}, "http_status"),
        (page(body=b"x" * 1001), {"max_payload_bytes": 1000}, "too_large"),
        (page(body=BINARY), {}, "binary"),
        (page(body=HIGH_BYTES, content_type="text/html"), {}, "decode_error"),
        (page(body=b""), {}, "empty"),
        (page("not a url at all"), {}, "bad_url"),
        (page("http://[::1/x"), {}, "bad_url"),
        (page("http:///no-host"), {}, "bad_url"),
        (page("https://example.com:http/"), {}, "bad_url"),
    ],
)
def test_drop_reason(tmp_path, record, kwargs, reason):
    assert reason in REASONS
    docs, files, rows = one_record(tmp_path, {**record, "record_id": "<urn:uuid:dropped>"}, **kwargs)
    assert docs == []
    assert files[0]["dropped"] == 1 and files[0]["responses"] == 1
    assert [(r["reason"], r["id"], r["stage"]) for r in rows] == [(reason, "<urn:uuid:dropped>", "reader")]
    assert rows[0]["warc"] == str(tmp_path / "one.warc.gz") and rows[0]["offset"] == 0


def test_too_large_is_judged_by_declared_length_before_reading(tmp_path, monkeypatch):
    path = write_warc(tmp_path / "a.warc.gz", [page(body=b"x" * 5000), page("https://example.com/b")])
    reads = []
    monkeypatch.setattr(stages.readers.warc, "drain", lambda stream: reads.append(stream.read(1 << 30)))
    docs, _, rows = read(tmp_path, [path], max_payload_bytes=1000)
    assert [r["detail"] for r in rows] == ["declared 5000 bytes"]
    assert len(docs) == 1
    assert len(reads[0]) == 5000  # the whole payload was still there: the reader had read none of it


def test_content_encoding_bomb_is_too_large_without_inflating_it(tmp_path):
    bomb = gzip.compress(b"\0" * (64 << 20))  # 64 MiB of zeros in about 64 KiB
    record = page(body=bomb, headers=[("Content-Encoding", "gzip")])
    docs, _, rows = one_record(tmp_path, record, max_payload_bytes=1 << 20)
    assert docs == [] and rows[0]["reason"] == "too_large" and "more than" in rows[0]["detail"]


def test_lying_content_length_is_a_damaged_record_and_the_file_goes_on(tmp_path):
    liar = write_warc(tmp_path / "liar.warc", [page("https://example.com/liar")], gzip=False).read_bytes()
    head, sep, rest = liar.partition(b"\r\n\r\n")  # the WARC headers, then the block
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    head = head.replace(b"Content-Length: %d" % length, b"Content-Length: 9%d" % length)
    after = write_warc(tmp_path / "after.warc", [page("https://example.com/after")], gzip=False).read_bytes()
    path = tmp_path / "mixed.warc.gz"
    path.write_bytes(gzip.compress(head + sep + rest) + gzip.compress(after))
    docs, files, rows = read(tmp_path, [path])
    assert [r["reason"] for r in rows] == ["damaged_record"]
    assert [d.metadata["url"] for d in docs] == ["https://example.com/after"]
    assert files[0]["error"] is None
    assert_conserved(files)


# ---------------------------------------------------------------- charsets


CYRILLIC = "<html><body><p>Привет, мир! Это страница о погоде и природе в горах.</p></body></html>" * 5
CHINESE = "<html><body><p>这是一个关于天气和自然的中文网页。我们今天讨论气候变化的影响。</p></body></html>" * 5


@pytest.mark.parametrize(
    "body, content_type, expected",
    [
        (CYRILLIC.encode("cp1251"), "text/html; charset=windows-1251", CYRILLIC),  # declared in HTTP
        (CHINESE.encode("gb18030"), "text/html; charset=gb2312", CHINESE),  # gb2312 label: read as gb18030
        ("<p>5 €</p>".encode("cp1252"), "text/html; charset=iso-8859-1", "<p>5 €</p>"),  # latin-1 label: cp1252
        (('<meta charset="shift_jis">' + "日本語のページです。" * 5).encode("shift_jis"), "text/html",
         '<meta charset="shift_jis">' + "日本語のページです。" * 5),  # fmt: skip
        (('<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">' + CYRILLIC).encode("koi8-r"),
         "text/html", '<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">' + CYRILLIC),  # fmt: skip
        (CYRILLIC.encode("cp1251"), "text/html", CYRILLIC),  # detected
        (CHINESE.encode("gb18030"), "text/html", CHINESE),  # detected
        (("\ufeff" + CYRILLIC).encode("utf-16-le"), "text/html; charset=utf-16", CYRILLIC),  # UTF-16 with BOM
        (("\ufeff" + CHINESE).encode("utf-16-be"), "text/html", CHINESE),  # BOM, nothing declared
        (("\ufeff" + CYRILLIC).encode("utf-8"), "text/html; charset=cp1251", CYRILLIC),  # BOM wins
    ],
)
def test_decoding(tmp_path, body, content_type, expected):
    docs, _, rows = one_record(tmp_path, page(body=body, content_type=content_type))
    assert rows == []
    assert docs[0].text == expected


@pytest.mark.parametrize("charset", ["base64", "rot13", "zlib", "undefined"])
def test_charset_labels_of_codecs_that_are_no_text_encodings_fall_back_to_detection(tmp_path, charset):
    """`bytes.decode` refuses bytes-to-bytes codecs (LookupError); `undefined` (as idna, punycode) fails
    whatever `errors=` says: these pages used to be `damaged_record`, blamed on the input for an exception of
    ours."""
    docs, _, rows = one_record(tmp_path, page(content_type=f"text/html; charset={charset}"))
    assert rows == [] and docs[0].text == PAGE


def test_a_bug_in_our_judging_fails_the_task(tmp_path, monkeypatch):
    """An exception of ccpipe's own while judging a record is no damage of the input: it used to be counted
    as `damaged_record`, and the run passed. Now the task fails (a rerun redoes it); only bytes that do not
    parse are `damaged_record` (test_lying_content_length_is_a_damaged_record_and_the_file_goes_on)."""
    path = write_warc(tmp_path / "a.warc.gz", [page("https://example.com/a"), page("https://example.com/b")])
    assert len(read(tmp_path / "ok", [path])[0]) == 2

    def bug(payload, charset):
        raise ZeroDivisionError("a bug in ccpipe")

    monkeypatch.setattr(stages.readers.warc, "decode_html", bug)
    with pytest.raises(ZeroDivisionError, match="a bug in ccpipe"):
        read(tmp_path / "bug", [path])


def test_a_few_bad_bytes_keep_the_declared_charset():
    text = "Grüße aus München. " * 100
    assert decode_html(text.encode() + b"\xff", "utf-8") == text + "\ufffd"


# ---------------------------------------------------------------- files, ranks, report


def test_max_records_stops_each_file(tmp_path):
    paths = [write_warc(tmp_path / f"{n}.warc.gz", [page(f"https://{n}.example/{i}") for i in range(5)]) for n in "ab"]
    docs, files, _ = read(tmp_path, paths, max_records=2)
    assert [d.metadata["url"] for d in docs] == ["https://a.example/0", "https://a.example/1",
                                                 "https://b.example/0", "https://b.example/1"]  # fmt: skip
    assert [(f["responses"], f["stopped_early"]) for f in files] == [(2, True), (2, True)]
    docs, files, _ = read(tmp_path, paths, max_records=10)
    assert len(docs) == 10 and [f["stopped_early"] for f in files] == [False, False]


def test_fsspec_urls_are_streamed(tmp_path):
    import fsspec

    local = write_warc(tmp_path / "a.warc.gz", [page(f"https://example.com/{i}") for i in range(3)])
    with fsspec.open("memory://crawl/CC-MAIN-2024-10/a.warc.gz", "wb") as f:
        f.write(local.read_bytes())
    docs, files, _ = read(tmp_path, ["memory://crawl/CC-MAIN-2024-10/a.warc.gz"], max_records=1)
    assert [d.metadata["url"] for d in docs] == ["https://example.com/0"]
    assert docs[0].metadata["dump"] == "CC-MAIN-2024-10"
    assert files[0]["stopped_early"] is True
    fsspec.filesystem("memory").rm("crawl", recursive=True)


def test_ranks_split_paths_and_write_their_own_report(tmp_path):
    paths = [str(write_warc(tmp_path / f"{i}.warc.gz", [page(f"https://example.com/{i}")])) for i in range(5)]
    reader = WarcReader(paths, str(tmp_path / "ledger"), str(tmp_path / "report"))
    docs = list(reader.run(rank=1, world_size=2))
    assert [d.metadata["file_path"] for d in docs] == [paths[1], paths[3]]
    report = json.loads((tmp_path / "report" / "00001.json").read_text())
    assert [f["path"] for f in report["files"]] == [paths[1], paths[3]]
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == ["00001.json"]  # no temporary left
    assert reader.stats["kept"].total == 2 and reader.stats["files"].total == 2


def test_report_counts_every_record(tmp_path):
    records = [page("https://example.com/a"), page("https://example.com/b", status="404 Not Found"),
               page("https://example.com/c", content_type="application/pdf", body=b"%PDF-1.4")]  # fmt: skip
    path = write_warc(tmp_path / "a.warc.gz", records, warcinfo={"isPartOf": "CC-MAIN-2024-22"})
    _, files, rows = read(tmp_path, [path])
    assert files[0] == {"path": str(path), "responses": 3, "kept": 1, "dropped": 2, "other_records": 1,
                        "error": None, "stopped_early": False, "failed": False}  # fmt: skip
    assert [(r["url"], r["reason"], r["detail"]) for r in rows] == [
        ("https://example.com/b", "http_status", "404"),
        ("https://example.com/c", "non_html", "application/pdf"),
    ]


# ---------------------------------------------------------------- errors by blast radius


def test_damaged_files_stop_only_themselves(tmp_path):
    good = write_warc(tmp_path / "good.warc.gz", [page("https://example.com/good")])
    full = write_warc(tmp_path / "full.warc.gz", [page(f"https://example.com/{i}", body=PAGE * 50) for i in range(3)])
    truncated = tmp_path / "truncated.warc.gz"
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size - 200])  # cut inside the last gzip member
    not_warc = tmp_path / "not-a-warc.warc.gz"
    not_warc.write_bytes(gzip.compress(b"Lorem ipsum dolor sit amet\n" * 50))
    missing = tmp_path / "missing.warc.gz"
    empty = tmp_path / "empty.warc.gz"
    empty.write_bytes(b"")
    docs, files, rows = read(tmp_path, [truncated, not_warc, missing, empty, good])
    fates = {Path(f["path"]).name: f for f in files}
    assert_conserved(files)
    assert fates["truncated.warc.gz"]["responses"] == 3 and fates["truncated.warc.gz"]["kept"] == 2
    assert [r["reason"] for r in rows] == ["damaged_record"]  # the record the cut went through
    for name in ("truncated.warc.gz", "not-a-warc.warc.gz", "missing.warc.gz"):
        error = fates[name]["error"]
        assert error.startswith(str(tmp_path / name)) and "\n" not in error
    assert fates["empty.warc.gz"] == {"path": str(empty), "responses": 0, "kept": 0, "dropped": 0,
                                      "other_records": 0, "error": None, "stopped_early": False, "failed": False}  # fmt: skip
    assert docs[-1].metadata["url"] == "https://example.com/good" and fates["good.warc.gz"]["error"] is None


def test_exception_downstream_propagates(tmp_path):
    paths = [write_warc(tmp_path / f"{i}.warc.gz", [page(f"https://example.com/{i}/{j}") for j in range(2)])
             for i in range(2)]  # fmt: skip
    reader = WarcReader([str(p) for p in paths], str(tmp_path / "ledger"), str(tmp_path / "report"))
    run = reader.run()
    next(run)
    with pytest.raises(RuntimeError, match="later step failed"):
        run.throw(RuntimeError("later step failed"))
    assert not (tmp_path / "report").exists()  # not mistaken for a damaged file, and no report of a half run

    def failing_step(data, rank=0, world_size=1):
        for doc in data:
            raise ValueError(f"cannot handle {doc.id}")
        yield

    reader = WarcReader([str(p) for p in paths], str(tmp_path / "ledger"), str(tmp_path / "report"))
    with pytest.raises(ValueError, match="cannot handle"):
        list(failing_step(reader.run()))


def test_bad_arguments_fail_at_construction(tmp_path):
    with pytest.raises(TypeError):
        WarcReader("a.warc.gz", str(tmp_path), str(tmp_path))
    with pytest.raises(ValueError, match="max_records"):
        WarcReader([], str(tmp_path), str(tmp_path), max_records=0)


# ---------------------------------------------------------------- the shared corpus


# in a child process, so that its peak RSS measures the reader and not the test session
def test_progress_counter_holds_responses_read(tmp_path):
    from tests.fixtures import write_warc

    warc = write_warc(tmp_path / "p.warc.gz", [{"url": f"https://example.com/{i}", "body": "<p>hi</p>"} for i in range(3)])
    reader = WarcReader([str(warc)], str(tmp_path / "ledger"), str(tmp_path / "report"),
                        progress_folder=str(tmp_path / "progress"))
    list(reader.run(rank=0))
    assert (tmp_path / "progress" / "00000").read_text() == "3 1.0"  # responses read, share of the task done


@pytest.mark.parametrize("max_records", [None, 2000])
def test_progress_moves_within_a_task(tmp_path, max_records):
    """Refreshed once a second while the task runs, not only when it ends: records read and the bytes' share
    (with `make run`'s --max-records 2000 too: a 4-record file ends long before 2,000 responses)."""
    from tests.fixtures import write_warc

    warc = write_warc(tmp_path / "p.warc.gz", [{"url": f"https://example.com/{i}", "body": "<p>hi</p>" * 50}
                                               for i in range(4)])
    reader = WarcReader([str(warc)], str(tmp_path / "ledger"), str(tmp_path / "report"), max_records=max_records,
                        progress_folder=str(tmp_path / "progress"))
    docs = reader.run(rank=0)
    next(docs)
    time.sleep(1.05)  # a slow page downstream: the next record read reports
    next(docs)
    records, share = (tmp_path / "progress" / "00000").read_text().split()
    assert records == "2" and 0.1 < float(share) < 1.0  # the first record of four read whole, the second begun
    list(docs)
    assert (tmp_path / "progress" / "00000").read_text() == "4 1.0"
