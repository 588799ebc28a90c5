"""A small spaCy NER model trained from ../shared/corpus/pii (presidio-research's labelled sentences), for the
NER tests and bench/bench_ner.py. A real model (spaCy's transition-based NER on a hash-embedding CNN), trained
here because no pretrained spaCy pipeline can be downloaded; shrunk (width 64, depth 2) to train in ~20 s.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SYNTH = Path("pii") / "presidio-research_synth_dataset_v2.json"

MODEL = {
    "@architectures": "spacy.TransitionBasedParser.v2", "state_type": "ner", "extra_state_tokens": False,
    "hidden_width": 64, "maxout_pieces": 2, "use_upper": True, "nO": None,
    "tok2vec": {"@architectures": "spacy.HashEmbedCNN.v2", "pretrained_vectors": None, "width": 64, "depth": 2,
                "embed_size": 2000, "window_size": 1, "maxout_pieces": 3, "subword_features": True},
}


def load_sentences(corpus: Path) -> list[dict]:
    """[{"text", "spans": [(start, end, label)]}], in the file's order."""
    with open(corpus / SYNTH, encoding="utf-8") as f:
        rows = json.load(f)
    return [{"text": r["full_text"],
             "spans": [(s["start_position"], s["end_position"], s["entity_type"]) for s in r["spans"]]}
            for r in rows]


def split(sentences: list[dict], held_out: float = 0.2) -> tuple[list[dict], list[dict]]:
    """Every fifth sentence is held out (a fixed, order-based split)."""
    step = round(1 / held_out)
    return ([s for i, s in enumerate(sentences) if i % step], [s for i, s in enumerate(sentences) if not i % step])


def train(sentences: list[dict], out_dir: Path, labels=("PERSON",), epochs: int = 8, seed: int = 0) -> Path:
    """Train an English NER pipeline on `sentences` for `labels`; saves it to `out_dir` (spacy.load-able)."""
    import spacy
    from spacy.training import Example
    from spacy.util import fix_random_seed, minibatch

    fix_random_seed(seed)
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("ner", config={"model": MODEL})
    for label in labels:
        ner.add_label(label)
    examples = []
    for s in sentences:
        doc = nlp.make_doc(s["text"])
        ents = [(a, b, lab) for a, b, lab in s["spans"] if lab in labels]
        spans = [doc.char_span(a, b, label=lab, alignment_mode="expand") for a, b, lab in ents]
        spans = spacy.util.filter_spans([sp for sp in spans if sp is not None])
        examples.append(Example.from_dict(doc, {"entities": [(sp.start_char, sp.end_char, sp.label_)
                                                             for sp in spans]}))
    optimizer = nlp.initialize(lambda: examples)
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(examples)
        for batch in minibatch(examples, size=16):
            nlp.update(batch, drop=0.1, sgd=optimizer)
    nlp.to_disk(out_dir)
    return out_dir


def score(found: list[list[tuple[int, int]]], gold: list[list[tuple[int, int]]]) -> tuple[float, float]:
    """(recall, precision) of spans per sentence: a gold span counts as found, and a found span as right,
    when it overlaps one on the other side."""
    def overlaps(a, b):
        return a[0] < b[1] and b[0] < a[1]

    hit = sum(any(overlaps(g, f) for f in fs) for fs, gs in zip(found, gold) for g in gs)
    right = sum(any(overlaps(f, g) for g in gs) for fs, gs in zip(found, gold) for f in fs)
    n_gold, n_found = sum(map(len, gold)), sum(map(len, found))
    return hit / max(1, n_gold), right / max(1, n_found)
