"""`ccpipe classifier train`: a fastText quality classifier from the user's positive examples against a run's
kept documents (or other files), as DCLM trained its filter (`__label__hq` vs `__label__cc`, bigrams).

Reproducible: the examples are read in the order given, shuffled with `seed`, a held-out share is set aside
by position, and fastText trains on one thread with the same seed, so the same inputs give the same
`model.bin`, byte for byte. Inputs: JSONL (one object a line with a `text` field) or parquet (a `text`
column: a ccpipe run's `parquet/` output, FineWeb's, DCLM's); a ccpipe run directory stands for the
documents it kept (`RUN/parquet/**/*.parquet`).

DCLM's settings (their `fasttext_oh_eli5`): `-dim 256 -epoch 3 -lr 0.1 -wordNgrams 2`; defaults here are
those, with the held-out share (10 %) reported as precision and recall of the positive label at 0.5.
"""

from __future__ import annotations

import json
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.core.layout import RunLayout
from stages.filters.classifier import one_line
from stages.utils.io import atomic_path


class TrainError(ValueError):
    """An input that cannot be read, no examples, or no fastText trainer: the message says which."""


@dataclass(frozen=True)
class TrainSettings:
    label: str = "hq"  # the positive label; negatives are `cc`, as DCLM's
    negative_label: str = "cc"
    seed: int = 0
    holdout: float = 0.1
    epoch: int = 3
    dim: int = 256
    lr: float = 0.1
    word_ngrams: int = 2
    min_count: int = 1
    bucket: int = 2_000_000  # hash buckets of the word n-grams: the model holds bucket x dim floats (2 GB at 256)


def read_texts(source: str | Path) -> list[str]:
    """The non-empty texts of a JSONL or parquet file, or of the documents a ccpipe run directory kept."""
    path = Path(source)
    if path.is_dir():
        layout = RunLayout(path)
        files = sorted(layout.parquet.rglob("*.parquet")) if layout.parquet.is_dir() else []
        if not files:
            raise TrainError(f"{source}: a directory without {layout.parquet}/**/*.parquet (not a finished ccpipe run)")
        return [t for f in files for t in _parquet_texts(f)]
    if not path.is_file():
        raise TrainError(f"{source}: no such file or run directory")
    if path.suffix == ".parquet":
        return _parquet_texts(path)
    texts = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                text = json.loads(line)["text"]
            except (ValueError, KeyError, TypeError) as exc:
                raise TrainError(f"{source}: line {n}: expected a JSON object with a 'text' field") from exc
            if isinstance(text, str) and text.strip():
                texts.append(text)
    return texts


def _parquet_texts(path: Path) -> list[str]:
    try:
        column = pq.read_table(path, columns=["text"]).column("text")
    except (KeyError, ValueError, OSError) as exc:  # no `text` column, not parquet
        raise TrainError(f"{path}: cannot read a 'text' column ({str(exc).splitlines()[0][:80]})") from None
    return [t for t in column.to_pylist() if isinstance(t, str) and t.strip()]


def split(positive: list[str], negative: list[str], settings: TrainSettings) -> tuple[list, list]:
    """(train, held out) as [(label, text)], shuffled with the seed; the held-out share of each class."""
    rng = random.Random(settings.seed)
    train, held = [], []
    for label, texts in ((settings.label, positive), (settings.negative_label, negative)):
        examples = [(label, t) for t in texts]
        rng.shuffle(examples)
        n_held = round(len(examples) * settings.holdout)
        held += examples[:n_held]
        train += examples[n_held:]
    rng.shuffle(train)
    return train, held


def _trainer():
    import fasttext  # the full fastText (fasttext-numpy2-wheel) has the trainer; fasttext-predict has not

    if not hasattr(fasttext, "train_supervised"):
        raise TrainError("training needs the full fastText: pip install 'ccpipe[classifier]', then "
                         "pip install --force-reinstall --no-deps fasttext-numpy2-wheel==0.9.2 (fasttext-predict, "
                         "which only predicts, writes the same `fasttext` module and may have overwritten it)")
    return fasttext


def train(positive_sources: list[str], negative_sources: list[str], output: str | Path,
          settings: TrainSettings = TrainSettings()) -> dict:
    """Train, write `output` atomically and return the counts and held-out precision/recall."""
    fasttext = _trainer()
    positive = [t for s in positive_sources for t in read_texts(s)]
    negative = [t for s in negative_sources for t in read_texts(s)]
    for name, texts, sources in (("--positive", positive, positive_sources),
                                 ("--negative", negative, negative_sources)):
        if not texts:
            raise TrainError(f"{name}: no text found in {', '.join(map(str, sources))}")
    train_set, held = split(positive, negative, settings)
    with tempfile.TemporaryDirectory(prefix="ccpipe-classifier-") as tmp:
        data = Path(tmp) / "train.txt"  # fastText reads its examples from a file, one `__label__X text` a line
        data.write_text("".join(f"__label__{label} {one_line(text)}\n" for label, text in train_set), encoding="utf-8")
        model = fasttext.train_supervised(
            input=str(data), seed=settings.seed, thread=1, epoch=settings.epoch, dim=settings.dim, lr=settings.lr,
            wordNgrams=settings.word_ngrams, minCount=settings.min_count, bucket=settings.bucket, verbose=0)
    with atomic_path(output) as tmp_model:
        model.save_model(str(tmp_model))
    return {"train": len(train_set), "held_out": len(held), "positive": len(positive), "negative": len(negative),
            **held_out_scores(model, held, settings.label)}


def held_out_scores(model, held: list[tuple[str, str]], label: str, threshold: float = 0.5) -> dict:
    """Precision and recall of `label` on the held-out examples (score >= threshold counts as positive)."""
    tp = fp = fn = 0
    for truth, text in held:
        labels, scores = model.predict(one_line(text), k=-1)
        score = next((float(s) for lab, s in zip(labels, scores) if lab == f"__label__{label}"), 0.0)
        predicted = score >= threshold
        tp += predicted and truth == label
        fp += predicted and truth != label
        fn += not predicted and truth == label
    return {"precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None}
