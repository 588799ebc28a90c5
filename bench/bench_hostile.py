"""Hostile input: the worst seconds one record costs in each stage outside extraction, and the peak RSS of a
whole `ccpipe run` over the hostile corpus (tests/hostile_corpus.py: deep nesting, huge attributes, no-web
charsets, megabyte lines and words, many tiny tags, PII-dense lines, one HTTP header line of 1 GiB).

Targets (issue 18): <= 2 s per record in any stage but extraction (which has its own `extract.timeout` in a
child process), on one core; <= 400 MB peak RSS for the worker, whatever the input.

Per stage, each page is fed to the stage's own code in this process (CPU seconds, `time.process_time`):
reader (the record judged: headers, payload, charset), precheck (the pre-check's text and fastText), then on
the text trafilatura would give a page like it (the page's visible text, here the pre-check's): langid,
quality, dedup (the MinHash signature), pii, tokenize. A page denser with PII than `pii.max_candidates` is
dropped by counting (`pii_too_dense`); `pii at the limit` is the cost of the costliest text just under it
(phone numbers with extensions: ~0.37 ms per candidate).

Memory: `ccpipe run --workers 1` on the corpus, sampled from /proc every 50 ms. The target is the worker's:
the pool process that runs the tasks plus its children (the extraction sandbox), not the coordinator that
forked it. Sums of RSS over processes count every page shared after the fork once per process (the
coordinator's imports: ~200 MB in both), so PSS (/proc/PID/smaps_rollup: a shared page split between its
sharers) is printed beside them; the worker's PSS is what it adds to the machine.

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
from stages.dedup.minhash import MinhashDedup  # noqa: E402
from stages.filters.langid import LanguageID, LanguagePrecheck, html_text  # noqa: E402
from stages.filters.quality import quality_filters  # noqa: E402
from stages.pii.scrub import PIIScrubber, TooDense  # noqa: E402
from stages.readers.warc import FileFate, WarcReader  # noqa: E402
from stages.tokens.tokenize import BPETokenizer  # noqa: E402
from tests.fixtures import make_doc  # noqa: E402
from tests.hostile_corpus import MIB, hostile_pages, write_header_bomb, write_hostile_warc  # noqa: E402


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return children


def _below(pid: int, children: dict[int, list[int]]) -> list[int]:
    """`pid` and every process below it."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _rss_pss(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in bytes; (0, 0) once it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, pss


def tree_memory(pid: int) -> dict[str, int]:
    """RSS and PSS summed over `pid`'s tree, and over its largest child's subtree (the worker and its children)."""
    children = _children()
    sizes = {p: _rss_pss(p) for p in _below(pid, children)}
    worker = max(([sum(sizes[p][i] for p in _below(c, children)) for i in (0, 1)] for c in children.get(pid, [])),
                 default=[0, 0], key=lambda rp: rp[1])
    return {"tree_rss": sum(r for r, _ in sizes.values()), "tree_pss": sum(p for _, p in sizes.values()),
            "worker_rss": worker[0], "worker_pss": worker[1]}


def peak_memory_of_run(corpus: Path, out: Path, tokenizer: str | None) -> tuple[dict[str, int], int, float]:
    args = [sys.executable, "-m", "pipeline.cli", "run", "--input", str(corpus), "--output", str(out),
            "--workers", "1", "--no-progress"] + (["--tokenizer", tokenizer] if tokenizer else [])
    started = time.monotonic()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak: dict[str, int] = {}
    done = threading.Event()
    threading.Thread(target=lambda: (proc.wait(), done.set()), daemon=True).start()
    while not done.wait(0.05):
        for key, value in tree_memory(proc.pid).items():
            peak[key] = max(peak.get(key, 0), value)
    if proc.returncode:
        print(proc.stderr.read().decode()[-2000:])
    return peak, proc.returncode, time.monotonic() - started


def sign(signature, text: str) -> None:
    """The MinHash signature step's work on one document (datatrove signs no document without shingles)."""
    shingles = signature.get_shingles(text)
    if shingles.size:
        signature.get_signature(shingles)


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
        signature = MinhashDedup(Path(tmp) / "minhash").signature()
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
            note("dedup", timed(sign, signature, text), name)
            started, fate = time.process_time(), ""
            try:
                pii.scrub(text)
            except TooDense:  # dropped as pii_too_dense: counting the candidates is all it cost
                fate = " (pii_too_dense)"
            note("pii", time.process_time() - started, name + fate)
            note("tokenize", timed(tokenizer.encode_batch, [text]), name)
        unit = "+1 555 010 0100 ext. 12 "  # 5 candidates: the costliest we found (stages/pii/scrub.py)
        text = unit * (pii.max_candidates // 5)
        note("pii", timed(pii.scrub, text), f"at the limit ({pii.max_candidates} candidates, {len(text):,} chars)")
        print(f"{'stage':<10} {'worst s/record':>15}  record")
        for stage, (seconds, name) in worst.items():
            print(f"{stage:<10} {seconds:>15.3f}  {name}")
        peak, code, wall = peak_memory_of_run(corpus, Path(tmp) / "run", args.tokenizer)
        print(f"ccpipe run --workers 1 on the hostile corpus: exit {code}, {wall:.1f} s; peaks, MB:")
        print(f"  worker + its children: RSS {peak['worker_rss'] / 1e6:.0f}, PSS {peak['worker_pss'] / 1e6:.0f} "
              f"(target <= 400 MB)")
        print(f"  whole tree with the coordinator: RSS summed {peak['tree_rss'] / 1e6:.0f}, "
              f"PSS summed {peak['tree_pss'] / 1e6:.0f}")


if __name__ == "__main__":
    main()
