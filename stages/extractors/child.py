"""What trafilatura's child process runs (see stages/extractors/html.py), in a module of its own.

The child is a fresh interpreter: it unpickles the function it is given, importing that function's module,
and from here that is trafilatura and nothing of the pipeline (37 MB; a fork of the worker is 177 MB RSS).
"""

import logging
import os

from stages.utils import patches
from stages.utils.lifetime import die_with


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
    patches.apply(patches.EXTRACTION_PATCHES)  # the same text, faster (stages/utils/patches.py)
    extract_fn("")
    conn.send(None)
    while True:
        try:
            conn.send(extract_fn(conn.recv()))
        except EOFError:
            break


def extract_text(html: str, favor_precision: bool, deduplicate: bool) -> str | None:
    """datatrove's `Trafilatura.extract`: trafilatura's `extract` without comments."""
    from trafilatura import extract  # in the extraction child only: the parent never imports trafilatura

    return extract(html, favor_precision=favor_precision, include_comments=False, deduplicate=deduplicate)
