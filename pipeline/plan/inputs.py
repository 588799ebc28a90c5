"""Turn `--input` arguments into the ordered list of WARC files a run reads.

Accepts local files, directories (every `*.warc.gz` / `*.warc` / `*.wet.gz` / `*.wat.gz` below, sorted), globs, `s3://` and
`https://` WARC URLs, object-store prefixes and globs (`s3://bucket/crawl/`, `s3://bucket/*/*.warc.gz`), and Common Crawl `warc.paths.gz` listings (local or remote), whose relative paths
are joined to `input.cc_base_url`. The order is the order given, each expansion sorted, duplicates
removed: it decides task assignment, so the same arguments always give the same tasks.
"""

from __future__ import annotations

import glob
import gzip
import os

import fsspec

WARC_SUFFIXES = (".warc.gz", ".warc")
# WET (text) files are read too; WAT files are listed so that the reader names them as unusable
# instead of a directory scan skipping them without a word
INPUT_SUFFIXES = WARC_SUFFIXES + (".wet.gz", ".wet", ".wat.gz", ".wat")
REMOTE_PREFIXES = ("s3://", "http://", "https://", "gs://", "hf://")


class InputError(ValueError):
    """An input path that does not exist or names no WARC file: the message names it."""


def is_remote(path: str) -> bool:
    return path.startswith(REMOTE_PREFIXES)


def _is_listing(path: str) -> bool:
    return path.endswith(".paths.gz") or path.endswith(".paths")


def _read_listing(path: str, base_url: str) -> list[str]:
    if is_remote(path):
        with fsspec.open(path, "rb", compression="infer") as f:
            raw = f.read()
    else:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            raw = f.read()
    try:
        lines = raw.decode().splitlines()
    except UnicodeDecodeError:
        raise InputError(f"{path}: the listing is not UTF-8 text") from None
    entries = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    if not entries:
        raise InputError(f"{path}: the listing names no WARC file")
    return [e if is_remote(e) or os.path.isabs(e) else base_url.rstrip("/") + "/" + e for e in entries]


def _expand_remote(url: str) -> list[str]:
    """A WARC URL as it is; an object-store prefix (`s3://bucket/crawl/`) or glob (`s3://b/*/x.warc.gz`):
    every WARC file under it or matching it, sorted. HTTP servers cannot be listed: name their files."""
    if url.endswith(INPUT_SUFFIXES) and not glob.has_magic(url):
        return [url]
    if url.startswith(("http://", "https://")):
        raise InputError(f"{url}: not a .warc.gz/.warc/.wet.gz URL, and an HTTP server cannot be listed; "
                         "name the files or give a warc.paths.gz listing")
    fs, path = fsspec.core.url_to_fs(url)
    try:
        names = fs.glob(path) if glob.has_magic(path) else fs.find(path)
    except OSError as exc:
        raise InputError(f"{url}: cannot list it: {exc}") from exc
    protocol = url.split("://", 1)[0]
    found = sorted(f"{protocol}://{name}" for name in names if name.endswith(INPUT_SUFFIXES))
    if not found:
        raise InputError(f"{url}: no .warc.gz, .warc or .wet.gz file under this prefix or matching this pattern")
    return found


def expand_inputs(inputs: list[str], cc_base_url: str = "https://data.commoncrawl.org/") -> list[str]:
    files: list[str] = []
    for item in inputs:
        if not is_remote(item):
            # `a/../b` and `b` are one file: its spelling goes into every record's file_path, so into the bytes
            item = os.path.normpath(item)
        if _is_listing(item):
            found = _read_listing(item, cc_base_url)
        elif is_remote(item):
            found = _expand_remote(item)
        elif os.path.isdir(item):
            found = sorted(
                os.path.join(root, name)
                for root, _, names in os.walk(item)
                for name in names
                if name.endswith(INPUT_SUFFIXES)
            )
            if not found:
                raise InputError(f"{item}: directory holds no .warc.gz, .warc or .wet.gz file")
        elif glob.has_magic(item):
            found = sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p))
            if not found:
                raise InputError(f"{item}: the pattern matches no file")
        elif os.path.isfile(item):
            found = [item]
        else:
            raise InputError(f"{item}: no such file or directory")
        files.extend(found)
    unique = list(dict.fromkeys(files))
    if not unique:
        raise InputError("no input WARC files given")
    for path in unique:
        _check_utf8_name(path)
    return unique


def _check_utf8_name(path: str) -> None:
    """A file name is written into every record's `file_path` and the ledger, which hold UTF-8 text: a name
    whose bytes are not UTF-8 (Python holds them as surrogates, `bad\udcffutf8.warc.gz`) is refused here,
    instead of failing every task that reads it."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        shown = ascii(os.fsencode(path))[2:-1]  # the bytes as the shell would show them: bad\xffutf8.warc.gz
        raise InputError(f"{shown}: the file name is not valid UTF-8; rename the file") from None
