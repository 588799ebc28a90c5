"""No raw PII value leaves the machine: PII planted in URLs, query strings, user-info, HTTP headers and the
records that fail is looked for in every published object (parquet decoded, ledger, JSON, YAML, `.bin`
decoded) and in every file of a release built from the run; the public ledger holds no local path either."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.layout import RunLayout
from pipeline.finalize.public import TOO_DENSE, public_table, stage_url_memo
from stages.pii.scrub import DEFAULT_ENTITIES
from stages.tokens.binformat import HEADER_INTS
from stages.tokens.tokenize import BPETokenizer
from stages.utils.memo import text_key, write_memo_file
from stages.writers.ledger import LEDGER_SCHEMA
from tests.fixtures import html_page, write_warc
from tests.pipeline.clusterkit import ccpipe

pytestmark = pytest.mark.timeout(600)

PLANTED = ["jane.roe@example.org", "078-05-1120", "mary.major@example.org", "4111111111111111",
           "john.q.public@example.org", "mail.me@example.net", "+1-212-555-0143", "kate.lee@example.com"]
PROSE = ["Tomatoes grow well on sunny balconies when they are watered every morning and fed once a week.",
         "Basil likes the same conditions, and planting it next to the tomatoes keeps many pests away from both.",
         "In autumn the plants can be cut back, and the seeds of the best fruits kept in paper for next spring.",
         "A small compost bin in the corner of the balcony turns kitchen scraps into soil within a few months.",
         "Most herbs need less water than people think: the soil should dry out a little between waterings.",
         "Strawberries do well in hanging baskets, where slugs cannot reach them and the fruit stays clean.",
         "Peppers need the warmest spot you have, and they will not set fruit until the nights are mild.",
         "Lettuce is the easiest crop of all: sow a short row every two weeks and you will never run out.",
         "Wind is the hidden enemy on a high balcony, so tall plants should be tied to a stake early on.",
         "Clay pots look lovely but dry out quickly, while plastic ones keep the roots moist for longer."]

COOKING = ["Bread dough rises best in a warm kitchen, covered with a damp cloth for about an hour or two.",
           "A cast iron pan must be dried on the stove after washing, or it will rust by the next morning.",
           "Onions turn sweet when they are cooked slowly over low heat for at least half an hour.",
           "Fresh pasta needs only flour and eggs, kneaded until the dough is smooth and springs back.",
           "Soup tastes better on the second day, once the flavours have had a night to settle together.",
           "Salt the water for boiling potatoes generously, since they cannot take it up once they are cooked.",
           "Roasted vegetables brown evenly only when the tray is not crowded and the oven is really hot.",
           "Rice should rest off the heat with the lid on for ten minutes before it is fluffed with a fork.",
           "Garlic burns in seconds, so it goes into the pan after the onions have already softened.",
           "A sharp knife is safer than a blunt one, because it does not slip off the skin of a tomato."]


def planted_warc(path):
    page = html_page("Balcony gardening", *PROSE)
    return write_warc(path, [
        # kept: its URL goes to the parquet and the ledger
        {"url": "https://www.example.com/contact?email=jane.roe@example.org&ssn=078-05-1120", "body": page,
         "headers": [("X-Contact", "mail.me@example.net"), ("Set-Cookie", "tel=+1-212-555-0143")]},
        {"url": "https://www.example.com/kitchen?from=mail.me@example.net", "body": html_page("Kitchen", *COOKING)},
        # bad_url: the URL is the ledger's detail too
        {"url": "http:///mary.major@example.org/4111111111111111", "body": page},
        # no HTTP status line but an e-mail: http_status, with the "status" as detail
        {"url": "https://www.example.com/who", "body": page, "status": "kate.lee@example.com"},
        {"url": "https://www.example.com/u/john.q.public%40example.org/", "body": "<p>short</p>"},
    ])


def published_texts(root, vocabulary) -> dict[str, str]:
    """{file: its content as text}: parquet tables as their rows, .bin shards decoded, the rest as text."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.relative_to(root).as_posix()
        if path.suffix == ".parquet":
            out[name] = json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False)
        elif path.suffix == ".bin":
            tokens = np.fromfile(path, dtype=np.uint16, offset=HEADER_INTS * 4)
            out[name] = vocabulary.decode(tokens.tolist())
        else:
            out[name] = path.read_text(errors="replace")
    return out


def test_no_planted_value_is_published_or_released(tmp_path, gpt2_tiktoken):
    inputs = tmp_path / "private-inputs"
    inputs.mkdir()
    planted_warc(inputs / "planted.warc.gz")
    published, work = tmp_path / "published", tmp_path / "work"
    proc = ccpipe("run", "--input", str(inputs), "--output", f"file://{published}", "--work-dir", str(work),
                  "--tokenizer", str(gpt2_tiktoken), "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    release = tmp_path / "release"
    proc = ccpipe("release", "build", str(work), "--name", "planted", "--version", "1.0.0", "--output",
                  str(release), "--tokenizer", str(gpt2_tiktoken), "--validation-fraction", "0.5")
    assert proc.returncode == 0, proc.stderr[-3000:]

    local = {r["url"] for p in (work / "ledger").glob("*.parquet") for r in pq.read_table(p).to_pylist()}
    assert "https://www.example.com/contact?email=jane.roe@example.org&ssn=078-05-1120" in local  # raw, for audits
    kept = [r for p in (published / "parquet").rglob("*.parquet") for r in pq.read_table(p).to_pylist()]
    assert sorted(r["url"] for r in kept) == [
        "https://www.example.com/contact?email=firstname.lastname@example.org&ssn=555-0199",
        "https://www.example.com/kitchen?from=firstname.lastname@example.org"]
    summary = json.loads((published / "summary.json").read_text())
    assert summary["pii_in_urls"] == 4 and summary["pii_in_details"] == 2, summary

    explained = ccpipe("audit", "explain", str(work), "http:///mary.major@example.org/4111111111111111")
    assert explained.returncode == 0, explained.stderr
    assert "published url scrubbed of PII (the raw value stays in this run's ledger): " \
           "http:///email@example.com/0000 0000 0000 0000" in explained.stdout

    vocabulary = BPETokenizer(str(gpt2_tiktoken))
    texts = {**published_texts(published, vocabulary),
             **{f"release/{k}": v for k, v in published_texts(release, vocabulary).items()}}
    assert any(name.startswith("release/bin/") for name in texts) and any("ledger/" in name for name in texts)
    for name, text in texts.items():
        # the public ledger names input files relative to the input root (parquet's `file_path` keeps FineWeb's
        # meaning, the path it was read from, and config.resolved.yaml lists the inputs as given)
        leaked = [value for value in PLANTED + ([str(inputs)] if "ledger/" in name else []) if value in text]
        assert not leaked, f"{name} holds {leaked}"


def test_a_ledger_field_too_dense_to_scrub_is_withheld_whole():
    """A URL of 64 KiB of digit groups holds 21,845 PII candidates (2.7 s of presidio, where a document would be
    dropped as `pii_too_dense`): its public copy is a tag, counted as PII; a plain URL is scrubbed as before."""
    dense = "https://www.example.com/" + "555 0100 " * 7282
    plain = "https://www.example.com/contact?email=jane.roe@example.org"
    rows = [{"id": "a", "url": dense, "decision": "dropped", "stage": "reader", "reason": "bad_url", "detail": None},
            {"id": "b", "url": plain, "decision": "dropped", "stage": "reader", "reason": "bad_url", "detail": None}]
    resolved = {"config": {"pii": {"entities": list(DEFAULT_ENTITIES), "replacement": "surrogate"}},
                "inputs": [], "stages": ["reader", "extract", "pii"]}
    public, counts = public_table(pa.Table.from_pylist(rows, schema=LEDGER_SCHEMA), resolved)
    urls = public["url"].to_pylist()
    assert urls[0] == TOO_DENSE
    assert urls[1].startswith("https://www.example.com/contact?email=") and "jane.roe" not in urls[1]
    assert counts["pii_in_urls"] == 2


def test_a_url_the_pii_stage_scrubbed_is_taken_from_its_memo_and_a_dense_one_still_withheld(tmp_path):
    """The public copy scrubs with the PII stage's scrubber: the URLs in that stage's memo (stages/pii/fields.py)
    are its answers, taken as they are; the density limit of a whole URL still applies first."""
    dense = "https://www.example.com/" + "555 0100 " * 7282
    plain = "https://www.example.com/contact?email=jane.roe@example.org"
    memo = {text_key("\x00url\x00" + plain): [1, "https://www.example.com/contact?email=from-the-memo"],
            text_key("\x00url\x00" + dense): [0]}
    rows = [{"id": "a", "url": dense, "decision": "dropped", "stage": "reader", "reason": "bad_url", "detail": None},
            {"id": "b", "url": plain, "decision": "kept", "stage": None, "reason": None, "detail": None}]
    config = {"recipe": "ccpipe", "pii": {"entities": list(DEFAULT_ENTITIES), "replacement": "surrogate",
                                          "fast": True, "ner": {"model": None}}}
    resolved = {"config": config, "inputs": [], "stages": ["reader", "extract", "pii"]}
    public, counts = public_table(pa.Table.from_pylist(rows, schema=LEDGER_SCHEMA), resolved, url_memo=memo)
    assert public["url"].to_pylist() == [TOO_DENSE, "https://www.example.com/contact?email=from-the-memo"]
    assert counts["pii_in_urls"] == 2

    layout = RunLayout(tmp_path)
    write_memo_file(str(layout.pii_memo), 3, memo)
    assert stage_url_memo(layout, resolved, "part-00003.parquet") == memo
    # another scrubber than the public copy's: its memo is not the public copy's answers
    for other in ({"fast": False}, {"ner": {"model": "en_core_web_sm"}}):
        assert stage_url_memo(layout, {**resolved, "config": {**config, "pii": {**config["pii"], **other}}},
                              "part-00003.parquet") is None
    assert stage_url_memo(layout, {**resolved, "config": {**config, "recipe": "fineweb"}}, "part-00003.parquet") is None
