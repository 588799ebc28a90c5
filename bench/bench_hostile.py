"""Hostile input: the worst seconds one record costs in each stage outside extraction, and the peak RSS of a
whole `ccpipe run` over the hostile corpus (tests/hostile_corpus.py: deep nesting, huge attributes, no-web
charsets, megabyte lines and words, many tiny tags, PII-dense lines, one HTTP header line of 1 GiB).

Targets (issue 18): <= 2 s per record in any stage but extraction (which has its own `extract.timeout` in a
child process), on one core; <= 400 MB peak RSS for the worker, whatever the input.

Per stage, each page is fed to the stage's own code in this process (CPU seconds, `time.process_time`):
reader (the record judged: headers, payload, charset), precheck (the pre-check's text and fastText), then on
the text trafilatura would give a page like it (the page's visible text, here the pre-check's): langid,
quality, pii, tokenize. RSS: `ccpipe run --workers 1` on the corpus, the process tree's RSS summed from
/proc every 50 ms.

Run by hand, e.g.:
  .venv/bin/python bench/bench_hostile.py                    # the 1 GiB header line: ~1 MB on disk
  .venv/bin/python bench/bench_hostile.py --header-line-mib 64
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.plan.config import QualityConfig  # noqa: E402
from stages.filters.langid import LanguageID, LanguagePrecheck, html_text  # noqa: E402
from stages.filters.quality import quality_filters  # noqa: E402
from stages.pii.scrub import PIIScrubber  # noqa: E402
from stages.readers.warc import FileFate, WarcReader  # noqa: E402
from stages.tokens.tokenize import BPETokenizer  # noqa: E402
from tests.fixtures import make_doc  # noqa: E402
from tests.hostile_corpus import MIB, hostile_pages, write_header_bomb, write_hostile_warc  # noqa: E402


def tree_rss(pid: int) -> int:
    """RSS in bytes of `pid` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
    return total


def peak_rss_of_run(corpus: Path, out: Path, tokenizer: str | None) -> tuple[int, int, float]:
    args = [sys.executable, "-m", "pipeline.cli", "run", "--input", str(corpus), "--output", str(out),
            "--workers", "1", "--no-progress"] + (["--tokenizer", tokenizer] if tokenizer else [])
    started = time.monotonic()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()
    threading.Thread(target=lambda: (proc.wait(), done.set()), daemon=True).start()
    while not done.wait(0.05):
        peak = max(peak, tree_rss(proc.pid))
    if proc.returncode:
        print(proc.stderr.read().decode()[-2000:])
    return peak, proc.returncode, time.monotonic() - started


def timed(fn, *args) -> float:
    started = time.process_time()
    fn(*args)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--header-line-mib", type=int, default=1024)
    parser.add_argument("--tokenizer", default=None, help="a .tiktoken file (default: the bundled GPT-2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        write_hostile_warc(corpus / "hostile-00000.warc.gz")
        write_header_bomb(corpus / "hostile-00001.warc.gz", args.header_line_mib * MIB)
        reader = WarcReader([], str(Path(tmp) / "ledger"), str(Path(tmp) / "report"))
        precheck, langid = LanguagePrecheck(), LanguageID()
        quality = quality_filters(QualityConfig(), str(Path(tmp) / "ledger"))
        pii, tokenizer = PIIScrubber(), BPETokenizer(args.tokenizer or "gpt2")
        worst: dict[str, tuple[float, str]] = {}

        def note(stage: str, seconds: float, name: str) -> None:
            if seconds > 2:  # over the target: said at once, so a stage that never ends is named
                print(f"  over 2 s: {stage} {seconds:.1f} s on {name}", flush=True)
            if seconds >= worst.get(stage, (-1.0, ""))[0]:
                worst[stage] = (seconds, name)

        # the reader over each file, record by record (header bomb included)
        for path in sorted(corpus.iterdir()):
            records = reader._read_file(str(path), FileFate(str(path)))
            while True:
                started = time.process_time()
                record = next(records, None)
                note("reader", time.process_time() - started, f"{path.name}: {record and record[0].metadata['url']}")
                if record is None:
                    break
        for name, (_, body) in hostile_pages().items():
            html = body.decode("utf-8", errors="replace")
            note("precheck", timed(lambda: precheck.filter(make_doc(html))), name)
            text = html_text(html)
            note("langid", timed(lambda: langid.filter(make_doc(text))), name)
            note("quality", timed(lambda: [step.filter(make_doc(text, language="en")) for step in quality]), name)
            note("pii", timed(pii.scrub, text), name)
            note("tokenize", timed(tokenizer.encode_batch, [text]), name)
        print(f"{'stage':<10} {'worst s/record':>15}  record")
        for stage, (seconds, name) in worst.items():
            print(f"{stage:<10} {seconds:>15.3f}  {name}")
        peak, code, wall = peak_rss_of_run(corpus, Path(tmp) / "run", args.tokenizer)
        print(f"ccpipe run --workers 1 on the hostile corpus: exit {code}, {wall:.1f} s, "
              f"peak RSS of the process tree {peak / 1e6:.0f} MB (target <= 400 MB)")


if __name__ == "__main__":
    main()
