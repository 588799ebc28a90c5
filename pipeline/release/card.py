"""The dataset card (README.md of a release): Hugging Face's format, rendered from MANIFEST.json alone.

A pure function of the manifest, so `release verify` checks their agreement by rendering it again.
"""

from __future__ import annotations

from huggingface_hub import DatasetCardData

from stages.tokens import binformat

CARD_VERSION = 3  # bump when the card's wording changes: verify then checks older cards by front matter only
SPLITS = ("train", "validation")


def size_category(n: int) -> str:
    """Hugging Face's `size_categories` bucket for n rows."""
    if n < 1000:
        return "n<1K"
    bounds = ["1K", "10K", "100K", "1M", "10M", "100M", "1B", "10B", "100B", "1T"]
    for i in range(len(bounds) - 1):
        if n < 10 ** (i + 4):
            return f"{bounds[i]}<n<{bounds[i + 1]}"
    return "n>1T"



CARD = """---
{front}
---

# {name} {version}

{documents:,} documents and {tokens:,} tokens of web text ({languages}) from {n_inputs} Common Crawl WARC file(s)
({dumps}), built by ccpipe {ccpipe} with FineWeb's recipe: {records_total:,} WARC response records read,
{kept:,} kept ({kept_pct:.1f}%).

## Files

| language | split | documents | tokens | parquet files | .bin files |
|---|---|---:|---:|---:|---:|
{files_table}

{n_files} files, {bytes:,} bytes. `MANIFEST.json` lists each with its size, sha256, documents and tokens;
`ccpipe release verify .` recomputes them all. Tokens count one `<|endoftext|>` per document, as in the `.bin` files.

## Loading

```python
from datasets import load_dataset

ds = load_dataset("parquet", data_files={{"train": "data/{lang}/train-*.parquet",
                                          "validation": "data/{lang}/validation-*.parquet"}})
```

{bin_format}
`ccpipe train-smoke .` trains a small GPT on them.

## Processing steps

| step | in | dropped | top reasons |
|---|---:|---:|---|
{funnel_table}
| kept | {kept:,} | | {tokens:,} tokens |

{steps}

## Train/validation split

By document hash, {validation_fraction:g} of documents to validation: `{rule}`. Identical texts are always on
the same side, and a document keeps its side in every release built this way. Validation is `.bin` shard 0
(`*_val_000000.bin`); training shards hold {shard_tokens:,} tokens each (a document may continue in the next
shard); parquet files hold at most {parquet_documents:,} rows.

## Schema

| column | type |
|---|---|
{schema_table}

`text` is the extracted, PII-scrubbed text; `id` the WARC record id; `date` the crawl date; `language_score`
fastText's score; `token_count` the BPE tokens of `text` (without `<|endoftext|>`).

## Personal information

{pii_text} Only these patterns are handled; see the limitations below.

## Known limitations

{limitations}

## Provenance

| component | version | sha256 |
|---|---|---|
{provenance_table}

A package's sha256 is that of the code that built this release (ccpipe: its source files; a wheel: its
RECORD, which lists every installed file's hash), shown where it is the version the run used.
Resolved config sha256 `{config_sha256}` (in MANIFEST.json, with the input list and the full funnel).
"""

STEP_TEXT = {
    "reader": ("**Read WARC records.** HTML responses with status 200 are read; other payloads, other statuses, "
               "payloads over {max_payload_bytes:,} bytes and damaged records are counted and skipped."),
    "blocklist": ("**URL blocklist.** UT1's adult list and FineWeb's banned words in the URL, plus ccpipe's "
                  "host-name word rules and allowlist (lists and checksums under Provenance)."),
    "extract": ("**Text extraction** with trafilatura {trafilatura} (favor_precision={favor_precision}, "
                "{timeout:g} s limit per page)."),
    "langid": "**Language identification** with fastText lid.176: kept {languages} at a score of at least {threshold}.",
    "quality": "**Quality filters**, FineWeb's thresholds: {quality}.",
    "dedup": ("**MinHash deduplication** over the whole build: {n_grams}-grams, {buckets} buckets x "
              "{hashes_per_bucket} hashes (seed {seed}); one document per cluster of near-duplicates is kept."),
    "pii": ("**PII scrubbing** (presidio regex recognizers): {entities} replaced by {replacement} values. "
            "Replacements: {pii}."),
    "tokenize": ("**Tokenization** with {tokenizer} ({n_vocab:,} tokens, sha256 `{vocab_sha}`); every document "
                 "is preceded by `<|endoftext|>` ({eot}) in the `.bin` files."),
}

LIMITATIONS = [
    ("Language identification is fastText lid.176 on whole documents: short and mixed-language pages are "
     "misclassified more often, and pages mostly in another language may keep some passages in it."),
    ("FineWeb's quality filters are heuristics tuned on English web text; they drop some good pages (lists, "
     "tables, code) and keep some spam."),
    "Deduplication covers only the documents of this build, not other dumps or other releases.",
    ("PII scrubbing finds patterns (e-mail, phone, IP, card, IBAN, SSN, Chinese resident id); names, postal "
     "addresses and other personal data are not removed, and surrogate values may resemble real ones."),
    "The URL blocklist catches listed domains and URL words only: adult or toxic content on other sites remains.",
    "`file_path` is the WARC's URL as given to `ccpipe run`; for local inputs only its file name is kept.",
    ("The pages are Common Crawl captures: subject to Common Crawl's terms of use; their copyright stays with "
     "their authors."),
]


def _fmt_counts(counts: dict, top: int | None = None) -> str:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return ", ".join(f"{k} {v:,}" for k, v in items) or "none"


def _ner_entities(pii: dict) -> str:
    """`pii.ner` (off by default): what the card adds to the scrubbed entity types."""
    ner = pii.get("ner") or {}
    return f", and {', '.join(ner['entities'])} found by the spaCy NER model `{ner['model']}`" if ner.get("model") else ""


def _step_values(m: dict) -> dict:
    c, tok = m["config"], m["provenance"].get("tokenizer", {})
    # a filter is on unless false; a mapping changes its thresholds (`gopher_quality: {min_doc_words: 100}`)
    on = [name + (f" {c['quality'][name]}" if isinstance(c["quality"].get(name), dict) and c["quality"][name] else "")
          for name in ("gopher_repetition", "gopher_quality", "c4", "fineweb") if c["quality"].get(name) is not False]
    classifier = c["quality"].get("classifier") or {}
    if classifier.get("model"):
        rule = (f"top {classifier['top_fraction']} per language" if classifier.get("top_fraction")
                else f"score >= {classifier.get('threshold')}")
        on.append(f"fastText quality classifier ({rule})")
    # languages with a FineWeb-2 profile were held against its score and filtered by its thresholds
    own = (m["provenance"].get("LanguageID") or {}).get("thresholds") or {}
    threshold = ", ".join(f"{own.get(lang, c['langid']['threshold'])} ({lang})" for lang in c["langid"]["languages"]) \
        if own else c["langid"]["threshold"]
    quality = ", ".join(on) or "none"
    if own:
        quality += f"; FineWeb-2's per-language profiles (stages/recipes/profiles) for {', '.join(own)}, without C4"
    return {**c["input"], **c["extract"], **c["dedup"], "threshold": threshold,
            "languages": ", ".join(c["langid"]["languages"]), "quality": quality,
            "entities": ", ".join(c["pii"]["entities"]) + _ner_entities(c["pii"]),
            "replacement": c["pii"]["replacement"],
            "pii": _fmt_counts(m["funnel"].get("pii", {})), "trafilatura": m["versions"].get("trafilatura"),
            "tokenizer": tok.get("name", c["tokenizer"]["name"]), "n_vocab": tok.get("n_vocab", 0),
            "vocab_sha": tok.get("sha256", "?"), "eot": tok.get("eot", "?")}


def _card_tables(m: dict) -> dict:
    t, f = m["totals"], m["funnel"]
    files = []
    for lang in sorted(t["by_language"]):
        for split in SPLITS:
            g = t["by_language"][lang].get(split, {})
            n = [sum(1 for x in m["files"] if (x["language"], x["split"], x["format"]) == (lang, split, fmt))
                 for fmt in ("parquet", "bin")]
            files.append(f"| {lang} | {split} | {g.get('documents', 0):,} | {g.get('tokens', 0):,} | {n[0]} | {n[1]} |")
    values = _step_values(m)
    steps = []
    for i, s in enumerate(f["stages"], start=1):
        text = STEP_TEXT.get(s["stage"], f"**{s['stage']}**.").format(**values)
        dropped = f" Dropped {s['dropped']:,} of {s['in']:,}: {_fmt_counts(s['reasons'])}." if s["dropped"] else ""
        steps.append(f"{i}. {text}{dropped}")
    limitations = list(LIMITATIONS)
    if f.get("errors"):
        names = "; ".join(f"`{e['path']}`" for e in f["errors"])
        limitations.append(f"{len(f['errors'])} input file(s) could not be read completely: {names}.")
    if t["documents"] < 10_000:
        limitations.append(f"This release is small ({t['documents']:,} documents): for testing a pipeline, "
                           "not for training.")
    components = [item for _, value in sorted(m["provenance"].items())
                  for item in (value if isinstance(value, list) else [value])
                  if isinstance(item, dict) and item.get("sha256")]
    return {
        "files_table": "\n".join(files),
        "funnel_table": "\n".join(f"| {s['stage']} | {s['in']:,} | {s['dropped']:,} | {_fmt_counts(s['reasons'], 3)} |"
                                  for s in f["stages"]),
        "steps": "\n".join(steps),
        "pii_text": STEP_TEXT["pii"].format(**values),
        "schema_table": "\n".join(f"| `{c['name']}` | {c['type']} |" for c in m["schema"]),
        "limitations": "\n".join(f"- {line}" for line in limitations),
        "provenance_table": "\n".join([_package_row(m, pkg, ver) for pkg, ver in sorted(m["versions"].items())]
                                      + [f"| {c['name']} | {c.get('version', '')} | `{c['sha256']}` |"
                                         for c in components]),
    }


def _package_row(m: dict, package: str, version: str) -> str:
    """A package the run used; its checksum when the release was built with the same version."""
    built = m["built_with"].get(package, {})
    sha = f"`{built['sha256']}`" if built.get("version") == version and built.get("sha256") else ""
    return f"| {package} | {version} | {sha} |"


def card_front_matter(m: dict) -> DatasetCardData:
    """The card's YAML front matter: what the Hugging Face Hub reads (license, languages, size, data files),
    as huggingface_hub's own card data (`.to_yaml()`, `.to_dict()`)."""
    langs = sorted(m["totals"]["by_language"])
    return DatasetCardData(
        license=m["license"],
        language=langs,
        size_categories=[size_category(m["totals"]["documents"])],
        task_categories=["text-generation"],
        pretty_name=f"{m['name']} {m['version']}",
        configs=[{"config_name": lang, **({"default": True} if i == 0 else {}),
                  "data_files": [{"split": s, "path": f"data/{lang}/{s}-*.parquet"} for s in SPLITS]}
                 for i, lang in enumerate(langs)],
    )


def _bin_format(m: dict, lang: str) -> str:
    """Which llm.c format the shards are in: uint16 for GPT-2-sized vocabularies, uint32 above (stages/tokens/binformat.py)."""
    n_vocab = m["provenance"].get("tokenizer", {}).get("n_vocab", 0)
    if binformat.for_vocab(n_vocab) is binformat.GPT2:
        return ("The `.bin` files are llm.c's format (a header of 256 int32: 20240520, 1, token count; then uint16 "
                f"tokens):\n`train_gpt2cu -i 'bin/{lang}_train_*.bin' -j 'bin/{lang}_val_*.bin'`, or "
                "`pipeline.train.loader.BinLoader` in Python;")
    return (f"The `.bin` files are llm.c's 32-bit format for vocabularies above 65,536 ids ({n_vocab:,} here): "
            "`\"llama-3\"` in llm.c's `dev/data/data_common.py`,\na header of 256 int32: 20240801, 7, token count; "
            "then uint32 tokens. llm.c's `train_llama3.py` and `pipeline.train.loader.BinLoader` read them (llm.c's C "
            "`dataloader.h`, behind `train_gpt2cu`, reads only the uint16 format);")


def render_card(m: dict) -> str:
    """README.md, a Hugging Face dataset card, from the manifest alone (so `verify` can render it again)."""
    t, f = m["totals"], m["funnel"]
    langs = sorted(t["by_language"])
    return CARD.format(
        front=card_front_matter(m).to_yaml(), name=m["name"],
        version=m["version"], documents=t["documents"], tokens=t["tokens"], languages=", ".join(langs),
        n_inputs=len(m["inputs"]), dumps=", ".join(m["dumps"]) or "dump unknown", ccpipe=m["versions"].get("ccpipe"),
        records_total=f.get("records_total", 0), kept=f.get("kept", 0),
        kept_pct=100 * f.get("kept", 0) / max(1, f.get("records_total", 0)), n_files=t["files"], bytes=t["bytes"],
        lang=langs[0], config_sha256=m["config_sha256"], bin_format=_bin_format(m, langs[0]), **m["split"],
        **_card_tables(m))
