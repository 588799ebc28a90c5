"""The steps FineWeb-2 adds for languages other than English: MinHash shingles cut by the language's word
segmenter, and its final touches (ftfy's encoding fixes, trafilatura's table artifacts).

English documents go through each step untouched, so a run that keeps only English is FineWeb's.

- `LanguageMinhashSignature`: datatrove's MinhashDedupSignature, with FineWeb-2's per-language shingles
  (`MinhashDedupSignature(language=lang_script)` in fineweb-2-pipeline.py): a Chinese text has no spaces, and
  English word splitting would make each sentence one "word". FineWeb-2 deduplicates each language apart; here
  one signature step sees every kept language, so each profile's name is mixed into its shingles' hashes: two
  documents of different languages share no shingle and never meet in a bucket (64-bit hashes: a collision
  has odds ~1e-19 a pair), which is deduplication within each language. English shingles are datatrove's own.
- `FixEncoding` (before PII) and `RemoveTableLines` (after), FineWeb-2's step 6: datatrove's FTFYFormatter,
  and SymbolLinesFormatter(symbols_to_remove=["|"], replace_char="\\n") for the lines of `|` that trafilatura
  leaves where a table was.
"""

from __future__ import annotations

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import MinhashDedupSignature
from datatrove.pipeline.formatters import FTFYFormatter, SymbolLinesFormatter
from datatrove.utils.text import ngrams, simplify_text
from datatrove.utils.word_tokenizers import load_word_tokenizer


class LanguageMinhashSignature(MinhashDedupSignature):
    """MinHash signatures with each document's shingles cut by its language's word segmenter.

    `segmenters`: language label -> (profile name, datatrove word tokenizer key); labels not in it (English)
    get datatrove's English shingles, bit for bit.
    """

    stage = "dedup"

    def __init__(self, output_folder, config, segmenters: dict[str, tuple[str, str]]):
        super().__init__(output_folder, config=config)
        self.segmenters = dict(segmenters)
        self._segmenter: tuple[str, str] | None = None  # the document being signed

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1):
        def tracked():
            # datatrove's loop calls get_shingles(doc.text) right after taking each document
            for doc in data:
                self._segmenter = self.segmenters.get(doc.metadata.get("language"))
                yield doc

        return super().run(tracked(), rank, world_size)

    def get_shingles(self, text: str) -> np.ndarray:
        if self._segmenter is None:
            return super().get_shingles(text)
        profile, tokenizer = self._segmenter
        words = load_word_tokenizer(tokenizer).word_tokenize(simplify_text(text, self.config.norm_config))
        prefix = profile + "\x00"
        return np.fromiter(
            [self._hash_func(prefix + " ".join(gram)) for gram in ngrams(words, self.config.n_grams)],
            dtype=np.uint64,
        ).reshape((-1, 1))


class _ForLanguages(PipelineStep):
    type = "✂️ - FORMAT"

    def __init__(self, languages):
        super().__init__()
        self.languages = frozenset(languages)
        self._formatter = None

    def formatter(self):
        raise NotImplementedError

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            if doc.metadata.get("language") in self.languages:
                if self._formatter is None:
                    self._formatter = self.formatter()
                with self.track_time():
                    text = self._formatter.format(doc.text)
                if text != doc.text:
                    self.stat_update("changed")
                    doc.text = text
            yield doc


class FixEncoding(_ForLanguages):
    """ftfy's encoding fixes (datatrove's FTFYFormatter, its defaults: no width or quote normalization)."""

    name = "😎 FTFY (FineWeb-2)"

    def formatter(self):
        return FTFYFormatter()


class RemoveTableLines(_ForLanguages):
    """Lines made only of `|` (and spaces), trafilatura's table borders: each run becomes one blank line."""

    name = "⚞ Table lines (FineWeb-2)"

    def formatter(self):
        return SymbolLinesFormatter(symbols_to_remove=["|"], replace_char="\n")
