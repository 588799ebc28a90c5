"""Benchmark the tokenize stage against raw tiktoken on the same texts, shard writing included.

Baseline: `encode_ordinary_batch(texts, num_threads=1)` of tiktoken's GPT-2 encoding (or `--tokenizer`'s),
nothing else. Ours: the `Tokenize` step (batches, per-document `<|endoftext|>`, uint16 token files, or uint32
above 65,536 ids, datatrove stats) and then `write_shards` (the llm.c `.bin` shards), timed together. The
token files are checked to hold exactly the baseline's tokens, each document preceded by `<|endoftext|>`.

Texts: the scrapinghub-aeb gold article texts (181 real articles, ~800k characters), repeated `--copies`
times so that one pass takes a few seconds.

    .venv/bin/python bench/bench_tokenize.py --repeat 3
    .venv/bin/python bench/bench_tokenize.py --tokenizer ../shared/corpus/tokenizers/cl100k_base/cl100k_base.tiktoken
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from datatrove.data import Document

from pipeline.finalize.shards import write_shards
from stages.tokens import binformat
from stages.tokens.tokenize import BPETokenizer, Tokenize


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Tokenize stage (+ .bin shards) vs raw tiktoken encode_ordinary_batch.",
                                     epilog="example: .venv/bin/python bench/bench_tokenize.py --repeat 3")
    parser.add_argument("--corpus", type=Path,
                        default=Path(os.environ.get("CCPIPE_CORPUS", ROOT.parent / "shared" / "corpus")))
    parser.add_argument("--copies", type=int, default=8, help="times the article set is repeated")
    parser.add_argument("--repeat", type=int, default=3, help="passes per measurement; the best is kept")
    parser.add_argument("--tokenizer", help="a .tiktoken file (e.g. tokenizers/cl100k_base/cl100k_base.tiktoken: "
                        "32-bit token files and shards); default the corpus's gpt2.tiktoken")
    args = parser.parse_args(argv)

    with open(args.corpus / "extraction" / "scrapinghub-aeb" / "manifest.jsonl", encoding="utf-8") as f:
        texts = [t for t in (json.loads(line).get("gold_text") for line in f) if t] * args.copies
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    tok = BPETokenizer(args.tokenizer or str(args.corpus / "tokenizers" / "gpt2" / "gpt2.tiktoken"))
    fmt = tok.bin_format
    token_file = os.path.join("en", binformat.token_file_name("00000", fmt))
    enc = tok._impl
    enc.encode_ordinary_batch(texts[:10], num_threads=1)  # warm up

    raw_best, stage_best = float("inf"), float("inf")
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        expected = enc.encode_ordinary_batch(texts, num_threads=1)
        raw_best = min(raw_best, time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as tmp:
            docs = [Document(text=t, id=str(i), metadata={"language": "en"}) for i, t in enumerate(texts)]
            step = Tokenize(tok, os.path.join(tmp, "tokens"))
            t0 = time.perf_counter()
            for _doc in step.run(iter(docs), rank=0):
                pass
            write_shards([os.path.join(tmp, "tokens", token_file)], os.path.join(tmp, "bin"), "en", 100_000_000)
            stage_best = min(stage_best, time.perf_counter() - t0)
            got = np.fromfile(os.path.join(tmp, "tokens", token_file), dtype=fmt.dtype)
            want = np.concatenate([np.array([tok.eot] + ids, dtype=fmt.dtype) for ids in expected])
            if not np.array_equal(got, want):
                print("TOKENS DIFFER from encode_ordinary_batch")
                return 1
    n_tokens = sum(map(len, expected))
    print(f"{len(texts)} documents, {mb:.1f} MB, {n_tokens:,} tokens ({tok.name}: {fmt.describe()}); "
          f"best of {args.repeat}")
    print(f"  raw tiktoken encode_ordinary_batch : {raw_best:6.2f} s  {mb / raw_best:5.1f} MB/s")
    print(f"  Tokenize step + .bin shards        : {stage_best:6.2f} s  {mb / stage_best:5.1f} MB/s")
    print(f"  stage speed / raw speed            : {raw_best / stage_best:.2f}x  (target >= 0.8x); tokens identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
