"""PIIScrubber: each entity found and replaced, public IPs only, CN id checksums, metadata, determinism."""

from __future__ import annotations

import inspect
import json
import pickle
import random
import subprocess
import sys
import time

import pytest
import regex

from stages.pii.prefilter import _phone_rules, line_windows, phone_possible
from stages.pii.scrub import (
    DEFAULT_ENTITIES,
    DEFAULT_MAX_CANDIDATES,
    EMAIL_SURROGATES,
    IP_SURROGATES,
    SURROGATES,
    PIIScrubber,
    TooDense,
    cn_resident_id_is_valid,
)
from stages.writers.ledger import DropLedger
from tests.conftest import ROOT
from tests.fixtures import make_doc

VALID_CN = "51010719800810192X"  # planted in the bench WARCs; check character X
VALID_CN_DIGIT = "110101196807036368"

SAMPLES = {  # entity -> a value presidio must find inside "... {value} ..."
    "EMAIL_ADDRESS": "anna.brown37@uni-bonn.de",
    "PHONE_NUMBER": "+1 (212) 736-1605",
    "IP_ADDRESS": "91.198.174.137",
    "CREDIT_CARD": "4009299866580609",
    "IBAN_CODE": "DE03 3105 3754 8726 8779 80",
    "US_SSN": "176-18-9627",
    "CN_RESIDENT_ID": VALID_CN,
}


@pytest.fixture(scope="module")
def scrubber() -> PIIScrubber:
    return PIIScrubber()


@pytest.fixture(scope="module")
def tagger() -> PIIScrubber:
    return PIIScrubber(replacement="tag")


@pytest.mark.parametrize("entity", DEFAULT_ENTITIES)
def test_each_entity_replaced_with_surrogate(scrubber, entity):
    value = SAMPLES[entity]
    text = f"Please note {value} for the records."
    out, findings = scrubber.scrub(text)
    assert value not in out
    assert [(f.entity_type, text[f.start:f.end]) for f in findings] == [(entity, value)]
    assert findings[0].replacement in SURROGATES[entity]
    assert out == f"Please note {findings[0].replacement} for the records."


@pytest.mark.parametrize("entity", DEFAULT_ENTITIES)
def test_each_entity_replaced_with_tag(tagger, entity):
    out, _ = tagger.scrub(f"Please note {SAMPLES[entity]} for the records.")
    assert out == f"Please note <{entity}> for the records."


def test_fineweb_surrogates_match_datatrove():
    from datatrove.pipeline.formatters.pii import PIIFormatter

    params = inspect.signature(PIIFormatter.__init__).parameters
    assert EMAIL_SURROGATES == params["email_replacement"].default
    assert IP_SURROGATES == params["ip_replacement"].default


@pytest.mark.parametrize("ip", ["10.1.2.3", "192.168.0.17", "127.0.0.1", "172.16.5.4", "0.0.0.0"])
def test_private_ips_kept(scrubber, ip):
    text = f"The router at {ip} answers."
    assert scrubber.scrub(text) == (text, [])


def test_public_ip_replaced_private_kept_in_same_text(scrubber):
    out, findings = scrubber.scrub("from 10.0.0.1 to 8.8.8.8 via 192.168.1.1")
    assert out.startswith("from 10.0.0.1 to ") and out.endswith(" via 192.168.1.1")
    assert "8.8.8.8" not in out and [f.entity_type for f in findings] == ["IP_ADDRESS"]


def test_cn_resident_id_checksum():
    assert cn_resident_id_is_valid(VALID_CN) and cn_resident_id_is_valid(VALID_CN_DIGIT)
    assert cn_resident_id_is_valid(VALID_CN.lower())
    assert not cn_resident_id_is_valid(VALID_CN[:-1] + "3")  # wrong check character
    assert not cn_resident_id_is_valid("110101199002300015")  # 30 February


def test_cn_resident_id_bad_checksum_not_replaced(scrubber):
    bad = VALID_CN_DIGIT[:-1] + ("9" if VALID_CN_DIGIT[-1] != "9" else "0")
    text = f"身份证号 {bad} 已登记"
    assert scrubber.scrub(text) == (text, [])
    out, findings = scrubber.scrub(f"身份证号 {VALID_CN_DIGIT} 已登记")
    assert out == "身份证号 000000000000000000 已登记"
    assert [f.entity_type for f in findings] == ["CN_RESIDENT_ID"]


def test_cn_resident_id_not_inside_longer_digit_runs(scrubber):
    text = f"order 9{VALID_CN_DIGIT}1 shipped"
    out, findings = scrubber.scrub(text)
    assert "CN_RESIDENT_ID" not in [f.entity_type for f in findings]


def test_no_trigger_character_skips_presidio():
    s = PIIScrubber()
    assert s.scrub("No digits, no at-signs, no colons here.") == ("No digits, no at-signs, no colons here.", [])
    assert "analyzer" not in s.__dict__  # the engine was never built


def test_run_sets_metadata_and_stats_and_keeps_every_doc(scrubber):
    text = "Mail a.b@gmail.com or c.d@web.de, call +44 20 7946 3968.\nNothing here."
    docs = [make_doc(text, doc_id="pii"), make_doc("clean text", doc_id="clean")]
    out = list(scrubber.run(iter(docs)))
    assert [d.id for d in out] == ["pii", "clean"]
    assert out[0].metadata["pii"] == {"EMAIL_ADDRESS": 2, "PHONE_NUMBER": 1}
    spans = out[0].metadata["pii_spans"]
    assert [text[s:e] for _, s, e, _ in spans] == ["a.b@gmail.com", "c.d@web.de", "+44 20 7946 3968"]
    assert [value for *_, value in spans] == ["a.b@gmail.com", "c.d@web.de", "+44 20 7946 3968"]
    assert "a.b@gmail.com" not in out[0].text and out[0].text.endswith(".\nNothing here.")
    assert out[1].metadata["pii"] == {} and out[1].metadata["pii_spans"] == []
    assert scrubber.stats["EMAIL_ADDRESS"].total == 2 and scrubber.stats["PHONE_NUMBER"].total == 1


def test_overlaps_resolved_and_offsets_valid(scrubber):
    text = "IBAN DE03 3105 3754 8726 8779 80, card 4009-2998-6658-0609, ssn 176-18-9627, ip 91.198.174.137."
    out, findings = scrubber.scrub(text)
    assert [f.entity_type for f in findings] == ["IBAN_CODE", "CREDIT_CARD", "US_SSN", "IP_ADDRESS"]
    assert all(a.end <= b.start for a, b in zip(findings, findings[1:]))
    assert out == ("IBAN XX00 0000 0000 0000 0000 00, card 0000 0000 0000 0000, ssn 000-00-0000, ip "
                   f"{findings[3].replacement}.")


def test_deterministic_across_instances():
    text = "Write to a.b@gmail.com, x.y@proton.me or z@uni-bonn.de; servers 8.8.8.8, 1.1.1.1, 9.9.9.9."
    a, b = PIIScrubber(), PIIScrubber()
    assert a.scrub(text) == b.scrub(text)
    # the choice depends on the value only, not on what came before
    alone = a.scrub("x.y@proton.me")[1][0].replacement
    in_text = [f.replacement for f in a.scrub(text)[1] if text[f.start:f.end] == "x.y@proton.me"]
    assert in_text == [alone]


def test_pickle_round_trip(scrubber):
    scrubber.scrub("warm 8.8.8.8")  # builds the engine: it must not travel
    clone = pickle.loads(pickle.dumps(scrubber))
    assert "analyzer" not in clone.__dict__
    assert clone.scrub("mail a.b@gmail.com") == scrubber.scrub("mail a.b@gmail.com")


def test_findings_identical_to_presidio(scrubber):
    """The line windows and the skipped spaCy pass change nothing presidio would find."""
    texts = ["Intro line\n\ncall (650) 253-1880 or +49 30 2019433\nIP: 8.8.8.8 and 10.0.0.1\n"
             "ssn 176-18-9627 zip 12345-6789\nmail a@b.de\n::1 and fe80::1",
             "Card 4009 2998 6658 0609 and IBAN DE03310537548726877980 and 110101196807036368."]
    for text in texts:
        ours = {(r.entity_type, r.start, r.end, r.score) for r in scrubber.analyze(text)}
        plain = {(r.entity_type, r.start, r.end, r.score)
                 for r in scrubber.analyzer.analyze(text, language="en")}
        assert ours == plain


def test_blank_pipelines_are_built_only_when_read():
    """presidio is handed empty NLP artifacts: its blank pipelines are never built (0.12 s for the first)."""
    s = PIIScrubber(entities=["PHONE_NUMBER", "EMAIL_ADDRESS"])  # an engine of its own (one per process and entities)
    out, findings = s.scrub("mail a.b@gmail.com or call +49 30 2019433")
    assert {f.entity_type for f in findings} == {"EMAIL_ADDRESS", "PHONE_NUMBER"}
    pipelines = s.analyzer.nlp_engine.nlp
    assert list(pipelines) == ["en", "zh"] and not pipelines.built
    assert pipelines["en"].pipe_names == [] and "en" in pipelines.built  # built when read (presidio's spaCy pass)


@pytest.mark.parametrize("lang", ["en", "de", "fr", "es", "nl", "zh", "ja"])
def test_known_empty_pipelines_give_no_entity_and_no_lemma(lang):
    import spacy

    from stages.pii.analyzer import BlankPipelines

    known = BlankPipelines([lang]).known_empty(lang)
    assert known == (lang != "ja")  # Japanese's tokenizer sets lemmas: built and looked at
    if not known:
        return  # (building it needs SudachiPy)
    nlp = spacy.blank(lang)
    assert nlp.pipe_names == [] and not any(t.lemma_ or t.ent_type_ for t in nlp("calling phone numbers, 3 times"))


def test_bad_config_fails_early():
    with pytest.raises(ValueError, match="unknown PII entities"):
        PIIScrubber(entities=["PERSON"])
    with pytest.raises(ValueError, match="replacement"):
        PIIScrubber(replacement="mask")


def test_provenance(scrubber):
    p = scrubber.provenance()
    assert p["presidio_analyzer"] and p["entities"] == list(DEFAULT_ENTITIES) and p["replacement"] == "surrogate"


def test_planted_bench_values_are_scrubbed(corpus, scrubber):
    path = corpus / "warc" / "bench" / "truth.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    planted = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            planted.update((p["type"], p["value"]) for p in json.loads(line).get("pii") or [])
    assert len(planted) > 100
    missed = []
    for entity, value in sorted(planted):
        text = f"Bei Fragen wenden Sie sich an {value}. Thanks!"
        out, findings = scrubber.scrub(text)
        if value in out or entity not in {f.entity_type for f in findings}:
            missed.append((entity, value, out))
    assert missed == []


# ------------------------------------------------------------------ the fast path finds what presidio finds

TRICKY_LINES = [
    "In 2020 we sold 1,234 units at $5.99 (page 12-14).",
    "Call 1640 or 030 1234567, fax (089) 12 34 56-7, or +1 (202) 555-0143 ext. 12.",
    "Dates: 12.05.2020, 2020/05/12, 12:30, v2.3.4.5, 10.0.0.1 and 8.8.8.8:53, ::1 and fe80::1ff:fe23:4567:890a",
    "SSN 078-05-1120, 078 05 1120, 078051120; card 4111 1111 1111 1111 and 4111-1111-1111-1111",
    "IBAN DE89 3704 0044 0532 0130 00, gb82west12345698765432, id 11010519491231002X, 身份证 110101196807036368",
    "mail jane.doe@uni-bonn.de, user@localhost, a@b.c",
    "Kelvin-sign \u212aX12 3456 7890 1234 5678 90; full-width ＋８１ ３－１２３４－５６７８",
]


def test_fast_path_findings_equal_presidio_s(scrubber):
    def canonical(results):
        return {(r.entity_type, r.start, r.end, round(r.score, 9)) for r in results}

    slow = PIIScrubber(fast=False)
    for text in TRICKY_LINES + ["\n".join(TRICKY_LINES), "no digits at all\n\nhere"]:
        assert canonical(scrubber.analyze(text)) == canonical(slow.analyze(text)), text


def test_phone_lines_without_a_possible_number_are_skipped():
    regions = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")
    assert not phone_possible("In 2020 we sold 1,234 units at $5.99 (page 12-14).", regions)
    assert phone_possible("Call 030 1234567", regions)
    assert phone_possible("Call 1640", regions)  # a valid 4-digit German number
    assert not phone_possible("Call 2020", regions)


def test_phone_possible_judges_every_run_of_phone_characters_that_holds_a_digit():
    from phonenumbers import phonenumbermatcher, phonenumberutil

    regions = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")
    _, short, valid = _phone_rules(regions)
    run = regex.compile("[\\d" + phonenumberutil._VALID_PUNCTUATION + phonenumbermatcher._LEAD_CLASS_CHARS + "]+")

    def reference(line: str) -> bool:  # every maximal run, as phonenumbers' matcher cuts its candidates
        return any(len(d := "".join(regex.findall(r"\d", r))) >= short or d in valid for r in run.findall(line))

    rng = random.Random(7)
    alphabet = list("0123456789 -.()[]/+~xab\u00a0\u3000\uff10\u0663\u2010\uff08")
    lines = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(5000)]
    lines += ["Call 1640", "tel. (030) 12 34-56", "x-1-6-4-0-x", "\u0661\u0666\u0664\u0660", "1640" + " -" * 1000]
    assert [phone_possible(line, regions) for line in lines] == [reference(line) for line in lines]


def test_short_valid_phone_numbers_are_kept_in_the_cache_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("CCPIPE_CACHE", str(tmp_path))
    regions = ("DE", "FR")
    computed = _phone_rules.__wrapped__(regions)[2]  # not the process's cached answer
    assert "1640" in computed
    [path] = (tmp_path / "pii").glob("short-phones-*-DE-FR.json")
    assert frozenset(json.loads(path.read_text())) == computed
    path.write_text('["12"]')
    assert _phone_rules.__wrapped__(regions)[2] == {"12"}  # read from there, not computed
    path.write_text('["1640", "x"]')
    assert _phone_rules.__wrapped__(regions)[2] == computed  # no list of digit strings: computed again
    assert frozenset(json.loads(path.read_text())) == computed


@pytest.mark.timeout(60)
def test_resolving_overlaps_is_not_quadratic():
    # one 1 MB line dense with PII gave ~85,000 findings, and checking each against every kept one never ended
    from presidio_analyzer import RecognizerResult

    scrubber = PIIScrubber()
    text = "x" * 600_000
    rng = random.Random(0)
    small = [RecognizerResult(rng.choice(scrubber.entities), s, s + rng.randint(1, 30), rng.random())
             for s in (rng.randint(0, 2_000) for _ in range(400))]
    naive = []  # the rule: longer span first, then higher score, then entity order; no overlap with a kept one
    order = {e: i for i, e in enumerate(scrubber.entities)}
    for r in sorted(small, key=lambda r: (-(r.end - r.start), -r.score, order[r.entity_type], r.start)):
        if all(r.end <= k.start or r.start >= k.end for k in naive):
            naive.append(r)
    # no IP in a text of x's is public: those keep their span but are not replaced
    assert [(r.start, r.end) for r in scrubber._resolve(text, small)] == \
        sorted((r.start, r.end) for r in naive if r.entity_type != "IP_ADDRESS")
    many = [RecognizerResult("EMAIL_ADDRESS", s, s + 5, 1.0) for s in range(0, 600_000, 6)]
    started = time.process_time()
    assert len(scrubber._resolve(text, many)) == 100_000
    assert time.process_time() - started < 5


def test_a_document_too_dense_with_pii_is_dropped_never_kept_unscrubbed(tmp_path):
    # ~0.3 ms of phonenumbers per phone digit group: a 1 MB line of these took ~60 s; now counted, then dropped
    units = DEFAULT_MAX_CANDIDATES // 4 + 1
    dense = "+1 (555) 010-0100 " * units  # 4 candidates each: 4 digit groups
    normal = "Mail jane.roe@example.org or call +1 212 555 0143.\n" * 20
    scrubber = PIIScrubber(exclusion_writer=DropLedger(str(tmp_path), "pii"))
    out = list(scrubber.run(iter([make_doc(dense, doc_id="dense"), make_doc(normal, doc_id="normal")])))
    assert [d.id for d in out] == ["normal"] and "jane.roe" not in out[0].text
    rows = [json.loads(line) for line in (tmp_path / "pii" / "00000.jsonl").read_text().splitlines()]
    assert [(r["id"], r["stage"], r["reason"], r["detail"]) for r in rows] == [
        ("dense", "pii", "pii_too_dense", f"{4 * units} PII candidates > pii.max_candidates {DEFAULT_MAX_CANDIDATES}")]
    assert scrubber.stats["dropped_pii_too_dense"].total == 1
    with pytest.raises(TooDense):  # the same in whole-document mode, and without a ledger
        PIIScrubber(fast=False).scrub(dense)


def test_candidates_are_counted_per_entity_need_and_phone_digit_group(scrubber):
    count = line_windows("mail a@b.de, call +49 30 2019433\nno digits here", scrubber.entities,
                         lambda line: phone_possible(line, scrubber.phone_regions))[1]
    assert count == 1 + 1 + 3  # e-mail: the "@"; card: "2019433" (4 + 3 digits); phone: 49, 30, 2019433


NO_PRESIDIO = """
import json, sys
from stages.pii.scrub import PIIScrubber
scrubber = PIIScrubber()
text, findings = scrubber.scrub("word_count 87 < 100")  # digits, but no entity's candidate
imported = "presidio_analyzer" in sys.modules
phone, _ = scrubber.scrub("call 030 1234567")  # presidio's first import: without PyTorch (stages/utils/loading.py)
torch = "torch" in sys.modules
from presidio_analyzer.predefined_recognizers import PhoneRecognizer
print(json.dumps({"text": text, "findings": len(findings), "presidio": imported, "phone": phone, "torch": torch,
                  "regions": list(scrubber.phone_regions) == list(PhoneRecognizer.DEFAULT_SUPPORTED_REGIONS)}))
"""


def test_a_text_no_recognizer_could_match_imports_no_presidio():
    """The phone regions come from presidio's source, not its import (0.45 s of pattern compiling)."""
    done = subprocess.run([sys.executable, "-c", NO_PRESIDIO], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"text": "word_count 87 < 100", "findings": 0, "presidio": False,
                                       "phone": "call 555-0100", "torch": False, "regions": True}
