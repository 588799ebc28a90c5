"""ccpipe against its peer, datatrove's own FineWeb recipe, on the same WARC files, in the same run, on one core.

    .venv/bin/python bench/bench_pipeline.py --cores 0              # ../shared/corpus/warc/bench, then English, zh
    .venv/bin/python bench/bench_pipeline.py --input DIR --cores 1 --json out/bench_pipeline.json
    .venv/bin/python bench/bench_pipeline.py --peer-tasks per-file  # the peer as round two ran it
    .venv/bin/python bench/bench_pipeline.py --repeat 3             # each side 3 times in turn, each side's best

The PEER is datatrove's blocks wired as `examples/fineweb.py` wires them (bench/pipeline_peer.py), workers=1, by
default as ONE task over the whole input (its lists and models loaded once, as ccpipe's are, and as at dump scale
where a task is a 30,000-record WARC; `--peer-tasks per-file`: one task per WARC file):

    base        WarcReader -> URLFilter -> Trafilatura(favour_precision) -> LanguageFilter(en, 0.65)
                -> GopherRepetition -> GopherQuality -> C4(filter_no_terminal_punct=False) -> FineWebQuality -> JsonlWriter
    signatures  JsonlReader -> MinhashDedupSignature          (5-grams, 14 buckets x 8 hashes, 64-bit)
    buckets     MinhashDedupBuckets                            (one task per bucket)
    cluster     MinhashDedupCluster                            (one task)
    final       JsonlReader -> MinhashDedupFilter -> PIIFormatter -> JsonlWriter -> DocumentTokenizer

CCPIPE is `ccpipe run --workers 1` of this checkout with its default config (every fast path on). Each side runs
in its own child process pinned to the same core, while the bench samples /proc from another core; wall time runs
from process start (WARC in) to exit (shards out); CPU seconds and RSS cover every process of the run
(bench/pipeline_measure.py). Then, unless `--no-english`, both run again on the English pages only: the records
that reach ccpipe's quality stage (English >= 0.65 on trafilatura's text), copied into new WARC files.

Then, unless `--no-zh`, Chinese (`--zh DIR`, default ../shared/corpus/warc/zh): ccpipe with `langid.languages:
[zh]` and cl100k_base against the PEER as FineWeb-2's `fineweb-2-pipeline.py` configures datatrove for `cmn_Hani`
(its profile `configs/cmn_Hani.yml`, shipped in stages/recipes/profiles/), lid.176 in place of GlotLID (a
download), GPT-2 as its tokenizer (datatrove needs a Hugging Face tokenizer.json, which cl100k_base is not):

    base        WarcReader -> URLFilter -> Trafilatura(favour_precision) -> LanguageFilter(zh, language_score)
                -> JsonlWriter
    signatures  JsonlReader -> MinhashDedupSignature(language=cmn_Hani)     (jieba's words)
    buckets     MinhashDedupBuckets;  cluster  MinhashDedupCluster(save_cluster_size)
    final       JsonlReader -> MinhashDedupFilter -> GopherRepetition -> FineWebQuality -> GopherQuality (cmn_Hani's
                values) -> FTFY -> PIIFormatter -> SymbolLines(|) -> JsonlWriter -> DocumentTokenizer

The peer's offline adaptations, the fewest that let it run here, are printed with the results (ADAPTATIONS in
bench/pipeline_peer.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]  # beside it; ccpipe

from pipeline_measure import (  # noqa: E402
    build_tokenizer_json,
    compile_checkout,
    count_responses,
    english_subset,
    measure,
    pick_core,
)
from pipeline_peer import ADAPTATIONS, peer_figures, run_peer  # noqa: E402

from pipeline.plan.config import ExtractConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "corpus"
DEFAULT_INPUT = SHARED / "warc" / "bench"
GPT2 = SHARED / "tokenizers" / "gpt2"
CL100K = SHARED / "tokenizers" / "cl100k_base" / "cl100k_base.tiktoken"
STAGES = ("reader", "blocklist", "extract", "langid", "quality", "dedup", "pii", "tokenize", "write", "ledger", "other")


def run_both(input_dir: Path, tmp: Path, tokenizer_json: Path, args, recipe: str = "fineweb",
             config: dict | None = None, tokenizer: Path = GPT2 / "gpt2.tiktoken") -> dict:
    """`run_once`, `args.repeat` times in turn (peer, ccpipe, peer, ...); each side's figures from its run of
    fewest CPU seconds (as timeit takes the best: on a shared machine a slower run measures the neighbours), and
    every run's CPU and wall seconds in `runs`."""
    runs = [run_once(input_dir, tmp / f"run{i}" if args.repeat > 1 else tmp, tokenizer_json, args, recipe, config,
                     tokenizer) for i in range(args.repeat)]
    best = {side: min((r[side] for r in runs), key=lambda fig: fig["cpu_s"]) for side in ("peer", "ccpipe")}
    fig = dict(runs[0], **best, ratio_records_per_s=best["peer"]["wall_s"] / best["ccpipe"]["wall_s"],
               ratio_cpu=best["peer"]["cpu_s"] / best["ccpipe"]["cpu_s"])
    fig["runs"] = [{f"{side}_{key}": r[side][key] for side in ("peer", "ccpipe") for key in ("cpu_s", "wall_s")}
                   for r in runs]
    return fig


def run_once(input_dir: Path, tmp: Path, tokenizer_json: Path, args, recipe: str = "fineweb",
             config: dict | None = None, tokenizer: Path = GPT2 / "gpt2.tiktoken") -> dict:
    """The peer (`recipe`) then ccpipe (with `config`, `tokenizer`) on `input_dir`, each measured; raises
    RuntimeError with the log's tail on a failure."""
    peer_work, out = tmp / "peer", tmp / "ccpipe"
    peer_work.mkdir(parents=True)
    records = count_responses(input_dir)
    env = dict(os.environ, HF_HOME=str(tmp.parent / "hf"), HF_HUB_OFFLINE="1")
    print(f"peer: datatrove's {recipe} recipe on {input_dir}, {args.peer_tasks} task(s) ...", file=sys.stderr,
          flush=True)
    peer = measure([sys.executable, str(Path(__file__).resolve()), "--input", str(input_dir), "--peer-work",
                    str(peer_work), "--tokenizer-json", str(tokenizer_json), "--peer-timeout", str(args.peer_timeout),
                    "--peer-recipe", recipe, "--peer-tasks", args.peer_tasks], tmp / "peer.log", env,
                   core=args.cores)
    extra = []
    if config:
        (tmp / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
        extra = ["--config", str(tmp / "config.yaml")]
    cmd = [sys.executable, "-m", "pipeline.cli", "run", "--input", str(input_dir), "--output", str(out), "--workers",
           "1", "--tokenizer", str(tokenizer), "--no-progress", *extra]
    print(f"ccpipe: {' '.join(cmd[1:])} ...", file=sys.stderr, flush=True)
    # this checkout's code, whatever ccpipe is installed
    cc_env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    cc = measure(cmd, tmp / "ccpipe.log", cc_env, worker_depth=1, core=args.cores)
    for name, fig in (("peer", peer), ("ccpipe", cc)):
        if fig["rc"] != 0:
            raise RuntimeError(f"{name} failed (exit {fig['rc']}); last lines of {fig['log']}:\n"
                               + Path(fig["log"]).read_text()[-4000:])
    peer.update(peer_figures(peer_work), tasks=args.peer_tasks)
    summary = json.loads((out / "summary.json").read_text())
    cc.update(kept=summary["kept"], tokens=summary.get("tokens", 0), stage_s=summary.get("seconds_per_stage", {}),
              records_total=summary["records_total"], elapsed_s=summary.get("elapsed_seconds", 0.0),
              tokenizer=tokenizer.name)
    return {"input": str(input_dir), "recipe": recipe, "records": records, "peer": peer, "ccpipe": cc,
            "ratio_records_per_s": peer["wall_s"] / cc["wall_s"], "ratio_cpu": peer["cpu_s"] / cc["cpu_s"],
            "ccpipe_out": str(out)}


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
             row("processes at once, at most", p["processes"], c["processes"], "d"),
             row("kept documents", p["kept"], c["kept"], "d"),
             row("tokens", p["tokens"], c["tokens"], "d"),
             f"  response records in: {n} (counted with warcio; ccpipe's records_total {c['records_total']}); "
             f"peer: {p['tasks']} task(s); ccpipe's tokenizer: {c['tokenizer']}",
             f"  seconds per stage      {'peer':>10} {'ccpipe':>10} {'peer/ccpipe':>12}"]
    for stage in STAGES:
        a, b = p["stage_s"].get(stage, 0.0), c["stage_s"].get(stage, 0.0)
        if a or b:
            lines.append(f"    {stage:<20} {a:>10.2f} {b:>10.2f} {(f'{a / b:.1f}x' if b else '-'):>12}")
    lines.append(f"    {'sum':<20} {sum(p['stage_s'].values()):>10.2f} {sum(c['stage_s'].values()):>10.2f}")
    if len(fig.get("runs", ())) > 1:
        lines.append(f"  {len(fig['runs'])} runs each, in turn; the figures above are each side's run of fewest CPU "
                     "seconds. CPU seconds, peer / ccpipe (ratio): " + ", ".join(
                         f"{r['peer_cpu_s']:.1f} / {r['ccpipe_cpu_s']:.1f} ({r['peer_cpu_s'] / r['ccpipe_cpu_s']:.2f}x)"
                         for r in fig["runs"]))
    covered = sum(c["stage_s"].values())
    if c.get("elapsed_s"):
        lines.append(f"  ccpipe's seconds_per_stage: {covered:.2f} s = {covered / c['elapsed_s']:.1%} of summary.json's "
                     f"elapsed_seconds ({c['elapsed_s']:.2f} s), {covered / c['wall_s']:.1%} of the process's wall "
                     "(before the run's clock: Python starting, imports, the config check)")
    return "\n".join(lines)


NOTES = """\
records/s per core = WARC response records / wall seconds of the whole run (imports, model and list loading
included), both sides pinned to the same core. CPU seconds: user+sys of every process of the run (the better
figure on a busy machine: time spent waiting for the core is not in it). Stage seconds: datatrove's stats.json
per phase, summed over tasks (the peer's MinHash signature step minus the reader it times too; ccpipe's
summary.json seconds_per_stage); the rest of the wall is process start, imports, model loading and the executor.
Peak RSS per worker: the process running the tasks with every process under it (trafilatura's child); the tree:
every process of the run at once (ccpipe's coordinator too), found in /proc by an environment marker, so
forkserver grandchildren count; RSS sums count pages shared after a fork once per process.
Known differences in what is kept: the peer keeps non-200 HTML (404 pages) and runs trafilatura with
deduplicate=True as FineWeb did; ccpipe does neither."""


# ---------------------------------------------------------------------------------------------------------------


def summary_lines(figs: dict) -> list[str]:
    """The ratios the targets are stated in, one line each, and the worker's peak RSS."""
    names = {"all": "mixed bench", "english": "English pages", "zh": "Chinese (FineWeb-2 cmn_Hani)"}
    def each(f: dict) -> str:
        runs = f.get("runs", ())
        if len(runs) < 2:
            return ""
        return f" (best of {len(runs)}; each run: " + " / ".join(
            f"{r['peer_cpu_s'] / r['ccpipe_cpu_s']:.2f}x" for r in runs) + ")"

    return [f"  {names[k]:<30} {f['ratio_records_per_s']:.2f}x records/s (wall), {f['ratio_cpu']:.2f}x CPU seconds"
            f"{each(f)}; ccpipe peak RSS: worker {f['ccpipe']['worker_rss_mib']:.0f} MiB, tree "
            f"{f['ccpipe']['peak_rss_mib']:.0f} MiB" for k, f in figs.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="records/s per core, CPU seconds, stage seconds, peak RSS and kept documents of ccpipe vs "
                    "datatrove's FineWeb recipe on the same WARC files, one pinned core; then the same on the English "
                    "pages, then on Chinese against FineWeb-2's recipe.",
        epilog="example:\n  .venv/bin/python bench/bench_pipeline.py --input ../shared/corpus/warc/bench --cores 0 "
               "--json /tmp/bench.json", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=str(DEFAULT_INPUT), help="directory of *.warc.gz files")
    parser.add_argument("--cores", type=int, default=0, metavar="CORE", help="the one CPU core both runs are pinned to")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run each side N times, in turn, and report each side's best (fewest CPU seconds) "
                             "with every run's figures: steadier ratios on a machine others share (default: 1)")
    parser.add_argument("--peer-tasks", choices=("one", "per-file"), default="one",
                        help="the peer as one task over the whole input (its lists and models loaded once, as at "
                             "dump scale), or one task per WARC file (default: %(default)s)")
    parser.add_argument("--no-english", action="store_true", help="skip the second run on the English pages only")
    parser.add_argument("--zh", default=str(SHARED / "warc" / "zh"),
                        help="directory of Chinese *.warc.gz files, against FineWeb-2's recipe (default: %(default)s)")
    parser.add_argument("--no-zh", action="store_true", help="skip the Chinese run")
    parser.add_argument("--zh-only", action="store_true", help="only the Chinese run")
    parser.add_argument("--peer-timeout", type=float, default=ExtractConfig().timeout,
                        help="Trafilatura timeout per document for the peer (default: ccpipe's extract.timeout, "
                             "%(default)g s, so load on a shared machine does not change what either keeps; "
                             "datatrove's default is 1 s)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with both runs' outputs")
    parser.add_argument("--peer-work", help=argparse.SUPPRESS)  # child-process mode
    parser.add_argument("--tokenizer-json", help=argparse.SUPPRESS)
    parser.add_argument("--peer-recipe", default="fineweb", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.peer_work:
        run_peer(args.input, Path(args.peer_work), args.tokenizer_json, args.peer_timeout, args.peer_recipe,
                 args.peer_tasks == "one")
        return 0

    pick_core(args.cores)
    compile_checkout()
    input_dir = Path(args.input).resolve()
    if not any(input_dir.glob("*.warc.gz")):
        print(f"bench: no *.warc.gz in {input_dir}", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="ccpipe-bench-"))
    try:
        tokenizer_json = build_tokenizer_json(GPT2, tmp / "gpt2-tokenizer.json")
        figs = {}
        if not args.zh_only:
            figs["all"] = run_both(input_dir, tmp / "all", tokenizer_json, args)
            print(report(f"ALL PAGES: {input_dir}, pinned to core {args.cores}", figs["all"]))
        if not args.no_english and not args.zh_only:
            subset = tmp / "english-warc"
            n = english_subset(input_dir, Path(figs["all"]["ccpipe_out"]), subset)
            figs["english"] = run_both(subset, tmp / "english", tokenizer_json, args)
            print()
            print(report(f"ENGLISH PAGES: the {n} records that reach ccpipe's quality stage, copied into new WARCs",
                         figs["english"]))
        zh = Path(args.zh).resolve()
        if not args.no_zh and any(zh.glob("*.warc.gz")):
            figs["zh"] = run_both(zh, tmp / "zh", tokenizer_json, args, "fineweb2-zh",
                                  {"langid": {"languages": ["zh"]}}, CL100K)
            print()
            print(report(f"CHINESE PAGES: {zh}; peer: datatrove as FineWeb-2 configures it for cmn_Hani (lid.176 "
                         "for GlotLID, GPT-2); ccpipe: langid.languages [zh], cl100k_base", figs["zh"]))
        elif not args.no_zh:
            print(f"\nbench: no *.warc.gz in {zh}: the Chinese comparison is skipped", file=sys.stderr)
        print()
        print(NOTES)
        print(f"peer Trafilatura timeout: {args.peer_timeout:g} s per document (datatrove's default is 1 s)")
        print("peer adaptations (offline):", *(f"  - {a}" for a in ADAPTATIONS), sep="\n")
        print(f"\nccpipe / peer ({args.peer_tasks} task(s)), core {args.cores}:", *summary_lines(figs), sep="\n")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps({"core": args.cores, "peer_tasks": args.peer_tasks,
                                                   "adaptations": ADAPTATIONS, **figs}, indent=2))
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
