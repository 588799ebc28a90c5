"""Chinese PII: phones as written in China, UnionPay cards, resident IDs against CJK text, format-keeping
surrogates; the planted values of warc/zh; the fast path still equals presidio per document."""

from __future__ import annotations

import html
import json
import re

import pytest

from stages.pii.scrub import PIIScrubber
from stages.pii.zh import is_chinese, keep_format, luhn_valid, mask_unspaced
from tests.fixtures import make_doc


@pytest.fixture(scope="module")
def scrubber() -> PIIScrubber:
    return PIIScrubber()


@pytest.fixture(scope="module")
def slow() -> PIIScrubber:
    return PIIScrubber(fast=False)


ZH_CASES = [  # (text, entity, value): the value must be found as that entity in a Chinese document
    ("身份证号码为11010519491231002X。", "CN_RESIDENT_ID", "11010519491231002X"),
    ("联系电话：13812345678", "PHONE_NUMBER", "13812345678"),
    ("手机138-1234-5678联系", "PHONE_NUMBER", "138-1234-5678"),
    ("手机 138 1234 5678。", "PHONE_NUMBER", "138 1234 5678"),
    ("电话+86 138 1234 5678", "PHONE_NUMBER", "+86 138 1234 5678"),
    ("電話(+86)19946061829。", "PHONE_NUMBER", "(+86)19946061829"),
    ("北京办公室010-62751234转", "PHONE_NUMBER", "010-62751234"),
    ("上海021-6888 8888，", "PHONE_NUMBER", "021-6888 8888"),
    ("深圳0755-12345678。", "PHONE_NUMBER", "0755-12345678"),
    ("银行卡号6228486361278748348。", "CREDIT_CARD", "6228486361278748348"),
    ("銀行卡號 6230 5865 2781 3377 356 ", "CREDIT_CARD", "6230 5865 2781 3377 356"),
    ("卡号6217 0096 8561 5095，", "CREDIT_CARD", "6217 0096 8561 5095"),
    ("请发邮件至1805595595@qq.com，", "EMAIL_ADDRESS", "1805595595@qq.com"),
    ("邮箱wang.fang47@163.com联系", "EMAIL_ADDRESS", "wang.fang47@163.com"),
    ("服务器IP为220.181.38.25。", "IP_ADDRESS", "220.181.38.25"),
]


@pytest.mark.parametrize("text,entity,value", ZH_CASES)
def test_chinese_values_found_and_format_kept(scrubber, slow, text, entity, value):
    out, findings = scrubber.scrub(text, "zh")
    assert [(f.entity_type, text[f.start:f.end]) for f in findings] == [(entity, value)]
    assert value not in out and len(out) - len(text) == len(findings[0].replacement) - len(value)
    if entity in ("PHONE_NUMBER", "CREDIT_CARD", "CN_RESIDENT_ID"):
        assert findings[0].replacement == keep_format(value)
        assert re.sub(r"[0-9]", "0", value.split(")")[-1].removeprefix("+86")) in findings[0].replacement
    assert slow.scrub(text, "zh") == (out, findings)  # fast path == presidio on the whole document


def test_cjk_boundaries_fixed_for_every_language(scrubber):
    """`为1...` has no \\b between Han and digit; masking fixes it for English documents too."""
    out, findings = scrubber.scrub("身份证号码为11010519491231002X。")
    assert [f.entity_type for f in findings] == ["CN_RESIDENT_ID"] and out == "身份证号码为000000000000000000。"
    out, _ = scrubber.scrub("邮箱anna.brown37@uni-bonn.de联系，服务器8.8.8.8。")
    assert "anna.brown37" not in out and "8.8.8.8" not in out and out.startswith("邮箱") and "联系" in out


def test_international_numbers_in_chinese_documents(scrubber):
    out, findings = scrubber.scrub("德国办公室电话+49 30 2019433，纽约+1 (212) 736-1605。", "zh")
    assert [f.entity_type for f in findings] == ["PHONE_NUMBER", "PHONE_NUMBER"]
    assert out == "德国办公室电话+49 00 0000000，纽约+1 (000) 000-0000。"


def test_chinese_patterns_need_the_chinese_language(scrubber):
    """In English documents 11-digit runs are not phones: the mainland patterns run on Chinese documents only."""
    assert scrubber.scrub("order 13812345678 shipped") == ("order 13812345678 shipped", [])
    assert scrubber.scrub("order 13812345678 shipped", "zh")[1]
    assert scrubber.scrub("order 13812345678 shipped", "cmn_Hani")[1]


@pytest.mark.parametrize("text", [
    "订单号 213812345678 已发货",  # 12 digits: no mobile inside a longer run
    "共计13812345元",  # 8 digits: no mobile
    "卡号6228486361278748349",  # Luhn fails
    "2023年12月31日 10:30 共1234567人",
    "張安樂有案在身沒資格進議場04-01 12:19",  # found on warc/zh with presidio's default phone regions
    "地址：太原市新建南路56号 邮编：030001",
    "- 164952殴打老师当事人服刑",
])
def test_chinese_non_pii_left_alone(scrubber, text):
    assert scrubber.scrub(text, "zh") == (text, [])


def test_helpers():
    assert mask_unspaced("为11010519491231002X。") == "\u206311010519491231002X。"
    assert mask_unspaced("plain ascii") == "plain ascii"
    assert len(mask_unspaced("𠀀a")) == 2  # astral Han: one code point for one
    assert keep_format("(+86)138-1234-5678") == "(+86)000-0000-0000"
    assert keep_format("11010519491231002X") == "00000000000000000X"
    assert luhn_valid("6228486361278748348") and not luhn_valid("6228486361278748349")
    assert is_chinese("zh") and is_chinese("cmn_Hani") and is_chinese("zh-Hant") and not is_chinese("en")
    assert not is_chinese(None)


def test_run_uses_the_document_language(scrubber):
    docs = [make_doc("电话13812345678", doc_id="a", language="zh"),
            make_doc("电话13812345678", doc_id="b", language="en")]
    out = list(scrubber.run(docs))
    assert out[0].text == "电话00000000000" and out[0].metadata["pii"] == {"PHONE_NUMBER": 1}
    assert out[1].text == "电话13812345678" and out[1].metadata["pii"] == {}


def _planted_paragraphs(root) -> list[tuple[str, list[dict]]]:
    """For each page of warc/zh with planted PII: the text of the <p> holding it, and the planted values."""
    from warcio.archiveiterator import ArchiveIterator

    truth = {}
    with open(root / "truth.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row.get("pii"):
                truth[row["record_id"]] = row
    found = []
    for path in sorted(root.glob("*.warc.gz")):
        with open(path, "rb") as f:
            for record in ArchiveIterator(f):
                row = truth.get(record.rec_headers.get_header("WARC-Record-ID"))
                if row is None:
                    continue
                charset = {"big5": "cp950"}.get(row["charset"], row["charset"])
                page = record.content_stream().read().decode(charset, errors="replace")
                first = row["pii"][0]["value"]
                para = next(p for p in re.findall(r"<p[^>]*>(.*?)</p>", page, re.DOTALL) if first in p)
                found.append((html.unescape(re.sub(r"<[^>]+>", "", para)), row["pii"]))
    return found


def test_planted_zh_values_are_scrubbed(corpus, scrubber, slow):
    root = corpus / "warc" / "zh"
    if not (root / "truth.jsonl").is_file():
        pytest.skip(f"{root}/truth.jsonl not found")
    paragraphs = _planted_paragraphs(root)
    assert len(paragraphs) == 32 and sum(len(p) for _, p in paragraphs) == 52
    missed = []
    for text, planted in paragraphs:
        out, findings = scrubber.scrub(text, "zh")
        assert slow.scrub(text, "zh") == (out, findings)
        types = {f.entity_type for f in findings}
        missed += [(p["type"], p["value"], out) for p in planted if p["value"] in out or p["type"] not in types]
    assert missed == []


def test_fast_path_equals_presidio_on_synthetic_sentences_as_chinese(corpus, scrubber, slow):
    """The mainland recognizers and their line pre-checks on 1,500 real-shaped sentences (presidio-research)."""
    path = corpus / "pii" / "presidio-research_synth_dataset_v2.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with open(path, encoding="utf-8") as f:
        texts = [row["full_text"] for row in json.load(f)]

    def canonical(results):
        return {(r.entity_type, r.start, r.end, round(r.score, 9)) for r in results}

    for text in texts[:600]:
        assert canonical(scrubber.analyze(text, "zh")) == canonical(slow.analyze(text, "zh")), text


def test_only_lines_shaped_like_a_phone_go_to_the_phone_recognizers(scrubber):
    """Dates and counts alone reach no phone matcher (any 3 digits did: every line with a year); each phone of
    ZH_CASES still does."""
    assert scrubber._windows(mask_unspaced("2023年12月31日，共有125人参加，第0755期。"), "zh") == []
    for text, entity, _ in ZH_CASES:
        if entity == "PHONE_NUMBER":
            assert any("PHONE_NUMBER" in ents for *_, ents in scrubber._windows(mask_unspaced(text), "zh")), text
