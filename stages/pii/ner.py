"""Named-entity recognition for the PII stage (optional, off by default): `pii.ner`.

    pii:
      ner:
        model: en_core_web_sm          # an installed spaCy pipeline, or a path to one (spacy.load)
        entities: [PERSON]             # presidio entity types to remove

The pipeline must have an `ner` component. presidio's `SpacyRecognizer` turns its entities into findings:
spaCy labels map to presidio types with presidio's table (PER/PERSON -> PERSON, ORG -> ORGANIZATION,
GPE/LOC -> LOCATION, ...), and a label that is already a presidio type maps to itself. Findings score 0.85
(presidio's default for spaCy) and are resolved against the pattern findings as usual; names become
`Jane Doe` / `John Doe` (by a hash of the value), other types `<TYPE>` tags.

FineWeb does not remove names, hence off by default. The cost: every document in the model's language goes
through the spaCy pipeline in full (no line pre-filter can tell where a name is), so the stage is bound by
the model's speed instead of presidio's regexes (bench/bench_ner.py measures both). Nothing is downloaded:
a name must be an installed package.
"""

from __future__ import annotations

import hashlib
import os
from importlib.metadata import PackageNotFoundError, version


def check_model(model: str) -> None:
    """A cheap early check: `model` is a folder or an installed package (spacy.load is left to the workers)."""
    import spacy

    if not os.path.isdir(model) and not spacy.util.is_package(model):
        raise ValueError(f"pii.ner.model {model!r}: not a folder and not an installed spaCy pipeline package "
                         "(ccpipe downloads no models)")


def load_pipeline(model: str):
    """spacy.load(model), with a one-line error naming the model; the pipeline must have an `ner` component."""
    import spacy

    try:
        nlp = spacy.load(model)
    except OSError as exc:
        raise ValueError(f"pii.ner.model {model!r}: not an installed spaCy pipeline or a path to one "
                         f"(spaCy: {str(exc).splitlines()[0]})") from exc
    if "ner" not in nlp.pipe_names:
        raise ValueError(f"pii.ner.model {model!r}: has no 'ner' component (pipes: {nlp.pipe_names})")
    return nlp


def ner_components(model: str, entities: tuple[str, ...], language: str):
    """The spaCy pipeline, presidio's SpacyRecognizer for `entities` and the NER configuration mapping the
    model's labels to presidio types."""
    from presidio_analyzer.nlp_engine import NerModelConfiguration
    from presidio_analyzer.nlp_engine.ner_model_configuration import (
        MODEL_TO_PRESIDIO_ENTITY_MAPPING,
    )
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    nlp = load_pipeline(model)
    if nlp.lang != language:
        raise ValueError(f"pii.ner.model {model!r}: a {nlp.lang!r} pipeline, but the PII stage's language is "
                         f"{language!r}")
    labels = nlp.get_pipe("ner").labels
    mapping = {**MODEL_TO_PRESIDIO_ENTITY_MAPPING, **{e: e for e in entities}}
    mapping.update({label: mapping.get(label, label) for label in labels})  # unknown labels keep their name
    config = NerModelConfiguration(model_to_presidio_entity_mapping=mapping)
    recognizer = SpacyRecognizer(supported_language=language, supported_entities=list(entities))
    return nlp, recognizer, config


def ner_provenance(model: str, entities: tuple[str, ...]) -> dict:
    """What identifies the model: its package version, or for a path the sha256 of its files."""
    info = {"model": model, "entities": list(entities)}
    if os.path.isdir(model):
        digest = hashlib.sha256()
        for root, dirs, files in sorted(os.walk(model)):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                digest.update(os.path.relpath(path, model).encode() + b"\0")
                with open(path, "rb") as f:
                    digest.update(hashlib.file_digest(f, "sha256").digest())
        info["sha256"] = digest.hexdigest()
    else:
        try:
            info["version"] = version(model)
        except PackageNotFoundError:
            info["version"] = None
    return info
