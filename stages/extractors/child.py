"""What trafilatura's child process runs (see stages/extractors/html.py), in a module of its own.

The child is a fresh interpreter: it unpickles the function it is given, importing that function's module,
and from here that is trafilatura and nothing of the pipeline (37 MB; a fork of the worker is 177 MB RSS).
"""

import ctypes
import gc
import logging
import os

from stages.utils import patches
from stages.utils.lifetime import die_with
from stages.utils.stack import run_deep

# after a page over this many characters the child gives its free heap back (glibc's `malloc_trim`): parsing
# it grew the heap (lxml's tree, trafilatura's copies), and glibc keeps what was freed. The hostile corpus's
# 1 MB pages leave the child at 190 MB RSS without, 92 MB with (37 MB at start); 38 of bench's 1,374 pages
# are this large, and a trim takes 1-6 ms (at most 0.25 s of the 28 CPU seconds of a run over bench)
TRIM_CHARS = 500_000


def serve(conn, worker: int) -> None:
    """datatrove's `ExtractorSandbox._worker`: first in line for the OOM killer, the function to run, a
    warm-up, "ready", then one extraction per text received until the pipe closes. Killed with its worker
    (pid `worker`), first thing: a page that hangs trafilatura in C would keep it alive past the pipe's end."""
    die_with(worker)  # if that worker is gone already, this child goes now
    extract_fn = conn.recv()
    with open(f"/proc/{os.getpid()}/oom_score_adj", "w") as f:
        f.write("1000\n")
    for name in ("trafilatura", "htmldate", "courlan", "justext"):  # crawled pages are messy: as in the worker
        logging.getLogger(name).setLevel(logging.CRITICAL)
    patches.apply(patches.EXTRACTION_PATCHES)  # the same text, faster (stages/utils/trafilatura_patches.py)
    extract_fn("")
    # the collector, off while trafilatura imported (stages/extractors/html.py `_BOOT`), is back for the pages;
    # what the imports made lives as long as the child, and later collections skip it
    gc.freeze()
    gc.enable()
    conn.send(None)
    run_deep(_extract_pages, conn, extract_fn)


def _extract_pages(conn, extract_fn) -> None:
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc's; musl has none
    while True:
        try:
            html = conn.recv()
        except EOFError:
            break
        text = extract_fn(html)
        if trim is not None and len(html) > TRIM_CHARS:  # before the answer: the parent reads our size then
            trim(0)
        conn.send(text)


def extract_text(html: str, favor_precision: bool, deduplicate: bool) -> str | None:
    """datatrove's `Trafilatura.extract`: trafilatura's `extract` without comments."""
    from trafilatura import extract  # in the extraction child only: the parent never imports trafilatura

    return extract(html, favor_precision=favor_precision, include_comments=False, deduplicate=deduplicate)
