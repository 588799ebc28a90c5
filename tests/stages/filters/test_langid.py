import pickle
import re
import time

import fasttext

from pipeline.plan.checks import check_config
from pipeline.plan.config import config_from_dict
from stages.filters.langid import (
    _VOID,
    REUSED_LANGUAGE,
    SCORES_MAX_CHARS,
    LanguageID,
    LanguagePrecheck,
    LanguageScores,
    default_model_path,
    html_text,
    nesting_depth,
)
from stages.utils import loading
from tests.fixtures import html_page, make_doc

EN = "The weather was lovely this morning, so we walked along the river and talked about the book we were reading."
DE = "Das Wetter war heute Morgen herrlich, also sind wir am Fluss entlang spaziert und haben über das Buch gesprochen."


def test_english_kept_with_score():
    doc = make_doc(EN)
    assert LanguageID().filter(doc) is True
    assert doc.metadata["language"] == "en" and doc.metadata["language_score"] >= 0.65
    assert isinstance(doc.metadata["language_score"], float)


def test_other_language_dropped_but_labelled():
    doc = make_doc(DE)
    assert LanguageID().filter(doc) == (False, "language_not_kept")
    assert doc.metadata["language"] == "de"


def test_several_languages_and_threshold():
    lid = LanguageID(languages=("en", "de"), threshold=0.65)
    assert lid.filter(make_doc(DE)) is True
    assert LanguageID(threshold=1.0).filter(make_doc(EN)) == (False, "low_score")


def test_picklable_after_use_and_provenance():
    lid = LanguageID()
    lid.filter(make_doc(EN))
    clone = pickle.loads(pickle.dumps(lid))
    assert clone.filter(make_doc(EN)) is True
    assert len(lid.provenance()["sha256"]) == 64


def test_the_config_check_loads_the_model_the_steps_then_use(monkeypatch):
    # the check runs before the workers fork: they inherit its model instead of loading their own
    loads, load = [], fasttext.load_model
    monkeypatch.setattr(fasttext, "load_model", lambda path: loads.append(path) or load(path))
    monkeypatch.setattr(loading, "_LOADED", {})  # as in a fresh process
    check_config(config_from_dict({}))
    assert LanguagePrecheck().model is LanguageID().model and loads == [default_model_path()]


# ------------------------------------------------------------------ the pre-check before trafilatura


def test_language_scores_made_before_are_language_id_s_own():
    """LanguageScores predicts 16 texts at a time for language ID to take: the same labels and scores, the same
    decisions; a text over SCORES_MAX_CHARS and one already scored (a reused store's) are left as they are."""
    texts = [EN, DE, "Le temps était magnifique ce matin.", "x", EN + "\n" + DE] * 7 + [EN * (SCORES_MAX_CHARS // len(EN) + 1)]
    alone = [make_doc(t) for t in texts]
    ahead = [make_doc(t) for t in texts]
    ahead[3].metadata[REUSED_LANGUAGE] = ("zz", 0.5)
    scored = list(LanguageScores(("en", "de")).run(iter(ahead)))
    assert scored == ahead  # every document, in order
    assert ahead[3].metadata[REUSED_LANGUAGE] == ("zz", 0.5) and REUSED_LANGUAGE not in ahead[-1].metadata
    ahead[3].metadata.pop(REUSED_LANGUAGE)
    step = LanguageID(("en", "de"))
    for a, b in zip(alone, ahead):
        assert step.filter(a) == step.filter(b)
        assert (a.metadata["language"], a.metadata["language_score"]) == \
            (b.metadata["language"], b.metadata["language_score"])
        assert REUSED_LANGUAGE not in b.metadata


def test_html_text_skips_scripts_and_styles():
    html = "<html><head><style>p {color: red}</style></head><body><script>var a = 1;</script><p>Hello</p>" \
           "<noscript>enable it</noscript><div>world</div></body></html>"
    assert html_text(html) == "Hello world"


def test_precheck_drops_a_page_in_no_kept_language_with_scores():
    doc = make_doc(html_page("Wetter", DE, DE))
    assert LanguagePrecheck().filter(doc) == (False, "language_precheck")
    assert doc.metadata["drop_detail"].startswith("en ") and doc.metadata["drop_detail"].endswith(
        " < 0.01 on the HTML's text")
    assert LanguagePrecheck(languages=("en", "de")).filter(make_doc(html_page("Wetter", DE))) is True


def test_precheck_keeps_english_mixed_and_empty_pages():
    assert LanguagePrecheck().filter(make_doc(html_page("Weather", EN))) is True
    # a German page with an English paragraph scores well above 0.01 for English: trafilatura decides
    assert LanguagePrecheck().filter(make_doc(html_page("Wetter", DE, EN))) is True
    assert LanguagePrecheck().filter(make_doc("<html><body><script>x()</script></body></html>")) is True


def test_precheck_threshold_zero_keeps_everything():
    assert LanguagePrecheck(threshold=0.0).filter(make_doc(html_page("Wetter", DE, DE))) is True


def test_precheck_decides_a_batch_as_page_by_page():
    # the pre-check takes 16 pages at a time (fastText runs on them one after the other): the same decisions,
    # scores and details as one page at a time, in the same order
    pages = [html_page("Weather", EN), html_page("Wetter", DE, DE), "<html><body><script>x()</script></body></html>",
             html_page("Wetter", DE, EN), EN]
    docs = [make_doc(pages[i % 5], doc_id=f"d{i}", **({"text_source": "wet"} if i % 5 == 4 else {}))
            for i in range(37)]
    step = LanguagePrecheck()
    assert step.batch_size == 16 and LanguageID().batch_size == 1  # the reuse store reads what language ID stamped
    alone = [make_doc(d.text, doc_id=d.id, **d.metadata) for d in docs]
    decided = [step.filter(d) for d in alone]
    kept = list(step.run(iter(docs)))
    assert [d.id for d in kept] == [d.id for d, r in zip(alone, decided) if r is True]
    assert [d.metadata for d in docs] == [d.metadata for d in alone]
    assert 0 < step.stats["dropped"].total == len(docs) - decided.count(True)


def test_precheck_is_built_before_extraction_and_can_be_switched_off(tmp_path):
    from pipeline.plan.config import config_from_dict
    from pipeline.plan.phases import build_phases

    def base_steps(cfg):
        return [type(s).__name__ for s in build_phases(config_from_dict(cfg), ["a.warc.gz"], tmp_path)[0].steps]

    steps = base_steps({})
    assert steps.index("LanguagePrecheck") + 1 == steps.index("Extractor")
    assert "LanguagePrecheck" not in base_steps({"langid": {"precheck": False}})


def test_precheck_text_of_a_pathologically_deep_page_is_linear():
    # '<div>' * 200,000 cost 141 s in Lexbor's tree builder; the regex text beyond MAX_DEPTH costs milliseconds
    html = "<div>" * 200_000 + "<p>Gardening on balconies</p><script>var x = 1;</script>"
    started = time.process_time()
    assert html_text(html) == "Gardening on balconies"
    assert time.process_time() - started < 2
    assert nesting_depth("<ul>" + "<li>item<br>" * 5000 + "</ul>") == 1  # implied end tags do not nest


def test_nesting_depth_walks_the_tags_as_a_loop_would():
    def walked(html, limit):  # the tag by tag walk nesting_depth replaces
        depth = deepest = 0
        for closing, name in re.findall(r"<(/?)([A-Za-z][A-Za-z0-9]*)", html):
            if closing:
                depth = max(depth - 1, 0)
            elif name.lower() not in _VOID:
                depth += 1
                deepest = max(deepest, depth)
                if depth > limit:
                    break
        return deepest

    pages = ["</div></span>" * 3 + "<DIV><b>x</b><br><p>" * 6 + "</div>" * 9 + "<i><li><a>" * 4,
             "<a><b></b></a>" * 8, "<div>" * 7 + "</div>" * 7 + "<section>" * 5, "x < y </ z <div>" * 8]
    for html in pages:
        for limit in (1, 3, 5, 6, 7, 20):
            assert nesting_depth(html, limit) in (walked(html, limit), 0), (html, limit)
            if html.count("<") - html.count("</") > limit:  # cannot be ruled out by counting: walked
                assert nesting_depth(html, limit) == walked(html, limit), (html, limit)
