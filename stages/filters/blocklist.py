"""URL blocklist: FineWeb's URL filter (UT1 adult list, datatrove's word lists) plus the project's own lists.

Rules, in order; the first that matches decides. Reason, then the `drop_detail` it stamps:

    allowlist.txt match           keep; doc.metadata["blocklist_allowed"] = "allowlist-v1:domain=gay.ch"
    ut1_domain / ut1_subdomain    "ut1-adult-v0.3.0:domain=example.com" / ":fqdn=a.example.com"
    ut1_url                       "ut1-adult-v0.3.0:url=example.com/some/page"
    banned_word                   "datatrove-banned_words-v0.10.1:word=xxx"
    soft_banned_words             "datatrove-soft_banned_words-v0.10.1:words=nude,sex"
    banned_subword                "datatrove-banned_subwords-v0.10.1:subword=freesex"
    project_domain / project_url  "ccpipe-domains-v1:domain=example.com"
    host_adult_tld                "ccpipe-host-rules-v1:tld=xxx"      (with host_word_rules=True)
    host_banned_word              "ccpipe-host-words-v1:label=freemilftube53,word=milf"

UT1 has 4.56 M domains. datatrove's URLFilter extracts the 18 MB tarball and builds a Python set per worker
(~4 s, ~620 MB RSS). Here the domains are hashed once into a sorted uint64 array of xxh64 digests (~36 MB .npy
under cache_dir, named by the asset's sha256), memory-mapped by every worker and searched with np.searchsorted.
A 64-bit hash false positive needs a collision among 4.56 M entries: ~2.5e-13 per lookup.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import re
import tarfile
from pathlib import Path

import numpy as np
import xxhash
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.utils._import_utils import ASSETS_PATH

import blocklists
from stages.utils import io
from stages.utils.deadline import BoundedFilter
from stages.utils.io import atomic_path, sha256_file
from stages.utils.loading import load_once, tld_extractor

logger = logging.getLogger(__name__)

UT1_ASSET = "url_filterblacklistsv0_3_0.tar.gz"
INDEX_FORMAT = "xxh64-v1"  # bump when the hashing or the file layout changes
HOST_RULES = "ccpipe-host-rules-v1"
# ICM Registry's sponsored adult TLDs (.xxx 2011; .porn, .adult, .sex 2015)
ADULT_TLDS = frozenset({"xxx", "porn", "adult", "sex"})
WORD_LISTS = ("banned_words", "banned_subwords", "soft_banned_words")
PROJECT_LISTS = ("allowlist", "ccpipe-domains", "ccpipe-urls", "ccpipe-host-words", "ccpipe-host-guard")

_normalizer = re.compile(r"[^a-zA-Z0-9]+")  # FineWeb's URL tokenizer (datatrove url_filter.normalizer)
_label_split = re.compile(r"[.\-]+")
_comment = re.compile(r"\s#")
_scheme = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://")


def _hash(s: str) -> int:
    return xxhash.xxh64_intdigest(s.encode("utf-8"))


def read_list(path: str | Path) -> list[str]:
    """One entry a line; blank lines, `#` lines and trailing ` # comments` are ignored (URL fragments are kept)."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            entry = _comment.split(line, 1)[0].strip()
            if entry and not entry.startswith("#"):
                entries.append(entry)
    return entries


def build_hash_index(lines, path: Path) -> int:
    """Sorted, deduplicated xxh64 digests of `lines` (bytes, one entry each) saved as .npy; returns the count."""
    digest = xxhash.xxh64_intdigest
    hashes = np.fromiter((digest(x) for x in lines if x and not x.startswith(b"#")), dtype=np.uint64)
    hashes = np.unique(hashes)  # sorts
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # concurrent builders write identical bytes
        np.save(f, hashes)
    return len(hashes)


def ut1_index(asset: str | Path, cache_dir: str | Path, sha256: str | None = None) -> tuple[Path, Path]:
    """Paths of the cached domain and URL indexes of the UT1 tarball `asset`, building them if missing."""
    sha256 = sha256 or sha256_file(asset)
    cache_dir = Path(cache_dir)
    domains = cache_dir / f"ut1-{sha256}.domains.{INDEX_FORMAT}.npy"
    urls = cache_dir / f"ut1-{sha256}.urls.{INDEX_FORMAT}.npy"
    if domains.is_file() and urls.is_file():
        return domains, urls
    cache_dir.mkdir(parents=True, exist_ok=True)
    logger.info("building the UT1 index from %s into %s", asset, cache_dir)
    members = {}
    with tarfile.open(asset, "r:gz") as tar:
        for member in tar:  # two members: urls (1 MB), domains (124 MB, 4,558,939 lines)
            if member.name in ("domains", "urls"):
                members[member.name] = tar.extractfile(member).read().split(b"\n")
    if set(members) != {"domains", "urls"}:
        raise ValueError(f"{asset}: expected members 'domains' and 'urls', found {sorted(members)}")
    build_hash_index((x.strip() for x in members["urls"]), urls)
    build_hash_index((x.strip() for x in members["domains"]), domains)
    return domains, urls


def default_lists_dir() -> Path:
    return Path(blocklists.__file__).parent


class _HashSet:
    """Membership in a sorted uint64 array of xxh64 digests (memory-mapped)."""

    def __init__(self, path: Path):
        # a plain ndarray view of the memory map: np.memmap's subclass overhead doubles the lookup time
        self.array = np.asarray(np.load(path, mmap_mode="r"))
        if self.array.dtype != np.uint64 or self.array.ndim != 1:
            raise ValueError(f"{path}: expected a 1-d uint64 array, got {self.array.dtype} {self.array.shape}")
        self._np = np

    def __len__(self) -> int:
        return len(self.array)

    def __contains__(self, s: str) -> bool:
        h = self._np.uint64(_hash(s))
        i = int(self.array.searchsorted(h))
        return i < len(self.array) and self.array[i] == h


class URLBlocklist(BoundedFilter, BaseFilter):
    """FineWeb's URL filter (UT1 adult domains/URLs, banned words) with an allowlist, project lists and
    host-name word rules. Drop reasons and details: see the module docstring."""

    name = "⛔ URL blocklist"
    stage = "blocklist"
    _requires_dependencies = ["tldextract", "xxhash", "numpy"]

    def __init__(
        self,
        lists_dir: str | None = None,
        use_ut1: bool = True,
        use_banned_words: bool = True,
        soft_word_threshold: int = 2,  # FineWeb's value
        cache_dir: str | None = None,
        exclusion_writer=None,
        host_word_rules: bool = True,
    ):
        super().__init__(exclusion_writer)
        self.lists_dir = Path(lists_dir) if lists_dir else default_lists_dir()
        self.use_ut1 = use_ut1
        self.use_banned_words = use_banned_words
        self.soft_word_threshold = soft_word_threshold
        self.cache_dir = Path(cache_dir) if cache_dir else io.cache_dir()
        self.host_word_rules = host_word_rules
        self._state = None  # loaded lazily, once per worker; never pickled

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_state"] = None
        return state

    # ---- loading ----------------------------------------------------------------------------------------
    def _manifest(self) -> dict:
        path = self.lists_dir / "manifest.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def _sources(self) -> list[dict]:
        """Every list in use: name, version, source, path (sha256 and entries are added by provenance())."""

        dt_version = importlib.metadata.version("datatrove")

        sources = []
        if self.use_ut1:
            sources.append({"name": "ut1-adult", "version": "0.3.0", "path": Path(ASSETS_PATH) / UT1_ASSET,
                            "source": f"datatrove {dt_version} asset {UT1_ASSET} (UT1, Univ. Toulouse 1)"})
        if self.use_banned_words:
            for name in WORD_LISTS:
                sources.append({"name": f"datatrove-{name}", "version": dt_version,
                                "path": Path(ASSETS_PATH) / f"{name}.txt",
                                "source": f"datatrove {dt_version} asset {name}.txt (FineWeb)"})
        manifest = self._manifest()
        for name in PROJECT_LISTS:
            if not self.host_word_rules and name.startswith("ccpipe-host-"):
                continue
            path = self.lists_dir / f"{name}.txt"
            if not path.is_file():
                continue
            meta = manifest.get(name, {})
            sources.append({"name": name, "version": str(meta.get("version", "unversioned")), "path": path,
                            "source": meta.get("source", str(path))})
        return sources

    def warm(self) -> None:
        """Load the lists now: `ccpipe run` calls this before it forks its local workers, which then have them."""
        self._load()

    def _load(self):
        if self._state is None:
            sources = {s["name"]: s for s in self._sources()}
            files = tuple((str(s["path"]), os.stat(s["path"]).st_mtime_ns) for s in sources.values())
            self._state = load_once(("blocklist", files, str(self.cache_dir)), lambda: self._read(sources))
        return self._state

    def _read(self, sources: dict[str, dict]) -> dict:
        st = {"extract": tld_extractor(), "tags": {n: _tag(n, s["version"]) for n, s in sources.items()}, "sha256": {}}
        if self.use_ut1:
            # hashed once, for the index's name and provenance(): 18 MB, ~14 ms a time
            sha256 = st["sha256"]["ut1-adult"] = sha256_file(sources["ut1-adult"]["path"])
            domains, urls = ut1_index(sources["ut1-adult"]["path"], self.cache_dir, sha256)
            st["ut1_domains"], st["ut1_urls"] = _HashSet(domains), _HashSet(urls)
        if self.use_banned_words:
            # FineWeb's parsing: skip lines starting with '#', then strip everything but [a-zA-Z0-9] and lowercase
            words = {
                name: {_normalizer.sub("", w).lower() for w in open(sources[f"datatrove-{name}"]["path"]) if w[0] != "#"}
                for name in WORD_LISTS
            }
            st["banned_words"], st["soft_words"] = words["banned_words"], words["soft_banned_words"]
            st["subwords"] = _alternation(words["banned_subwords"])

        def project(name):
            return read_list(sources[name]["path"]) if name in sources else []

        st["allow"] = {d.lower() for d in project("allowlist")}
        st["domains"] = {d.lower() for d in project("ccpipe-domains")}
        st["urls"] = set(project("ccpipe-urls"))
        st["host_words"] = _alternation({w.lower() for w in project("ccpipe-host-words")})
        st["host_guard"] = _alternation({w.lower() for w in project("ccpipe-host-guard")})
        return st

    def provenance(self) -> list[dict]:
        """[{"name", "version", "source", "sha256", "entries"}] for every list in use.

        Kept in the cache directory under the lists' paths, sizes and modification times (and this module's):
        `ccpipe run` asks for it before any task, and working it out loads every list (UT1's 18 MB hashed,
        the word alternations compiled: 55 ms), which a run whose blocklist decisions are reused never needs."""
        sources = self._sources()
        key = io.files_key(__file__, *(s["path"] for s in sources),
                           extra=[self.use_ut1, self.use_banned_words, self.host_word_rules, sources])
        return io.cached_json(self.cache_dir / "blocklist-provenance" / f"{key}.json",
                              lambda: self._provenance(sources))

    def _provenance(self, sources: list[dict]) -> list[dict]:
        st = self._load()
        counts = {"allowlist": len(st["allow"]), "ccpipe-domains": len(st["domains"]), "ccpipe-urls": len(st["urls"])}
        if self.use_ut1:
            counts["ut1-adult"] = {"domains": len(st["ut1_domains"]), "urls": len(st["ut1_urls"])}
        if self.use_banned_words:
            counts.update({"datatrove-banned_words": len(st["banned_words"]),
                           "datatrove-soft_banned_words": len(st["soft_words"])})
        out = []
        for s in sources:
            entries = counts.get(s["name"])
            if entries is None:  # subwords, host words, guard words: count the file's entries
                entries = len(read_list(s["path"]))
            out.append({"name": s["name"], "version": s["version"], "source": s["source"],
                        "sha256": st["sha256"].get(s["name"]) or sha256_file(s["path"]), "entries": entries})
        return out

    # ---- filtering --------------------------------------------------------------------------------------
    def _drop(self, doc: Document, reason: str, tag: str, rule: str) -> tuple[bool, str]:
        doc.metadata["drop_detail"] = f"{self._state['tags'].get(tag, tag)}:{rule}"
        return False, reason

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        st = self._load()
        url = doc.metadata.get("url")
        if not url:
            return self._drop(doc, "no_url", "metadata", "url=missing")
        info = st["extract"](url)
        domain = info.top_domain_under_public_suffix.lower()
        fqdn = info.fqdn.lower()

        for parent in _parents(fqdn, domain):
            if parent in st["allow"]:
                doc.metadata["blocklist_allowed"] = f"{st['tags']['allowlist']}:domain={parent}"
                return True

        if self.use_ut1:
            if domain and domain in st["ut1_domains"]:
                return self._drop(doc, "ut1_domain", "ut1-adult", f"domain={domain}")
            if fqdn and fqdn in st["ut1_domains"]:
                return self._drop(doc, "ut1_subdomain", "ut1-adult", f"fqdn={fqdn}")
            # UT1's URL entries carry no scheme ("host/path"); FineWeb compares the full URL and so never matches
            bare = _scheme.sub("", url)
            if url in st["ut1_urls"] or bare in st["ut1_urls"]:
                return self._drop(doc, "ut1_url", "ut1-adult", f"url={bare}")

        if self.use_banned_words:
            # FineWeb semantics: words of the raw URL split on non-alphanumerics (case-sensitive, as datatrove)
            url_words = set(_normalizer.split(url))
            if hit := sorted(url_words & st["banned_words"]):
                return self._drop(doc, "banned_word", "datatrove-banned_words", f"word={hit[0]}")
            soft = sorted(url_words & st["soft_words"])
            if len(soft) >= self.soft_word_threshold:
                return self._drop(doc, "soft_banned_words", "datatrove-soft_banned_words", f"words={','.join(soft)}")
            if st["subwords"] and (m := st["subwords"].search(_normalizer.sub("", url).lower())):
                return self._drop(doc, "banned_subword", "datatrove-banned_subwords", f"subword={m.group()}")

        for parent in _parents(fqdn, domain):
            if parent in st["domains"]:
                return self._drop(doc, "project_domain", "ccpipe-domains", f"domain={parent}")
        if url in st["urls"]:
            return self._drop(doc, "project_url", "ccpipe-urls", f"url={url}")

        if self.host_word_rules:
            if info.suffix.lower() in ADULT_TLDS:
                return self._drop(doc, "host_adult_tld", HOST_RULES, f"tld={info.suffix.lower()}")
            if word := host_banned_word(fqdn, info.suffix.lower(), st["host_words"], st["host_guard"]):
                label, w = word
                return self._drop(doc, "host_banned_word", "ccpipe-host-words", f"label={label},word={w}")
        return True

    def check(self, url: str) -> dict:
        """One URL's verdict, for `ccpipe blocklist check`: {"blocked", "reason", "detail" ("list:rule"),
        "allowed" (the allowlist entry), "without_allowlist" (the verdict the allowlist overrode)}."""
        verdict = self._verdict(url)
        if verdict["allowed"]:
            st = self._load()
            self._state = {**st, "allow": set()}  # a copy: the loaded lists are shared in this process
            try:
                verdict["without_allowlist"] = self._verdict(url)
            finally:
                self._state = st
        return verdict

    def _verdict(self, url: str) -> dict:
        doc = Document(text="", id=url, metadata={"url": url})
        result = self.filter(doc)
        blocked = result is not True
        return {"url": url, "blocked": blocked, "reason": result[1] if blocked else None,
                "detail": doc.metadata.get("drop_detail"), "allowed": doc.metadata.get("blocklist_allowed")}


def _tag(name: str, version: str) -> str:
    """The list's name in drop details: ut1-adult-v0.3.0, allowlist-v1, datatrove-banned_words-v0.10.1."""
    return f"{name}-v{version}" if version[:1].isdigit() else f"{name}-{version}"


def _alternation(words) -> re.Pattern | None:
    """One regex matching any of `words`, built as a prefix trie ("free(?:sex|cams)|hot(?:chat|nude)"):
    ~10x faster than a flat alternation of 134 literals in Python's backtracking `re`."""
    trie: dict = {}
    for w in sorted(w for w in words if w):
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}  # end of a word

    def pattern(node: dict) -> str:
        # longer continuations first, so the detail names the longest word at the first matching position
        alts = [re.escape(ch) + pattern(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return body + "?" if "" in node and len(alts) == 1 and len(alts[0]) == 1 else (
            "(?:" + body + ")?" if "" in node else body)

    return re.compile(pattern(trie)) if trie else None


def _parents(fqdn: str, domain: str) -> list[str]:
    """a.b.example.com -> [a.b.example.com, b.example.com, example.com]; stops at the registered domain."""
    if not domain:
        return [fqdn] if fqdn else []
    labels = fqdn.split(".")
    stop = len(labels) - domain.count(".")
    return [".".join(labels[i:]) for i in range(stop)]


def host_banned_word(fqdn: str, suffix: str, words: re.Pattern | None, guard: re.Pattern | None):
    """(label, word) when a host-word occurs inside a label of the host (public suffix excluded), after the
    guard words (essex, nudel, specialist, ...) are masked out of the label; None otherwise.

    www.freemilftube53.com -> ("freemilftube53", "milf");  www.essex.ac.uk -> None."""
    if words is None or not fqdn:
        return None
    host = fqdn[: -len(suffix) - 1] if suffix and fqdn.endswith("." + suffix) else fqdn
    for label in _label_split.split(host):
        masked = guard.sub("|", label) if guard else label
        if m := words.search(masked):
            return label, m.group()
    return None
