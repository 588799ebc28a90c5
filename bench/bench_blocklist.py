"""datatrove's URLFilter (FineWeb) against ccpipe's URLBlocklist: load time, memory, throughput, agreement.

Each measurement runs in a fresh subprocess (so RSS and caches are honest); "cold" starts from an empty
cache directory, "warm" reuses the one the cold run filled. Run by hand, prints a table:

    .venv/bin/python bench/bench_blocklist.py
    .venv/bin/python bench/bench_blocklist.py --truth ../shared/corpus/warc/bench/truth.jsonl --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRUTH = ROOT.parent / "shared" / "corpus" / "warc" / "bench" / "truth.jsonl"
# datatrove reason -> ours, for the rules FineWeb has
SAME_RULE = {"domain": "ut1_domain", "subdomain": "ut1_subdomain", "url": "ut1_url", "hard_blacklisted": "banned_word",
             "soft_blacklisted": "soft_banned_words", "blacklisted_subword": "banned_subword"}


def child(impl: str, cache: str, truth: str, repeat: int, host_word_rules: bool) -> dict:
    """Runs in the subprocess: load, filter every bench URL `repeat` times, report."""
    import psutil
    from datatrove.data import Document

    urls = [json.loads(line)["url"] for line in open(truth)]
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    start = time.perf_counter()
    if impl == "datatrove":
        os.environ["HF_ASSETS_CACHE"] = cache  # where URLFilter extracts the tarball
        from datatrove.pipeline.filters.url_filter import URLFilter

        f = URLFilter()
        f.download_data()
    else:
        sys.path.insert(0, str(ROOT))
        from stages.filters.blocklist import URLBlocklist

        f = URLBlocklist(cache_dir=cache, host_word_rules=host_word_rules)
        f._load()
    load_s = time.perf_counter() - start
    rss_mb = (proc.memory_info().rss - rss0) / 2**20
    decisions, best = {}, float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for url in urls:
            result = f.filter(Document(text="", id="x", metadata={"url": url}))
            decisions[url] = "keep" if result is True else result[1]
        best = min(best, time.perf_counter() - start)
    return {"load_s": load_s, "rss_mb": rss_mb, "us_per_url": best / len(urls) * 1e6, "decisions": decisions}


def run_child(impl: str, cache: str, args, host_word_rules: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--child", impl, "--cache", cache, "--truth", str(args.truth),
           "--repeat", str(args.repeat)] + (["--host-word-rules"] if host_word_rules else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--truth", type=Path, default=DEFAULT_TRUTH)
    parser.add_argument("--repeat", type=int, default=3, help="passes over the URLs; the best is reported")
    parser.add_argument("--child", choices=["datatrove", "ccpipe"], help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument("--host-word-rules", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.cache, str(args.truth), args.repeat, args.host_word_rules)))
        return

    rows = [json.loads(line) for line in args.truth.open()]
    results = {}
    with tempfile.TemporaryDirectory() as dt_cache, tempfile.TemporaryDirectory() as cc_cache:
        for impl, cache in (("datatrove", dt_cache), ("ccpipe", cc_cache)):
            for state in ("cold", "warm"):
                results[impl, state] = run_child(impl, cache, args)
                r = results[impl, state]
                print(f"{impl:9s} {state}: load {r['load_s']:6.2f} s  RSS +{r['rss_mb']:6.1f} MB  "
                      f"filter {r['us_per_url']:6.1f} us/URL", flush=True)
        cache_mb = sum(p.stat().st_size for p in Path(cc_cache).iterdir()) / 2**20
        print(f"ccpipe cache: {cache_mb:.1f} MB in {len(list(Path(cc_cache).iterdir()))} files")
        full = run_child("ccpipe", cc_cache, args, host_word_rules=True)["decisions"]

    fineweb, ours = results["datatrove", "warm"]["decisions"], results["ccpipe", "warm"]["decisions"]
    urls = [r["url"] for r in rows]
    same_drop = sum((fineweb[u] == "keep") == (ours[u] == "keep") for u in urls)
    same_reason = sum(SAME_RULE.get(fineweb[u], fineweb[u]) == ours[u] for u in urls)
    print(f"agreement with FineWeb rules only (host_word_rules=False): same keep/drop on {same_drop}/{len(urls)}"
          f" URLs, same reason on {same_reason}/{len(urls)}")
    for u in urls:
        if (fineweb[u] == "keep") != (ours[u] == "keep"):
            print(f"  differs: datatrove={fineweb[u]} ccpipe={ours[u]} {u}")
    by_kind = {}
    for r in rows:
        by_kind.setdefault(r["kind"], []).append(full[r["url"]] != "keep")
    print("ccpipe with host_word_rules=True, dropped per kind:")
    for kind, dropped in sorted(by_kind.items()):
        print(f"  {kind:20s} {sum(dropped):4d}/{len(dropped)}")
    word = [r["url"] for r in rows if r["kind"] == "blocklisted_word"]
    print(f"blocklisted_word caught: FineWeb {sum(fineweb[u] != 'keep' for u in word)}/{len(word)}, "
          f"ccpipe {sum(full[u] != 'keep' for u in word)}/{len(word)}")


if __name__ == "__main__":
    main()
