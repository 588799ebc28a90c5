"""A trained quality classifier: a fastText supervised model scores each document, a threshold decides.

DCLM's approach (arXiv:2406.11794, "fastText OH-2.5 + ELI5"): a bigram fastText model trained on positive
examples (`__label__hq`) against ordinary crawl text (`__label__cc`); a document's score is the probability
of the positive label on its text as one line, and the top-scoring share is kept. The decision is that of
datatrove's `FastTextClassifierFilter(model, keep_labels=(label, threshold), newline_replacement=" ")` on
whole documents (tests/stages/filters/test_classifier.py checks it on bench's texts).

Signal: every document that reaches the step gets `classifier_score` in `quality_signals` (the ledger's
`quality` map) and `"< threshold"` in `quality_thresholds`, so `ccpipe audit whatif` can re-decide it. A
document scoring under the threshold of its language is dropped as `classifier_low_score`. With a top
fraction instead (FineWeb-Edu and DCLM kept their best-scoring share), the step only scores, and
`ClassifierTopFraction` keeps each language's top share in the final phase, once every score is known.

`ccpipe classifier train` (pipeline/classifier/train.py) makes such a model.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.filters.base_filter import BaseFilter

from stages.utils.io import sha256_file, write_json_atomic
from stages.utils.loading import FastTextModel

SIGNAL = "classifier_score"
REASON = "classifier_low_score"
TOP_FRACTION_REASON = "classifier_top_fraction"


def one_line(text: str) -> str:
    """The text fastText scores: one line (fastText predicts on a single line), as DCLM's `text.replace('\\n', ' ')`."""
    return text.strip().replace("\n", " ")


class QualityClassifier(FastTextModel, BaseFilter):
    """Keeps documents whose probability of `label` is at least `threshold` (or `thresholds[language]`)."""

    name = "🤖 Quality classifier"
    stage = "quality"

    def __init__(self, model_path: str, threshold: float = 0.5, label: str = "hq",
                 thresholds: dict[str, float] | None = None, exclusion_writer=None,
                 top_fraction: float | None = None, scores_folder: str | None = None):
        super().__init__(exclusion_writer)
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"quality classifier model not found: {model_path}")
        self.model_path, self.threshold, self.label = model_path, threshold, label
        self.thresholds = dict(thresholds or {})
        # with a top fraction this step only scores, and writes (language, score) per task to `scores_folder`:
        # `ClassifierTopFraction` decides in the final phase, once every score is known
        self.top_fraction, self.scores_folder = top_fraction, scores_folder
        self._scores: list = []

    def score(self, text: str) -> float:
        """The probability of `label`; 0.0 when the model does not rank it at all."""
        labels, scores = self.model.predict(one_line(text), k=-1)
        return next((float(s) for lab, s in zip(labels, scores) if lab == f"__label__{self.label}"), 0.0)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        score = self.score(doc.text)
        doc.metadata.setdefault("quality_signals", {})[SIGNAL] = score
        if self.top_fraction is not None:
            doc.metadata.setdefault("quality_thresholds", {})[SIGNAL] = f"not in the top {self.top_fraction:g}"
            self._scores.append((doc.metadata.get("language"), score))
            return True
        limit = self.thresholds.get(doc.metadata.get("language"), self.threshold)
        doc.metadata.setdefault("quality_thresholds", {})[SIGNAL] = f"< {limit}"
        if score < limit or not doc.text.strip():  # datatrove's filter drops an empty text too
            doc.metadata["drop_detail"] = f"{SIGNAL} {score:.4f} < {limit}"
            return False, REASON
        return True

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self._scores = []
        yield from super().run(data, rank, world_size)
        if self.scores_folder is not None:  # every document of the task has passed through by now
            write_json_atomic(Path(self.scores_folder) / f"{rank:05d}.json", self._scores)

    def provenance(self) -> dict:
        out = {"name": "fasttext-quality-classifier", "path": self.model_path, "sha256": sha256_file(self.model_path),
               "label": self.label, "threshold": self.threshold}
        if self.thresholds:
            out["thresholds"] = dict(self.thresholds)
        if self.top_fraction is not None:
            out["top_fraction"] = self.top_fraction
        return out


class ClassifierTopFraction(BaseFilter):
    """Final phase, after dedup: keeps, per language, the documents whose `classifier_score` is among the top
    `fraction` of all the documents the classifier scored in the base phase (`scores_folder`, one file per
    task); a tie at the cutoff is kept. Drops `classifier_top_fraction`, stage `classifier`: it decides after
    dedup, so the funnel counts it there."""

    name = "🤖 Quality classifier: top fraction"
    stage = "classifier"

    def __init__(self, scores_folder: str, fraction: float, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.scores_folder, self.fraction = scores_folder, fraction
        self._cutoffs: dict | None = None

    def cutoffs(self) -> dict[str, tuple[float, int]]:
        """{language: (lowest score kept, documents scored)}, from every task's scores."""
        if self._cutoffs is None:
            scores: dict = {}
            for path in sorted(Path(self.scores_folder).glob("*.json")):
                for language, score in json.loads(path.read_text()):
                    scores.setdefault(language, []).append(score)
            self._cutoffs = {lang: (sorted(s, reverse=True)[max(1, math.ceil(self.fraction * len(s))) - 1], len(s))
                             for lang, s in scores.items()}
        return self._cutoffs

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        language = doc.metadata.get("language")
        score = doc.metadata["quality_signals"][SIGNAL]
        cutoff, n = self.cutoffs()[language]
        if score < cutoff:
            doc.metadata["drop_detail"] = (f"{SIGNAL} {score:.4f} < {cutoff:.4f}, the lowest of the top "
                                           f"{self.fraction:g} of {n} {language} documents scored")
            return False, TOP_FRACTION_REASON
        return True
