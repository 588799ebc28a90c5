"""The pipeline's steps, grouped by role as datatrove's `pipeline/` is; importing them changes nothing.

    readers/     WARC and WET records -> documents (reader, payload decoding, WET)
    extractors/  HTML -> text (trafilatura, in a child process)
    filters/     URL blocklist, language ID, quality filters
    formatters/  text rewrites for languages other than English (FineWeb-2's ftfy and table lines)
    dedup/       MinHash deduplication
    pii/         PII scrubbing (presidio, Chinese recognizers, NER)
    tokens/      BPE tokenization and llm.c's .bin format
    writers/     parquet, the base phase's JSONL and the decision ledger
    recipes/     FineWeb's own steps and FineWeb-2's per-language profiles
    text/        word splitting and n-gram counts, shared by the quality filters and dedup
    utils/       file I/O, remote input, loading once per process, the patches of other libraries
"""
