"""PII scrubbing with presidio-analyzer, FineWeb style: find, replace, keep every document.

FineWeb (datatrove's `PIIFormatter`) replaces emails and *public* IPv4 addresses with surrogates. We do the
same with presidio's recognizers and add phones, credit cards, IBANs, US SSNs and Chinese resident IDs:

    "Mail jane.doe@uni-bonn.de or call +49 30 2019433"
 -> "Mail firstname.lastname@example.org or call 555-0142"      (replacement="surrogate", the default)
 -> "Mail <EMAIL_ADDRESS> or call <PHONE_NUMBER>"                (replacement="tag")

Chinese documents (langid label `zh`, `cmn_Hani`, ...) are analyzed as presidio language "zh", with mainland
phones, UnionPay cards and format-keeping surrogates added (stages/pii/zh.py); in every language, recognizers
see the text with CJK characters masked, so `为11010519491231002X` has its word boundary. Optional NER
(`pii.ner`, names and other spaCy entities): stages/pii/ner.py.

Every document gets `pii` ({TYPE: count}, non-zero counts only) and `pii_spans` ([[TYPE, start, end], ...],
offsets in the text *before* scrubbing) in its metadata. Surrogates are picked by a hash of the value, so
the output is byte-identical in any process and in any document order (no round-robin, no random state).

Speed, with findings identical to `AnalyzerEngine.analyze(text, "en")` on the same engine (bench/bench_pii.py
checks this on real text):
- No recognizer can match across a newline (none of their patterns allows one, and phonenumbers' candidate
  pattern does not either), and each entity's patterns need something a cheap regex finds in the line
  (`LINE_NEEDS` in stages/pii/prefilter.py): `@` for email, four dotted digit groups or a colon for IP, `ddd-dd-dddd` for the one
  SSN pattern that can score >= 0.3, two letters and two digits for an IBAN, 17 digits for a CN id, 4+3
  digits for a card. Phones need a run of phone characters with 5+ digits, or a 4-digit string some
  region validates (`phone_possible`). So we analyze only the lines that pass, asking only for the
  entities they allow; a document with none skips presidio entirely (8x faster than presidio per
  document on the bench corpus's kept texts, findings identical: bench/bench_pii.py).
- On a blank spaCy pipeline every lemma is "", so presidio's context enhancer can never raise a score:
  the spaCy pass is pure cost and we hand analyze() empty NLP artifacts instead (checked when the engine
  is built; with a real lemmatizer we fall back to whole-document analysis).
"""

from __future__ import annotations

import ast
import bisect
import contextlib
import functools
import hashlib
import importlib.util
import ipaddress
import logging
import os
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import version

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from stages.pii.analyzer import DEFAULT_ENTITIES, shared_analyzer
from stages.pii.fields import scrub_url
from stages.pii.ner import check_model, ner_provenance
from stages.pii.prefilter import line_windows, phone_possible
from stages.pii.zh import (
    PHONE_LINE_NEED,
    PHONE_REGIONS,
    cn_resident_id_is_valid,  # noqa: F401 -- re-exported: the checksum is part of this module's interface
    is_chinese,
    keep_format,
    mask_unspaced,
)
from stages.utils.deadline import DEFAULT_RECORD_TIMEOUT, RecordTimeout, record_deadline
from stages.utils.loading import without_torch
from stages.utils.memo import read_memo_file, text_key, write_memo_file
from stages.writers.ledger import drop

logger = logging.getLogger(__name__)

PII_SCRUBBER_VERSION = 3  # bump when findings or replacements change for the same input (not for speed-ups)

REPLACEMENT_STYLES = ("surrogate", "tag")

# FineWeb's surrogates, copied from datatrove's PIIFormatter defaults (a test checks they still match).
# example.com/org are reserved for documentation.
EMAIL_SURROGATES = ("email@example.com", "firstname.lastname@example.org")
# "randomly generated list of ips. they did not respond to ping requests at the time the list was created"
IP_SURROGATES = ("22.214.171.124", "126.96.36.199", "188.8.131.52", "184.108.40.206", "220.127.116.11",
                 "18.104.22.168")
SURROGATES: dict[str, tuple[str, ...]] = {
    "EMAIL_ADDRESS": EMAIL_SURROGATES,
    "IP_ADDRESS": IP_SURROGATES,
    "PHONE_NUMBER": ("555-0100", "555-0123", "555-0142", "555-0199"),  # NANP's fictional 555-01XX block
    "CREDIT_CARD": ("0000 0000 0000 0000",),
    "IBAN_CODE": ("XX00 0000 0000 0000 0000 00",),
    "US_SSN": ("000-00-0000",),  # area 000 is never issued
    "CN_RESIDENT_ID": ("000000000000000000",),
}
# in Chinese documents these keep the value's format instead (digits zeroed: stages/pii/zh.py's keep_format)
FORMAT_KEPT = frozenset({"PHONE_NUMBER", "CREDIT_CARD", "CN_RESIDENT_ID", "IBAN_CODE", "US_SSN"})
# entities from NER (pii.ner): names for names, a tag for the rest
NER_SURROGATES: dict[str, tuple[str, ...]] = {"PERSON": ("Jane Doe", "John Doe")}

# The costliest candidate, a phone digit group, takes up to ~0.37 ms of CPU (`+1 555 010 0100 ext. 12 `
# repeated; e-mails ~0.08 ms, IPv6 colons ~0.07): ~1.5 s at the limit on one core, whatever the mix
# (bench/bench_hostile.py's `pii at the limit`). The densest text in ../shared/corpus has 3,525 (a German page
# of timetables, 100 KB, 0.96 s): 2,000 would bound the cost at ~0.75 s but drop such pages.
DEFAULT_MAX_CANDIDATES = 4000


class TooDense(Exception):
    """A document with more PII candidates than `max_candidates`: dropped as `pii_too_dense`."""


@functools.cache
def presidio_phone_regions() -> tuple[str, ...]:
    """presidio's `PhoneRecognizer.DEFAULT_SUPPORTED_REGIONS`, read from its source: importing presidio compiles
    every recognizer's patterns (0.45 s), for a constant. A text with digits asks for it before any recognizer
    runs, and most need none (a reuse run's public ledger copy of a new detail "word_count 87 < 100")."""
    spec = importlib.util.find_spec("presidio_analyzer")  # finds the package without importing it
    if spec is not None and spec.origin:
        path = os.path.join(os.path.dirname(spec.origin), "predefined_recognizers", "generic", "phone_recognizer.py")
        try:
            for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
                if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [
                        "DEFAULT_SUPPORTED_REGIONS"]:
                    return tuple(ast.literal_eval(node.value))
        except (OSError, SyntaxError, ValueError):
            pass
    with without_torch():  # another presidio: imported
        from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    return tuple(PhoneRecognizer.DEFAULT_SUPPORTED_REGIONS)


@dataclass(frozen=True)
class Finding:
    """One replaced span; start/end index the original text."""

    entity_type: str
    start: int
    end: int
    replacement: str
    score: float = 1.0


def _is_public_ip(value: str) -> bool:
    try:
        return ipaddress.ip_interface(value).ip.is_global
    except ValueError:
        return False


class PIIScrubber(PipelineStep):
    """Replaces PII found by presidio with surrogates (or `<TYPE>` tags). Never keeps PII unscrubbed: a document
    over `record_timeout` or `max_candidates` (too dense to scrub in ~1 s) is dropped, as `timeout` or `pii_too_dense`.

    score_threshold 0.3 (presidio's default is 0): presidio's "very weak" US_SSN patterns (any 9-digit
    number, ZIP+4 codes) score 0.05 and, with no lemmatizer, context words can never raise them. Every other
    finding scores >= 0.4 (phone 0.4, SSN with separators 0.5, IP 0.6; checksum-validated types 1.0).
    """

    name = "🕵 PII scrubber"
    stage = "pii"
    type = "✂️ - FORMAT"

    def __init__(self, entities: list[str] | tuple[str, ...] = DEFAULT_ENTITIES, replacement: str = "surrogate",
                 language: str = "en", score_threshold: float = 0.3, fast: bool = True,
                 ner_model: str | None = None, ner_entities: list[str] | tuple[str, ...] = ("PERSON",),
                 exclusion_writer=None, record_timeout: float | None = DEFAULT_RECORD_TIMEOUT,
                 memo_folder: str | None = None, memo_source: str | None = None,
                 max_candidates: int | None = DEFAULT_MAX_CANDIDATES):
        super().__init__()
        # a document whose PII candidates (stages/pii/prefilter.py) exceed this is dropped as `pii_too_dense`
        self.max_candidates = max_candidates
        # a document over record_timeout is dropped here as `timeout` (never kept unscrubbed): needs the writer
        self.exclusion_writer, self.record_timeout = exclusion_writer, record_timeout
        # each text's findings kept there, replayed from there (another run with these settings: stages/utils/memo.py)
        self.memo_folder, self.memo_source = memo_folder, memo_source
        unknown = [e for e in entities if e not in DEFAULT_ENTITIES]
        if unknown:
            raise ValueError(f"unknown PII entities {unknown}; allowed: {list(DEFAULT_ENTITIES)}")
        if replacement not in REPLACEMENT_STYLES:
            raise ValueError(f"replacement must be one of {list(REPLACEMENT_STYLES)}, got {replacement!r}")
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        # keep DEFAULT_ENTITIES order: it is the last tie-break between overlapping findings
        self.entities = tuple(e for e in DEFAULT_ENTITIES if e in entities)
        self.replacement = replacement
        self.language = language  # presidio's language for every document that is not Chinese
        self.score_threshold = score_threshold
        self.fast = fast  # False: presidio's analyze() on every whole document, for audits and comparisons
        # NER (stages/pii/ner.py): a spaCy pipeline with an `ner` component, run on documents in `language`
        self.ner = (ner_model, tuple(ner_entities)) if ner_model else None
        if self.ner and not self.ner[1]:
            raise ValueError("pii.ner: give the entity types to remove (e.g. [PERSON])")
        if self.ner:
            check_model(ner_model)  # fails here, at build time, not in a worker

    # -------------------------------------------------- lazy, once per process

    @cached_property
    def analyzer(self):
        return shared_analyzer(self.entities, self.language, self.score_threshold, self.ner)

    @cached_property
    def _empty_artifacts(self) -> dict:
        """Per presidio language: empty NLP artifacts when its pipeline has no lemmatizer and no NER (context
        can never match, no entity comes from spaCy), else None (the whole document goes through spaCy)."""
        with without_torch():  # presidio's first import may be this one (its device detector imports torch: 3 s)
            from presidio_analyzer.nlp_engine import NlpArtifacts

        out = {}
        pipelines = self.analyzer.nlp_engine.nlp  # stages/pii/analyzer.py BlankPipelines
        for lang in pipelines:
            if pipelines.known_empty(lang):
                real = False
            else:
                nlp = pipelines[lang]
                real = "ner" in nlp.pipe_names or any(t.lemma_ for t in nlp("calling phone numbers"))
            out[lang] = None if real else NlpArtifacts(entities=[], tokens=[], tokens_indices=[], lemmas=[],
                                                       nlp_engine=None, language=lang)
        return out

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("analyzer", None)  # presidio/spaCy objects stay out of the pickle: each worker builds its own
        state.pop("_empty_artifacts", None)
        return state

    # -------------------------------------------------- finding

    def presidio_language(self, language: str | None) -> str:
        """The analyzer language for a document labelled `language` (langid's label; None: unknown)."""
        return "zh" if is_chinese(language) else self.language

    def _entities_for(self, lang: str) -> list[str]:
        return list(self.entities) + (list(self.ner[1]) if self.ner and lang == self.language else [])

    def too_dense(self, text: str, language: str | None = None) -> bool:
        """Whether `text` holds over `max_candidates` PII candidates in all (a URL scrubbed piece by piece can
        hold many more than each of its pieces). Each character opens at most one candidate per entity: a text
        that short is answered without looking."""
        if self.max_candidates is None or len(text) * len(self._entities_for(self.language)) <= self.max_candidates:
            return False
        try:
            self._windows(mask_unspaced(text), self.presidio_language(language))
        except TooDense:
            return True
        return False

    def _windows(self, text: str, lang: str):
        """(start, end, entities) for runs of adjacent lines that some entity could match in (stages/pii/prefilter.py).
        Raises TooDense when they hold over `max_candidates` candidates."""
        windows, candidates = line_windows(text, self.entities, lambda line: self._phone_possible(line, lang))
        if self.max_candidates is not None and candidates > self.max_candidates:
            raise TooDense(f"{candidates} PII candidates > pii.max_candidates {self.max_candidates}")
        return windows

    def _phone_possible(self, line: str, lang: str) -> bool:
        if lang == "zh":
            return PHONE_LINE_NEED.search(line) is not None or phone_possible(line, PHONE_REGIONS)
        return phone_possible(line, self.phone_regions)

    @cached_property
    def phone_regions(self) -> tuple[str, ...]:
        return presidio_phone_regions()

    def analyze(self, text: str, language: str | None = None) -> list:
        """presidio RecognizerResults for `text` (offsets in `text`), equal to analyzer.analyze() of the whole
        text as a set. Recognizers see `mask_unspaced(text)` (word boundaries next to CJK), spaCy the text."""
        lang = self.presidio_language(language)
        masked = mask_unspaced(text)
        entities = self._entities_for(lang)
        windows = self._windows(masked, lang)  # raises TooDense, in either mode
        if not self.fast:
            return self._analyze_whole(text, masked, lang, entities)
        if not windows and not (self.ner and lang == self.language):
            return []  # nothing any recognizer could match: presidio (and the engine build) skipped
        artifacts = self._empty_artifacts[lang]
        if artifacts is None:  # a real lemmatizer or NER: context and entities need the whole text
            return self._analyze_whole(text, masked, lang, entities)
        results = []
        for start, end, ents in windows:
            found = self.analyzer.analyze(masked[start:end], language=lang,
                                          entities=[e for e in self.entities if e in ents], nlp_artifacts=artifacts)
            for r in found:
                r.start += start
                r.end += start
            results.extend(found)
        return results

    def _analyze_whole(self, text: str, masked: str, lang: str, entities: list[str]) -> list:
        artifacts = self.analyzer.nlp_engine.process_text(text, lang)
        return self.analyzer.analyze(masked, language=lang, entities=entities, nlp_artifacts=artifacts)

    def _resolve(self, text: str, results) -> list:
        """Non-overlapping findings, by start: longer span wins, then higher score, then entity order."""
        order = {e: i for i, e in enumerate(self.entities + (self.ner[1] if self.ner else ()))}
        # kept spans are disjoint: held sorted by start, only the last one starting before r.end can overlap r
        # (checking every kept span was quadratic: 85,000 findings on one 1 MB line never finished)
        kept, starts = [], []
        for r in sorted(results, key=lambda r: (-(r.end - r.start), -r.score, order[r.entity_type], r.start)):
            i = bisect.bisect_left(starts, r.end)
            if i == 0 or kept[i - 1].end <= r.start:
                kept.insert(i, r)
                starts.insert(i, r.start)
        # a private IP keeps its span (nothing else replaces part of it) but is not replaced itself
        kept = [r for r in kept if r.entity_type != "IP_ADDRESS" or _is_public_ip(text[r.start:r.end])]
        return sorted(kept, key=lambda r: r.start)

    def _replacement_for(self, entity_type: str, value: str, lang: str) -> str:
        if self.replacement == "tag":
            return f"<{entity_type}>"
        if lang == "zh" and entity_type in FORMAT_KEPT:
            return keep_format(value)  # 138 1234 5678 -> 000 0000 0000 (stages/pii/zh.py)
        choices = SURROGATES.get(entity_type) or NER_SURROGATES.get(entity_type) or (f"<{entity_type}>",)
        if len(choices) == 1:
            return choices[0]
        digest = hashlib.blake2b(value.encode("utf-8"), digest_size=8).digest()
        return choices[int.from_bytes(digest, "big") % len(choices)]

    def scrub(self, text: str, language: str | None = None, memo: dict | None = None) -> tuple[str, list[Finding]]:
        """The text with PII replaced, and what was replaced (offsets in the original text). `language`: the
        document's langid label (Chinese ones get the Chinese recognizers and format-keeping surrogates).
        `memo`: {text digest: findings} of texts scrubbed before with these settings, replayed and added to."""
        lang = self.presidio_language(language)
        key = text_key(f"{lang}\x00{text}") if memo is not None else None
        if key in (memo or {}):
            findings = [Finding(*f) for f in memo[key]]
        else:
            findings = [Finding(r.entity_type, r.start, r.end,
                                self._replacement_for(r.entity_type, text[r.start:r.end], lang), r.score)
                        for r in self._resolve(text, self.analyze(text, language))]
            if memo is not None:
                memo[key] = [[f.entity_type, f.start, f.end, f.replacement, f.score] for f in findings]
        parts, at = [], 0  # one join: slicing the whole text once per finding was quadratic
        for f in findings:
            parts += [text[at:f.start], f.replacement]
            at = f.end
        parts.append(text[at:])
        return "".join(parts), findings

    # -------------------------------------------------- pipeline

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        memo = read_memo_file(self.memo_source, rank)[0] if self.memo_source else {}
        with self.exclusion_writer or contextlib.nullcontext() as writer:
            yield from self._scrub_all(data, rank, writer, memo if self.memo_folder or self.memo_source else None)
        if self.memo_folder:
            with self.track_time():
                write_memo_file(self.memo_folder, rank, memo)

    def _scrub_all(self, data: DocumentsPipeline, rank: int, writer, memo: dict | None) -> DocumentsPipeline:
        for doc in data:
            self.stat_update("documents")
            with self.track_time():
                original = doc.text
                try:
                    with record_deadline(self.record_timeout if writer is not None else None):
                        doc.text, findings = self.scrub(original, doc.metadata.get("language"), memo)
                        # the URL goes into the parquet: scrubbed the same way (stages/pii/fields.py); the ledger
                        # keeps it raw
                        url, found = scrub_url(self, doc.metadata.get("url"), memo)
                except (RecordTimeout, TooDense) as exc:
                    doc.text = original
                    reason = "timeout" if isinstance(exc, RecordTimeout) else "pii_too_dense"
                    self.stat_update("dropped", f"dropped_{reason}")
                    if writer is not None:
                        drop(writer, doc, rank, reason, str(exc))
                    continue
            counts: dict[str, int] = {}
            for f in findings:
                counts[f.entity_type] = counts.get(f.entity_type, 0) + 1
            doc.metadata["pii"] = counts
            # the values go to the decision ledger only (for `ccpipe audit explain --show-pii`), never to the output
            doc.metadata["pii_spans"] = [[f.entity_type, f.start, f.end, original[f.start:f.end]] for f in findings]
            if found:
                doc.metadata["raw_url"], doc.metadata["url"] = doc.metadata["url"], url
                self.stat_update("urls_with_pii")
            if counts:
                self.stat_update("docs_with_pii")
            for entity_type, n in counts.items():
                self.stat_update(entity_type, value=n)
            yield doc

    def provenance(self) -> dict:
        info = {"name": "presidio-pii", "version": PII_SCRUBBER_VERSION,
                "presidio_analyzer": version("presidio-analyzer"), "phonenumbers": version("phonenumbers"),
                "tldextract": version("tldextract"), "spacy": version("spacy") + " (blank pipeline)",
                "entities": list(self.entities), "replacement": self.replacement, "language": self.language,
                "score_threshold": self.score_threshold, "max_candidates": self.max_candidates}
        if self.ner:
            info["ner"] = ner_provenance(self.ner[0], self.ner[1])
        return info
