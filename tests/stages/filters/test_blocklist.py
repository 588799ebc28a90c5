import io
import json
import pickle
import shutil
import socket
import tarfile
import time

import pytest

from stages.filters.blocklist import URLBlocklist, default_lists_dir, ut1_index
from stages.utils.loading import tld_extractor
from tests.fixtures import make_doc


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("ccpipe-cache")


@pytest.fixture(scope="module")
def blocklist(cache_dir):
    """The real lists; the first filter() builds the UT1 index from datatrove's asset (~6 s)."""
    return URLBlocklist(cache_dir=str(cache_dir))


@pytest.fixture(scope="module")
def lists_dir(tmp_path_factory):
    """The package's lists plus one project domain and one project URL."""
    path = tmp_path_factory.mktemp("lists")
    for f in default_lists_dir().iterdir():
        if f.suffix in (".txt", ".json"):
            shutil.copy(f, path / f.name)
    with open(path / "ccpipe-domains.txt", "a") as f:
        f.write("blocked-by-us.com  # test entry\n")
    with open(path / "ccpipe-urls.txt", "a") as f:
        f.write("https://example.org/takedown.html#part-2  # test entry: a fragment is not a comment\n")
    return path


@pytest.mark.parametrize(
    "url, reason, detail",
    [
        ("https://www.bikinixxxporn.com/gallery/8028.html", "ut1_domain", "ut1-adult-v0.3.0:domain=bikinixxxporn.com"),
        ("https://0-puppy-0.tumblr.com/", "ut1_subdomain", "ut1-adult-v0.3.0:fqdn=0-puppy-0.tumblr.com"),
        # UT1 stores URLs without a scheme: FineWeb's exact comparison never matches them, we strip the scheme
        ("http://1.54.99.33/.i", "ut1_url", "ut1-adult-v0.3.0:url=1.54.99.33/.i"),
        ("https://example.com/xxx/page", "banned_word", "datatrove-banned_words-v0.10.1:word=xxx"),
        ("https://example.com/nude/sex/", "soft_banned_words", "datatrove-soft_banned_words-v0.10.1:words=nude,sex"),
        ("https://example.com/hotchatroom", "banned_subword", "datatrove-banned_subwords-v0.10.1:subword=hotchat"),
        ("https://my-shop.adult/", "host_adult_tld", "ccpipe-host-rules-v1:tld=adult"),
        ("https://www.hotmilfzone7.net/1", "host_banned_word", "ccpipe-host-words-v1:label=hotmilfzone7,word=milf"),
        ("https://shop.best-fetish-club.de/", "host_banned_word", "ccpipe-host-words-v1:label=fetish,word=fetish"),
    ],
)
def test_drop_reason_and_detail(blocklist, url, reason, detail):
    doc = make_doc("text", url)
    assert blocklist.filter(doc) == (False, reason)
    assert doc.metadata["drop_detail"] == detail


@pytest.mark.parametrize(
    "url",
    [
        "https://www.essex.ac.uk/news/2024",  # sex, guarded
        "https://www.middlesex-hospital.org.uk/",
        "https://unisex-salon.example.com/",
        "https://www.specialist-clinic.de/",  # cialis, guarded
        "https://nudelhaus-berlin.de/speisekarte",  # nude, guarded
        "https://milford-ct.gov/",  # milf, guarded
        "https://xxxlutz.de/moebel",  # xxx, guarded
        "https://www.spiegel.de/politik/",
        "http://127.0.0.1:8080/index.html",
    ],
)
def test_ordinary_urls_are_kept(blocklist, url):
    assert blocklist.filter(make_doc("text", url)) is True


def test_project_lists(lists_dir, cache_dir):
    f = URLBlocklist(lists_dir=str(lists_dir), cache_dir=str(cache_dir))
    doc = make_doc("text", "https://news.blocked-by-us.com/a")
    assert f.filter(doc) == (False, "project_domain")
    assert doc.metadata["drop_detail"] == "ccpipe-domains-v1:domain=blocked-by-us.com"
    doc = make_doc("text", "https://example.org/takedown.html#part-2")
    assert f.filter(doc) == (False, "project_url")
    assert doc.metadata["drop_detail"] == "ccpipe-urls-v1:url=https://example.org/takedown.html#part-2"


def test_allowlist_overrides_every_rule(blocklist):
    # gay.ch is in UT1 adult v0.3.0; the allowlist keeps it and says why on the document
    for url in ("https://gay.ch/news/vatikan", "https://www.gay.ch/"):
        doc = make_doc("text", url)
        assert blocklist.filter(doc) is True
        assert doc.metadata["blocklist_allowed"] == "allowlist-v1:domain=gay.ch"
    assert "blocklist_allowed" not in (doc := make_doc("text", "https://www.spiegel.de/")).metadata
    assert blocklist.filter(doc) is True and "blocklist_allowed" not in doc.metadata


def test_switches(cache_dir):
    milf = "https://www.hotmilfzone7.net/1"
    assert URLBlocklist(cache_dir=str(cache_dir), host_word_rules=False).filter(make_doc("t", milf)) is True
    ut1 = "https://www.bikinixxxporn.com/gallery/8028.html"
    no_lists = URLBlocklist(cache_dir=str(cache_dir), use_ut1=False, use_banned_words=False, host_word_rules=False)
    assert no_lists.filter(make_doc("t", ut1)) is True
    soft = "https://example.com/nude/sex/"
    assert URLBlocklist(cache_dir=str(cache_dir), soft_word_threshold=3).filter(make_doc("t", soft)) is True


def test_ut1_cache_built_once_then_reused(blocklist, cache_dir):
    blocklist.filter(make_doc("t", "https://example.com/"))
    built = sorted(cache_dir.glob("ut1-*.npy"))
    assert [p.name.split(".", 1)[1] for p in built] == ["domains.xxh64-v1.npy", "urls.xxh64-v1.npy"]
    assert not list(cache_dir.glob("*.tmp"))
    mtimes = [p.stat().st_mtime_ns for p in built]
    start = time.perf_counter()
    fresh = URLBlocklist(cache_dir=str(cache_dir))  # a new worker: loads the cached index, no rebuild
    assert fresh.filter(make_doc("t", "https://www.bikinixxxporn.com/")) == (False, "ut1_domain")
    assert time.perf_counter() - start < 2
    assert [p.stat().st_mtime_ns for p in built] == mtimes


def _tiny_ut1(path, domains, urls):
    with tarfile.open(path, "w:gz") as tar:
        for name, lines in (("urls", urls), ("domains", domains)):
            data = "\n".join(lines).encode() + b"\n"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_index_build_and_reuse_on_a_small_list(tmp_path, monkeypatch):
    import numpy as np

    asset = _tiny_ut1(tmp_path / "tiny.tar.gz", ["b.com", "a.com", "a.com", "#comment", ""], ["a.com/x"])
    domains, urls = ut1_index(asset, tmp_path / "cache")
    arr = np.load(domains)
    assert arr.dtype == np.uint64 and len(arr) == 2 and (np.diff(arr.astype(np.float64)) > 0).all()
    assert len(np.load(urls)) == 1
    # second call: found by the asset's sha256, tarball never opened
    monkeypatch.setattr(tarfile, "open", lambda *a, **k: pytest.fail("rebuilt a cached index"))
    assert ut1_index(asset, tmp_path / "cache") == (domains, urls)


def test_pickles_without_the_loaded_index(blocklist):
    blocklist.filter(make_doc("t", "https://example.com/"))  # loaded
    data = pickle.dumps(blocklist)
    assert len(data) < 50_000  # the mmap, the word sets and the tld extractor stay behind
    clone = pickle.loads(data)
    assert clone._state is None
    assert clone.filter(make_doc("t", "https://www.bikinixxxporn.com/")) == (False, "ut1_domain")


def test_tldextract_never_touches_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    result = tld_extractor()("https://a.b.example.co.uk/path")
    assert (result.subdomain, result.domain, result.suffix) == ("a.b", "example", "co.uk")


def test_provenance_lists_every_list_in_use(blocklist):
    rows = {row["name"]: row for row in blocklist.provenance()}
    assert set(rows) >= {"ut1-adult", "datatrove-banned_words", "datatrove-banned_subwords",
                         "datatrove-soft_banned_words", "allowlist", "ccpipe-domains", "ccpipe-urls",
                         "ccpipe-host-words", "ccpipe-host-guard"}
    assert rows["ut1-adult"]["version"] == "0.3.0"
    assert rows["ut1-adult"]["entries"]["domains"] > 4_500_000
    assert all(len(row["sha256"]) == 64 and row["source"] for row in rows.values())
    without = {row["name"] for row in URLBlocklist(host_word_rules=False, use_ut1=False).provenance()}
    assert "ut1-adult" not in without and "ccpipe-host-words" not in without


def test_provenance_is_kept_until_a_list_changes(tmp_path):
    lists = tmp_path / "lists"
    shutil.copytree(default_lists_dir(), lists)
    cache = tmp_path / "cache"
    first = URLBlocklist(lists_dir=str(lists), cache_dir=str(cache), use_ut1=False).provenance()
    again = URLBlocklist(lists_dir=str(lists), cache_dir=str(cache), use_ut1=False)
    assert again.provenance() == first and again._state is None  # read back: no list loaded
    with open(lists / "ccpipe-domains.txt", "a") as f:
        f.write("one-more.example\n")
    changed = {row["name"]: row for row in
               URLBlocklist(lists_dir=str(lists), cache_dir=str(cache), use_ut1=False).provenance()}
    before = {row["name"]: row for row in first}
    assert changed["ccpipe-domains"]["entries"] == before["ccpipe-domains"]["entries"] + 1
    assert changed["ccpipe-domains"]["sha256"] != before["ccpipe-domains"]["sha256"]
    assert changed["allowlist"] == before["allowlist"]
    fresh = URLBlocklist(lists_dir=str(lists), cache_dir=str(tmp_path / "empty"), use_ut1=False)
    assert fresh.provenance() == list(changed.values())  # what the cache holds is what loading the lists gives


def test_bench_truth(corpus, blocklist):
    truth = corpus / "warc" / "bench" / "truth.jsonl"
    if not truth.is_file():
        pytest.skip(f"{truth} not found")
    rows = [json.loads(line) for line in truth.open()]
    results = {}
    for row in rows:
        doc = make_doc("text", row["url"])
        result = blocklist.filter(doc)
        results[row["url"]] = "keep" if result is True else result[1]
    domain = [r for r in rows if r["kind"] == "blocklisted_domain"]
    assert domain and all(results[r["url"]].startswith("ut1_") for r in domain)
    ordinary = [r for r in rows if r["kind"] in ("original", "exact_dup", "near_dup", "genuine_cc")]
    assert [r["url"] for r in ordinary if results[r["url"]] != "keep"] == []
    word = [r for r in rows if r["kind"] == "blocklisted_word"]
    caught = sum(results[r["url"]] != "keep" for r in word)
    by_host_rule = sum(results[r["url"]] == "host_banned_word" for r in word)
    print(f"blocklisted_word caught: {caught}/{len(word)} ({by_host_rule} by host_banned_word)")
    assert caught == len(word) == 20
