"""Language profiles (stages/recipes/profiles): FineWeb-2's per-language filters, and the one pass deciding as they do."""

import tempfile

import pytest

from pipeline.plan.checks import check_config
from pipeline.plan.config import ConfigError, QualityConfig, config_from_dict
from pipeline.plan.phases import build_phases
from stages.dedup.minhash import LanguageSignature
from stages.filters.quality import QualityFilters, quality_filters
from stages.formatters.multilingual import FixEncoding, RemoveTableLines
from stages.recipes.profiles import (
    PROFILES_DIR,
    ProfileError,
    fineweb2_filters,
    load_profile,
    profile_name,
    resolve_profiles,
)
from tests.fixtures import make_doc

# a real news paragraph (Xinhua style), repeated with variations to reach Gopher's 50 words
ZH = "\n".join([
    "新华社北京10月8日电 国家统计局今天发布的数据显示，今年前三季度全国居民人均可支配收入继续增长。",
    "专家表示，就业形势总体稳定，居民消费逐步恢复，市场信心有所增强。",
    "在城乡之间，农村居民收入增速快于城镇居民，收入差距进一步缩小。",
    "有关部门将继续加大政策支持力度，推动经济持续回升向好。",
    "他说，下一步要把稳就业放在更加突出的位置，为群众办实事。",
])


def test_labels_map_to_fineweb2_profiles():
    assert profile_name("en") is None and profile_name("eng_Latn") is None  # FineWeb's recipe
    assert profile_name("zh") == "cmn_Hani" and profile_name("de") == "deu_Latn" and profile_name("ja") == "jpn_Jpan"
    assert profile_name("deu_Latn") == "deu_Latn"  # GlotLID's labels are profile names
    # Simplified and Traditional share FineWeb-2's Mandarin profile unless configured apart
    assert profile_name("cmn_Hant") == profile_name("zh_Hant") == profile_name("zho_Hans") == "cmn_Hani"
    with pytest.raises(ProfileError, match="no language profile for label 'xx'"):
        profile_name("xx")


def test_shipped_profiles_are_fineweb2s_files():
    p = load_profile("cmn_Hani")
    assert p.language_score == 0.692 and p.dup_line_frac == 0.287 and p.max_avg_word_length == 5
    assert p.top_n_grams[0] == (2, 0.256) and "的" in p.stopwords and "fineweb-2" in p.source
    for name in ("deu_Latn", "fra_Latn", "spa_Latn", "jpn_Jpan", "rus_Cyrl"):
        assert load_profile(name).stopwords


def test_overrides_are_validated_and_applied(tmp_path):
    profiles = resolve_profiles(("en", "zh"), {"zh": {"language_score": 0.5, "stopwords": ["的", "是"]}})
    assert profiles["en"] is None
    assert profiles["zh"].language_score == 0.5 and profiles["zh"].stopwords == ("的", "是")
    assert profiles["zh"].dup_line_frac == 0.287 and profiles["zh"].label == "fineweb-2:cmn_Hani+config"
    own = tmp_path / "xyz_Latn.yml"
    own.write_text((PROFILES_DIR / "deu_Latn.yml").read_text())
    assert resolve_profiles(("de",), {"de": {"base": str(own), "word_tokenizer": "deu_Latn"}})["de"].name == "xyz_Latn"
    bad = [({"zh": {"dup_line_frac": "high"}}, "quality.profiles.zh.dup_line_frac: expected a number"),
           ({"zh": {"top_n_grams": [[2]]}}, "quality.profiles.zh.top_n_grams"),
           ({"zh": {"colour": 1}}, "quality.profiles.zh.colour: unknown profile key"),
           ({"fr": {}}, "quality.profiles.fr: 'fr' is not in langid.languages"),
           ({"zh": {"word_tokenizer": "klingon"}}, "no word tokenizer for 'klingon'")]
    for overrides, message in bad:
        with pytest.raises(ConfigError, match=message):
            check_config(config_from_dict({"langid": {"languages": ["zh"]}, "quality": {"profiles": overrides}}))
    with pytest.raises(ConfigError, match="af: no language profile 'afr_Latn'"):  # a label of lid.176, no profile
        check_config(config_from_dict({"langid": {"languages": ["af"]}}))


def test_each_document_gets_its_languages_filters():
    q = QualityFilters(profiles=resolve_profiles(("en", "zh")))
    zh = make_doc(ZH, language="zh")
    assert q.filter(zh) is True
    assert zh.metadata["quality_thresholds"]["profile"] == "fineweb-2:cmn_Hani"
    assert zh.metadata["quality_thresholds"]["gopher_rep_dup_line_frac"] == "> 0.287"
    # the same text as English: a few "words" a line under FineWeb's rules, which repeat
    en = make_doc(ZH, language="en")
    assert q.filter(en) == (False, "gopher_rep_top_2_gram") and "profile" not in en.metadata["quality_thresholds"]
    junk = make_doc("首页\n新闻\n体育\n娱乐\n" * 20, language="zh")
    assert q.filter(junk) == (False, "gopher_rep_dup_line_frac")
    assert junk.metadata["drop_detail"].endswith("> 0.287 (fineweb-2:cmn_Hani)")


def test_datatrove_path_gates_filters_by_language():
    profiles = resolve_profiles(("en", "zh"))
    filters = quality_filters(QualityConfig(fast=False), "unused", profiles)
    assert len(filters) == 4 + 3  # FineWeb's four for English, FineWeb-2's three for Chinese
    for lang, expected in (("zh", True), ("en", (False, "gopher_rep_top_2_gram"))):
        doc = make_doc(ZH, language=lang)
        results = [f.filter(doc) for f in filters]
        assert next((r for r in results if r is not True), True) == expected


def test_final_touches_for_other_languages_only():
    broken = "cafÃ© au lait\n| |\n|||\nsuite"
    zh, en = make_doc(broken, language="zh"), make_doc(broken, language="en")
    docs = list(RemoveTableLines(["zh"]).run(FixEncoding(["zh"]).run([zh, en])))
    assert docs[0].text == "café au lait\n\n\nsuite" and docs[1].text == broken


def test_minhash_shingles_follow_the_language(tmp_path):
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature

    step = LanguageSignature(str(tmp_path), MinhashConfig(), {"zh": ("cmn_Hani", "cmn_Hani")})
    english = MinhashDedupSignature(str(tmp_path), config=MinhashConfig())
    step._segmenter = ("cmn_Hani", "cmn_Hani")
    assert len(step.get_shingles(ZH)) > 50  # jieba's words, not one "word" a line as English splitting gives
    assert len(english.get_shingles(ZH)) < 20
    step._segmenter = None
    assert (step.get_shingles("the same english text here and there") ==
            english.get_shingles("the same english text here and there")).all()


def test_english_only_builds_fineweb_phases(tmp_path):
    base = build_phases(config_from_dict({}), ["x.warc.gz"], tmp_path)[0].steps
    assert not any(isinstance(s, LanguageSignature) for s in base)
    steps = build_phases(config_from_dict({"langid": {"languages": ["en", "zh"]}}), ["x.warc.gz"], tmp_path)
    assert any(isinstance(s, LanguageSignature) for s in steps[0].steps)
    assert any(isinstance(s, FixEncoding) for s in steps[-1].steps)


# ------------------------------------------------------------ equivalence with datatrove on real pages


def texts_reaching_quality(languages: list[str], files: list[str]) -> list:
    """The documents ccpipe's quality stage sees: the base phase's steps before it, run in this process."""
    with tempfile.TemporaryDirectory() as tmp:
        steps = build_phases(config_from_dict({"langid": {"languages": languages}}), files, tmp)[0].steps
        cut = next(i for i, s in enumerate(steps) if isinstance(s, QualityFilters))
        data = None
        for step in steps[:cut]:
            data = step.run(data, 0, 1)
        return list(data)


PREFIXES = ("gopher_rep_", "fineweb_", "gopher_")


def datatrove_decision(profile, text: str):
    """FineWeb-2's chain as fineweb-2-pipeline.py builds it, datatrove's own filters; reasons prefixed as ccpipe's."""
    for f, prefix in zip(fineweb2_filters(profile), PREFIXES):
        result = f.filter(make_doc(text))
        if result is not True:
            reason = result[1]
            return False, reason if reason.startswith(prefix) else prefix + reason
    return True


def assert_same_decisions(label: str, files: list[str], min_docs: int) -> dict:
    profile = resolve_profiles((label,))[label]
    q = QualityFilters(profiles={label: profile})
    docs = [d for d in texts_reaching_quality([label], files) if d.metadata["language"] == label]
    assert len(docs) >= min_docs
    mismatches, kept = [], 0
    for doc in docs:
        expected = datatrove_decision(profile, doc.text)
        got = q.filter(make_doc(doc.text, language=label))
        kept += got is True
        if got != expected:
            mismatches.append((doc.metadata.get("url"), got, expected))
    assert mismatches == [], mismatches[:5]
    return {"reached": len(docs), "kept": kept}


@pytest.mark.slow
def test_chinese_decisions_equal_fineweb2_on_datatrove(corpus):
    files = sorted(str(p) for p in (corpus / "warc" / "zh").glob("*.warc.gz"))
    result = assert_same_decisions("zh", files, min_docs=100)
    print(result)


@pytest.mark.slow
def test_german_decisions_equal_fineweb2_on_datatrove(corpus):
    files = sorted(str(p) for p in (corpus / "warc" / "bench").glob("*.warc.gz"))
    result = assert_same_decisions("de", files, min_docs=500)
    print(result)


@pytest.mark.slow
def test_japanese_decisions_equal_fineweb2_on_datatrove(corpus):
    # ClueWeb09's Japanese shop pages (SudachiPy's words): tables of products, which FineWeb-2's filters drop
    files = sorted(str(p) for p in (corpus / "warc" / "other").glob("*.warc.gz"))
    result = assert_same_decisions("ja", files, min_docs=20)
    print(result)
