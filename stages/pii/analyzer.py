"""presidio's AnalyzerEngine for the PII stage (stages/pii/scrub.py): blank spaCy pipelines (no model download),
only the recognizers the run asks for, Chinese recognizers beside every language, an optional NER model;
one engine per process."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from stages.pii.ner import ner_components
from stages.pii.zh import PHONE_CONTEXT, PHONE_REGIONS, chinese_recognizers, cn_resident_id_recognizer
from stages.utils.loading import tld_extractor, without_torch

DEFAULT_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_SSN",
                    "CN_RESIDENT_ID")


def _offline_email_recognizer(language: str):
    """presidio's EmailRecognizer checks the domain with tldextract, whose default extractor fetches the
    public suffix list over the network. Use the snapshot bundled with tldextract instead: offline and the
    same answer on every machine."""
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    extract = tld_extractor()

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return extract(pattern_text).fqdn != ""

    return OfflineEmailRecognizer(supported_language=language, name="EmailRecognizer")


def build_analyzer(entities=DEFAULT_ENTITIES, language: str = "en", score_threshold: float = 0.3,
                   ner: tuple | None = None):
    """An AnalyzerEngine on blank spaCy pipelines (no model download) with only the recognizers needed, for
    `language` and for Chinese ("zh"). `ner`: (spaCy pipeline name or path, entity types) for `language`."""
    with without_torch():  # ~200 MB less per worker: no recognizer here uses it
        return _build_analyzer(entities, language, score_threshold, ner)


def _recognizers(entities, language: str) -> list:
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    factories = {
        "EMAIL_ADDRESS": lambda: _offline_email_recognizer(language),
        # presidio's default regions (US, GB, DE, FR, IL, IN, CA, BR) and leniency 1 (VALID) catch national
        # US numbers and every "+CC ..." international number we plant; more regions cost one matcher pass each
        "PHONE_NUMBER": lambda: PhoneRecognizer(supported_language=language, context=PHONE_CONTEXT,
                                                supported_regions=PHONE_REGIONS)
        if language == "zh" else PhoneRecognizer(supported_language=language),
        "IP_ADDRESS": lambda: IpRecognizer(supported_language=language),
        "CREDIT_CARD": lambda: CreditCardRecognizer(supported_language=language),
        "IBAN_CODE": lambda: IbanRecognizer(supported_language=language),
        "US_SSN": lambda: UsSsnRecognizer(supported_language=language),
        "CN_RESIDENT_ID": lambda: cn_resident_id_recognizer(language),
    }
    found = [factories[e]() for e in entities]
    if language == "zh":  # mainland phones and UnionPay cards, for the entities asked for
        found += [r for r in chinese_recognizers() if r.supported_entities[0] in entities]
    return found


_WORDS_ONLY = ("spacy.Tokenizer.v1", "spacy.zh.ChineseTokenizer")  # tokenizers that set no lemma


class BlankPipelines(Mapping):
    """presidio's spaCy pipelines, by language: those given, and a blank one (`spacy.blank`) for each other
    language, built when first asked for. With the line pre-filter presidio is handed empty NLP artifacts
    and never reads a blank pipeline (stages/pii/scrub.py `_empty_artifacts`): building spaCy's English one,
    0.12 s a process (the first pipeline of a process builds spaCy's registry too), went to a check of its
    output on three words."""

    def __init__(self, languages: list[str], given: dict | None = None):
        self.languages = list(languages)
        self.built = dict(given or {})

    def __getitem__(self, lang: str):
        if lang not in self.languages:
            raise KeyError(lang)
        if lang not in self.built:
            import spacy

            with without_torch():
                self.built[lang] = spacy.blank(lang)  # instead of load(): load() would download a model
        return self.built[lang]

    def __iter__(self):
        return iter(self.languages)

    def __len__(self) -> int:
        return len(self.languages)

    def known_empty(self, lang: str) -> bool:
        """Whether the pipeline for `lang` is a blank one, not built yet, that can give no entity and no lemma:
        it has no component, and its tokenizer is spaCy's rule-based `Tokenizer` (it sets only a token's text
        and norm: spaCy refuses special cases with other attributes, E1005) or its Chinese one (words and
        spaces only, whatever the segmenter: spacy/lang/zh). Other tokenizers (Japanese, Korean) may set
        lemmas: those are built and looked at."""
        if lang in self.built:
            return False
        import spacy

        tokenizer = spacy.util.get_lang_class(lang).default_config["nlp"]["tokenizer"]
        return tokenizer.get("@tokenizers") in _WORDS_ONLY


def _build_analyzer(entities, language: str, score_threshold: float, ner: tuple | None):
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    languages = [language] + (["zh"] if language != "zh" else [])
    recognizers = [r for lang in languages for r in _recognizers(entities, lang)]
    given = {}
    ner_config = None
    if ner is not None:
        given[language], recognizer, ner_config = ner_components(ner[0], ner[1], language)
        recognizers.append(recognizer)
    nlp_engine = SpacyNlpEngine(models=[{"lang_code": lang, "model_name": "blank"} for lang in languages],
                                ner_model_configuration=ner_config)
    nlp_engine.nlp = BlankPipelines(languages, given)
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=languages)
    return AnalyzerEngine(nlp_engine=nlp_engine, registry=registry, supported_languages=languages,
                          default_score_threshold=score_threshold)


@functools.lru_cache(maxsize=4)
def shared_analyzer(entities: tuple[str, ...], language: str, score_threshold: float, ner: tuple | None = None):
    """One engine per process (~1.5 s to build), whatever the number of tasks it runs: analyze() keeps no state."""
    return build_analyzer(entities, language, score_threshold, ner)
