"""The file helpers every layer uses: atomic writes, file digests and the cache directory.

They live at the bottom (`stages/`) because the steps need them too, and `stages/` imports nothing above it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import xxhash


def cache_dir(*parts: str) -> Path:
    """`$CCPIPE_CACHE` (default ~/.cache/ccpipe), joined with `parts`: the UT1 index, remote WARCs, run dirs."""
    return Path(os.environ.get("CCPIPE_CACHE") or Path.home() / ".cache" / "ccpipe", *parts)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read 1 MiB at a time."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@contextmanager
def atomic_path(path: str | Path, mode: int = 0o644):
    """Yields a temporary path beside `path`; renamed onto `path` when the block ends without an error.

    A reader never sees a half-written file, and concurrent writers of identical bytes are harmless: the
    last rename wins. The temporary file is removed when the block fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)  # mkstemp creates 0600; workers of other users may share a cache
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, data) -> None:
    """Indented, keys sorted, newline-terminated: the same data gives the same bytes."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def files_key(*paths: str | Path, extra=()) -> str:
    """A name for what is derived from `paths` (and `extra`): their absolute paths, sizes and modification times."""
    stats = [(os.path.abspath(p), (st := os.stat(p)).st_size, st.st_mtime_ns) for p in paths]
    return xxhash.xxh3_128_hexdigest(json.dumps([stats, extra], default=str))


def cached_json(path: Path, compute):
    """`compute()`, kept as JSON at `path` (in the cache directory) and read back from there the next time, in
    its order; a cache that cannot be written is only slower."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    value = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(value))
    except OSError:
        pass
    return value


def read_parquet(path: str | Path, columns: list[str] | None = None):
    """One parquet file as a pyarrow Table (with its schema's metadata). `pq.read_table` goes through
    pyarrow.dataset, whose import alone took 44 ms of CPU in each worker process, and ~0.4 ms more a file."""
    import pyarrow.parquet as pq  # not every user of these helpers needs pyarrow

    with pq.ParquetFile(path) as f:
        return f.read(columns=columns)


def read_yaml(path: str | Path):
    """A YAML file, parsed safely (`parse_yaml`)."""
    return parse_yaml(Path(path).read_text(encoding="utf-8"))


def parse_yaml(text: str):
    """YAML parsed safely: with libyaml where PyYAML has it (bench's config.resolved.yaml: 1.4 ms instead of
    10.9 ms; same values), with PyYAML's own parser for what libyaml refuses (a lone surrogate, `\\udcff`, left
    by a file name that is not UTF-8 in a run of an older version)."""
    import yaml  # not every user of these helpers needs PyYAML

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return yaml.safe_load(text)


# files holding raw values (the ledger's PII values, URLs, unscrubbed excerpts): the owner's alone
PRIVATE_FILE, PRIVATE_DIR = 0o600, 0o700


def make_private(files: list[str | Path], folders: list[str | Path]) -> None:
    """`files` 0600 and `folders` 0700 (created if missing)."""
    for folder in folders:
        os.makedirs(folder, mode=PRIVATE_DIR, exist_ok=True)
        os.chmod(folder, PRIVATE_DIR)
    for path in files:
        os.chmod(path, PRIVATE_FILE)
