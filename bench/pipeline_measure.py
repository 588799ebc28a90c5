"""Measuring for bench_pipeline.py: a command's wall, CPU seconds and peak RSS over every process it starts, the
inputs both sides share (response records, GPT-2 as a tokenizer.json), and the English subset of a corpus.

Which processes belong to a run: every process whose environment carries the run's marker (`BENCH_RUN=<id>`),
found by scanning /proc. Environments are inherited, so this finds forkserver grandchildren, the extraction
children of workers, and processes re-parented to init when their parent died, which a walk of the parent's
children (or GNU time's `%M`, one process's maximum) misses.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EOT = "<|endoftext|>"
POLL_S = 0.05
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, int, float, int] | None:
    """(ppid, start time in ticks, user+sys seconds, RSS bytes) from /proc/PID/stat; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2:].split()  # the command name may hold spaces and parentheses
    return int(fields[1]), int(fields[19]), (int(fields[11]) + int(fields[12])) / TICKS, int(fields[21]) * PAGE


class ProcessTree:
    """The processes of one run, sampled from /proc: peak RSS of all of them summed, peak RSS per worker, and
    the last CPU seconds seen of each (a process that ends between two samples keeps its last reading)."""

    def __init__(self, marker: str, root: int, worker_depth: int):
        self.marker, self.root, self.worker_depth = f"BENCH_RUN={marker}".encode(), root, worker_depth
        self.ours: dict[tuple[int, int], bool] = {}  # (pid, start time) -> carries the marker
        self.cmdlines: dict[tuple[int, int], bytes] = {}
        self.cpu: dict[tuple[int, int], float] = {}
        self.peak = self.peak_worker = 0
        self.processes = 0

    def _is_ours(self, key: tuple[int, int]) -> bool:
        if key not in self.ours:
            try:
                with open(f"/proc/{key[0]}/environ", "rb") as f:
                    self.ours[key] = self.marker in f.read().split(b"\0")
                with open(f"/proc/{key[0]}/cmdline", "rb") as f:
                    self.cmdlines[key] = f.read()
            except OSError:
                self.ours[key] = False
        return self.ours[key]

    def sample(self) -> None:
        procs: dict[int, tuple[int, int]] = {}  # pid -> (ppid, rss)
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            st = _stat(pid)
            if st is None or not self._is_ours((pid, st[1])):
                continue
            procs[pid] = (st[0], st[3])
            self.cpu[(pid, st[1])] = st[2]
        self.processes = max(self.processes, len(procs))
        self.peak = max(self.peak, sum(rss for _, rss in procs.values()))
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in procs.items():
            children.setdefault(ppid, []).append(pid)

        def subtree(pid: int) -> int:
            return procs[pid][1] + sum(subtree(c) for c in children.get(pid, ()))

        workers = [self.root] if self.root in procs else []
        for _ in range(self.worker_depth):
            # a forkserver stands between a coordinator and its workers: look through it
            workers = [c for w in workers for c in children.get(w, ())]
            workers = [g for w in workers for g in (children.get(w, []) if self._forkserver(w) else [w])]
        self.peak_worker = max([self.peak_worker, *(subtree(w) for w in workers)])

    def _forkserver(self, pid: int) -> bool:
        return any(b"multiprocessing.forkserver" in cmd for (p, _), cmd in self.cmdlines.items() if p == pid)


def compile_checkout() -> None:
    """Byte-compile this checkout's `pipeline` and `stages`, as `make install` does and as pip does for every
    package the peer runs from site-packages. Where PYTHONDONTWRITEBYTECODE is set (this machine's containers set
    it) nothing else writes ccpipe's `.pyc` files, and each run compiled its ~100 modules again: a run over one
    record, 1.68 -> 1.60 CPU seconds (median of 5, alternated)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "pipeline", "stages"], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)


def measure(cmd: list[str], log: Path, env: dict | None = None, worker_depth: int = 0, core: int | None = None) -> dict:
    """Run `cmd` pinned to `core`, sampling its processes every 50 ms from another core where there is one.

    Returns wall, CPU seconds, peak RSS of the whole tree and per worker, the most processes seen at once, and
    the exit code. A worker is a process at `worker_depth` in the tree (0: the command itself runs the tasks,
    as the peer's workers=1 executor does; 1: it runs them in worker processes, as ccpipe does), counted with
    every process under it (trafilatura's child).
    """
    marker = uuid.uuid4().hex
    env = dict(os.environ if env is None else env, BENCH_RUN=marker)
    pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env, preexec_fn=pin)
        tree = ProcessTree(marker, proc.pid, worker_depth)
        done = threading.Event()

        def poll() -> None:
            others = os.sched_getaffinity(0) - {core}
            if others:  # keep the sampling off the measured core
                os.sched_setaffinity(threading.get_native_id(), others)
            while not done.is_set():
                tree.sample()
                done.wait(POLL_S)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        rc = proc.wait()
        wall = time.monotonic() - started
        done.set()
        poller.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # processes nobody waits for escape RUSAGE_CHILDREN: take the sampled sum when it is larger
    waited = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu = max(waited, sum(tree.cpu.values()))
    return {"wall_s": wall, "peak_rss_mib": tree.peak / 2**20, "worker_rss_mib": tree.peak_worker / 2**20,
            "cpu_s": cpu, "processes": tree.processes, "rc": rc, "log": str(log)}


def pick_core(core: int) -> None:
    """Fail early, with the cores there are, when `core` is not one this process may run on."""
    allowed = os.sched_getaffinity(0)
    if core not in allowed:
        raise SystemExit(f"bench: --cores {core}: this process may run on cores {sorted(allowed)} only")


def count_responses(input_dir: Path) -> int:
    """WARC response records in the input, counted apart from either run (untimed): the shared denominator."""
    from warcio.archiveiterator import ArchiveIterator

    n = 0
    with contextlib.redirect_stderr(io.StringIO()):  # warcio prints a line for each URL with spaces
        for path in sorted(input_dir.glob("*.warc.gz")):
            with open(path, "rb") as f:
                n += sum(1 for rec in ArchiveIterator(f) if rec.rec_type == "response")
    return n


def build_tokenizer_json(gpt2: Path, out: Path) -> Path:
    """GPT-2's byte-level BPE as a Hugging Face tokenizer.json, from the local vocab.json + merges.txt."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.BPE.from_file(str(gpt2 / "vocab.json"), str(gpt2 / "merges.txt")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([EOT])
    tok.save(str(out))
    return out


def english_subset(input_dir: Path, ccpipe_out: Path, dest: Path) -> int:
    """Copy the response records that reached ccpipe's quality stage (English by trafilatura's text) into new WARCs."""
    import pyarrow.parquet as pq
    from warcio.archiveiterator import ArchiveIterator
    from warcio.warcwriter import WARCWriter

    rows = pq.read_table(ccpipe_out / "ledger", columns=["id", "decision", "stage"]).to_pylist()
    english = {r["id"] for r in rows if r["decision"] == "kept" or r["stage"] in ("quality", "dedup", "pii", "tokenize")}
    dest.mkdir(parents=True)
    n = 0
    with contextlib.redirect_stderr(io.StringIO()):  # warcio prints a line for each URL with spaces
        for path in sorted(input_dir.glob("*.warc.gz")):
            with open(path, "rb") as f, open(dest / path.name, "wb") as out:
                writer = WARCWriter(out, gzip=True)
                for rec in ArchiveIterator(f):
                    if rec.rec_type == "warcinfo" or rec.rec_headers.get_header("WARC-Record-ID") in english:
                        writer.write_record(rec)
                        n += rec.rec_type == "response"
    return n
