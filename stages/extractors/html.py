"""Main-text extraction with trafilatura 2.x, as FineWeb did it (precision mode, no comments).

datatrove's `Trafilatura` step does the extraction in a child process (`ExtractorSandbox`) so that a hang,
even inside lxml's C code, is cut off after `timeout` seconds. We keep that and add what it lacks: every
document it drops goes to the ledger with its reason, and `deduplicate=False`, because trafilatura's
deduplication keeps a process-wide cache that makes the output depend on document order.

Text from a WET file (already extracted by Common Crawl) passes through untouched.

Drop reasons: `timeout`, `crashed` (the child died, e.g. out of memory), `extract_error`, `empty_text`,
`too_many_elements` (over `max_elements` start tags: never sent to trafilatura).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.extractors.base import ExtractorSandbox
from datatrove.pipeline.extractors.trafilatura import Trafilatura
from datatrove.utils.typeshelper import StatHints

from stages.extractors.child import extract_text
from stages.filters.langid import REUSED_LANGUAGE
from stages.readers.wet import is_wet
from stages.writers.ledger import DropLedger, drop
from stages.writers.reuse import DOC, extraction_cache

_SANDBOXES: dict[tuple, ExtractorSandbox] = {}
# the child's first lines: no garbage collection until its imports and warm-up are done (`serve` turns it back on:
# ~15 ms of the ~0.2 s start), this process's import path, then the function, then `serve`
# (stages/extractors/child.py), told the worker's pid (argv[2]) to die with it
_BOOT = ("import gc; gc.disable(); "
         "import sys; from multiprocessing.connection import Connection; conn = Connection(int(sys.argv[1])); "
         "sys.path[:] = conn.recv(); from stages.extractors.child import serve; "
         "serve(conn, int(sys.argv[2]))")
_START_SECONDS = 60.0  # a fresh interpreter importing trafilatura: 0.3 s on a quiet machine
# a child over this RSS after a page is replaced before the next: parsing a huge page grows it (lxml, glibc's
# arenas) and its trim (stages/extractors/child.py) does not give it all back (hostile corpus: 37 MB fresh,
# 92 MB after its 1 MB pages, creeping up). It counts with the worker's memory (issue 18: <= 400 MB for
# both); a restart costs 0.3 s, and none happens on bench's 1,374 pages (the child peaks at 111 MB there)
RECYCLE_BYTES = 150_000_000
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


class SandboxStartError(RuntimeError):
    """The extraction child could not start: this machine's fault, not the page's. The task fails (a rerun
    redoes it) instead of dropping every document after as `crashed`."""


class _Child:
    """A `subprocess.Popen` with the few `multiprocessing.Process` methods datatrove's sandbox calls."""

    def __init__(self, popen: subprocess.Popen):
        self.popen = popen

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def terminate(self) -> None:
        self.popen.terminate()

    def kill(self) -> None:
        self.popen.kill()

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)


class LeanSandbox(ExtractorSandbox):
    """datatrove's sandbox with a fresh interpreter for its child instead of a fork of this process.

    A forked child holds every page its worker had at the fork: 177 MB RSS under a worker that has loaded
    the run's lists and models, counted again beside the worker's own; a fresh one holds Python and
    trafilatura, 37 MB, for 0.3 s more to start, once per worker and run (and after a timeout or crash).
    Started with `subprocess`, not multiprocessing's `spawn`, which would re-run the caller's main script.
    """

    recycled = 0  # children replaced for their size, by this sandbox

    def process_document(self, text, extract_fn):
        try:
            return super().process_document(text, extract_fn)
        finally:
            if self.process is not None and _rss(self.process.popen.pid) > RECYCLE_BYTES:
                self._cleanup_process()  # the next page starts a fresh one
                self.recycled += 1

    def _ensure_process(self, extract_fn):
        if self.process is not None and self.process.is_alive():
            return
        self._cleanup_process()
        ours, theirs = socket.socketpair()
        self.parent_conn, self.child_conn = Connection(ours.detach()), Connection(theirs.detach())
        fd = self.child_conn.fileno()
        try:
            self.process = _Child(subprocess.Popen([sys.executable, "-c", _BOOT, str(fd), str(os.getpid())], pass_fds=(fd,),
                                                   stdin=subprocess.DEVNULL))
        except OSError as exc:
            raise SandboxStartError(f"cannot start the extraction child: {exc}") from exc
        finally:
            self.child_conn.close()  # the child has its own copy
        wait = max(self.timeout, _START_SECONDS)
        try:
            self.parent_conn.send(sys.path)
            self.parent_conn.send(extract_fn)
            deadline = time.monotonic() + wait
            while not self.parent_conn.poll(0.05):
                if not self.process.is_alive() or time.monotonic() > deadline:
                    raise EOFError
            self.parent_conn.recv()  # ready
        except (OSError, EOFError) as exc:  # a closed pipe: the child is gone
            try:
                code = self.process.popen.wait(1)  # the pipe closes a moment before the exit is reaped
            except subprocess.TimeoutExpired:
                code = None
            self._cleanup_process()
            raise SandboxStartError(f"the extraction child ({sys.executable}) did not start: "
                                    + (f"it exited with {code}" if code is not None else f"no answer in {wait:g} s")
                                    ) from exc


def _rss(pid: int) -> int:
    """Resident bytes of process `pid` (0 once it is gone): one read of /proc, ~10 µs."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * _PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0


def shared_sandbox(step: Extractor) -> ExtractorSandbox:
    """One trafilatura child process per worker process (and settings), reused by every task it runs.

    datatrove starts one per task; in a spawned worker that is a fresh interpreter importing trafilatura,
    ~1 s, as long as extracting 50 pages. The child extracts with the settings of the step that started it,
    hence one per settings. It is restarted after a timeout or a crash, and ended with the worker process.
    """
    # a worker forked from a process with sandboxes of its own (a test) must not use or close those
    key = (os.getpid(), type(step).__qualname__, step.favour_precision, step.timeout)
    if key not in _SANDBOXES:  # its child ends when this process exits: its pipe closes
        _SANDBOXES[key] = LeanSandbox(timeout=step.timeout, warmup_text="")
    return _SANDBOXES[key]


def close_sandboxes() -> None:
    """End this process's trafilatura children: a worker that goes on to phases without extraction (the
    local engine keeps its workers for the whole run) should not hold ~100 MB it no longer needs."""
    for key in list(_SANDBOXES):
        if key[0] == os.getpid():
            _SANDBOXES.pop(key)._cleanup_process()


# trafilatura holds a page's tree twice (the tree and its backup copy for the fallback extractors), ~1.6 KB per
# element: `"<b>x</b>" * 120_000` (1 MiB) took the child to 234 MB and the worker with it to 432 MB, over the
# 400 MB a worker may use. The pages of warc/bench, zh, other and cc have at most 10,126 start tags; 50,000 in
# the 1 MiB Common Crawl keeps of a page is tag soup (~20 bytes an element), and costs the child ~80 MB at most.
MAX_ELEMENTS = 50_000
_START_TAG = re.compile(r"<[A-Za-z]")


def start_tags(html: str, limit: int) -> int:
    """The number of start tags in `html`, counted up to `limit + 1`; cheap when it has few '<'."""
    if html.count("<") <= limit:
        return html.count("<")
    count = 0
    for count, _ in enumerate(_START_TAG.finditer(html), 1):
        if count > limit:
            break
    return count


class Extractor(Trafilatura):
    """HTML in `doc.text` -> main text; keeps the HTML's length in `doc.metadata["html_bytes"]`.

    `cache`: the reuse store folder of a run with the same reader and extraction settings
    (stages/writers/reuse.py): a record found there takes its stored text (or drop reason) and language
    scores (with `cached_scores`: the same model) instead of being extracted again; the others (dropped before
    extraction there) are extracted."""

    name = "⛏ Trafilatura"
    stage = "extract"

    def __init__(self, ledger_folder: str, favor_precision: bool = True, timeout: float = 30.0,
                 cache: str | None = None, cached_scores: bool = False, max_elements: int | None = MAX_ELEMENTS):
        super().__init__(favour_precision=favor_precision, timeout=timeout, deduplicate=False)
        self.ledger_folder = ledger_folder
        self.max_elements = max_elements
        self.cache, self.cached_scores = cache, cached_scores

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        ledger = DropLedger(self.ledger_folder, "extract")
        sandbox = shared_sandbox(self)
        if type(self).extract is Trafilatura.extract and not self.kwargs:
            extract = functools.partial(extract_text, favor_precision=self.favour_precision,
                                        deduplicate=self.deduplicate)
        else:  # a subclass with its own extraction (tests): the child unpickles this step
            extract = self.extract
        cached = extraction_cache(self.cache, rank) if self.cache else {}
        with ledger:
            for doc in data:
                self.stat_update(StatHints.total)
                if is_wet(doc):  # Common Crawl's own extraction (stages/readers/wet.py): the text goes on as it is
                    self.stat_update("wet_text")
                    yield doc
                    continue
                reason = detail = None
                with self.track_time():
                    hit = cached.get((doc.id, doc.metadata.get("offset")))
                    try:
                        if hit is None and self.max_elements and \
                                start_tags(doc.text, self.max_elements) > self.max_elements:
                            text, reason = "", "too_many_elements"
                            detail = f"over {self.max_elements:,} start tags (extract.max_elements)"
                        elif hit is not None:
                            self.stat_update("reused")
                            text, reason = (hit[1], None) if hit[0] == DOC else ("", hit[1])
                            if hit[0] == DOC and hit[2] is not None and self.cached_scores:
                                doc.metadata[REUSED_LANGUAGE] = (hit[2], hit[3])
                        else:
                            text = sandbox.process_document(doc.text, extract)
                    except SandboxStartError:
                        raise
                    except TimeoutError:
                        reason = "timeout"
                    except EOFError:
                        reason = "crashed"
                    except Exception:  # noqa: BLE001 - trafilatura raises many types on bad HTML
                        reason = "extract_error"
                if reason is None and not (text and text.strip()):
                    reason = "empty_text"
                if reason is not None:
                    self.stat_update(StatHints.dropped, reason)
                    doc.text = ""
                    drop(ledger, doc, rank, reason, detail)
                    continue
                doc.text = text
                self.stat_update(StatHints.forwarded)
                self.update_doc_stats(doc)
                yield doc
