"""A `Selector` selects what the XPath it stands for selects, in the same order: on tricky inline pages, on
real pages (raw and cleaned trees), and trafilatura extracts the same texts with it."""

import gzip
import json
import subprocess
import sys
from copy import deepcopy

import pytest
from lxml import html
from lxml.etree import XPath

from stages.readers.payload import decode_html
from stages.utils.selectors import Selector, attribute_guard, selector
from tests.conftest import ROOT

RE = {"re": "http://exslt.org/regular-expressions"}

PAGE = html.fromstring(
    "<html><body><div class='a-nav' id='x'>1<p id='nav-x' class='b'>2</p><p class='c'>3</p></div>"
    "<section role='Navigation'>4<div data-lp-replacement-content>5</div><div class=''>6</div></section>"
    "<div id='reply-1' class='post'>7<span class='reply-x' id='k'>8</span><ul id='comment-list'><li>9</li></ul>"
    "<ol class='comments'><li>10</li></ol><div class='Comments-area'>11<h1>t</h1></div></div>"
    "<article class='post-entry'><div class='FullText'>12</div><div class='fulltext'>13</div></article>"
    "<aside class='infinite-scroll'><h1>u</h1></aside><aside class='infinite-scroll'>14</aside>"
    "<!-- a comment --><div class='x  teaser-T'>15</div></body></html>")

PATHS = [
    # `@id|@class` is the first of them in the attribute list: <p id='nav-x' class='b'> passes, <span> not
    ".//*[self::div or self::p or self::span][starts-with(@id|@class, 'nav') or re:test(@id|@class, '^a-|^reply-')]",
    ".//*[self::section or self::div][contains(translate(@role, 'N', 'n'), 'nav') or @data-lp-replacement-content]",
    ".//*[self::div or self::p][@class='' or @class='c']",
    # a test of the tags in the second step, and one looking below the element
    ".//*[self::div or self::ul or self::ol][re:test(@id, '^comment') or re:test(@class, '^[Cc]omment')]"
    "[not(self::ol or self::ul) or re:test(@id, '^comment-')]",
    ".//*[self::div or self::aside][re:test(@class, 'infinite-?scroll|Comments')][not(.//h1)]",
    # the first passing child of each parent, the first of all, a flag
    ".//*[self::div or self::p][@class or @id][1]",
    "(.//*[self::div or self::p][re:test(@class, 'fulltext', 'i')])[1]",
    ".//*[self::div or self::p][re:test(@class, 'fulltext', 'i')]",
    ".//*[self::div][contains(translate(@class, 'T','t'), 'teaser') or contains(@class, '  ')]",
    # joined into one regular expression per attribute, but for a back-reference and global flags
    ".//*[self::div or self::p][re:test(@class, '(t)\\1') or re:test(@class, '(?i)FULLTEXT') or "
    "contains(@class, 'post') or starts-with(@id, 'nav') or re:test(@id, '^x$|^k')]",
]


def paths_of(elements):
    return [PAGE.getroottree().getpath(e) for e in elements]


@pytest.mark.parametrize("path", PATHS)
def test_a_selector_selects_what_its_xpath_selects(path):
    xpath = XPath(path, namespaces=RE)
    python = selector(xpath)
    assert isinstance(python, Selector) and python.path == path
    want = xpath(PAGE)
    assert want, "the page has what the path looks for"
    for context in (PAGE, PAGE.body, PAGE.body[2]):  # the context node itself is never selected
        assert paths_of(python(context)) == paths_of(xpath(context))
        assert paths_of(python(context)) == paths_of(python(context))  # remembered answers: the same


@pytest.mark.parametrize("path", [
    ".//*[@class='comments-title' or re:test(@id|@style, 'hidden')]",  # every element: left to libxml2
    ".//*[self::div][@id and @class]", ".//*[self::div][rel='me']", ".//*[self::div][@class][2]",
    "(.//*[self::div][@id])[1]|(.//main)[1]", ".//div[@class]", ".//*[self::div][contains(., 'x')]",
    ".//*[self::div][contains(translate(@class, 'AB', 'a'), 'a')]",
])
def test_other_shapes_are_left_to_libxml2(path):
    assert selector(XPath(path, namespaces=RE)) is None


@pytest.mark.parametrize("path", [
    ".//*[@class='comments-title' or starts-with(@id|@class, 'p') or re:test(@id|@style, 'hidden|^x$') or "
    "contains(@role, 'Nav') or @aria-hidden='true' or @data-lp-replacement-content]",
    ".//*[re:test(@class, 'nav|Comments')]",
])
def test_an_attribute_guard_keeps_what_an_xpath_over_every_element_selects(path):
    guarded = attribute_guard(path)
    assert guarded is not None and guarded.startswith(".//*[@")
    want = XPath(path, namespaces=RE)(PAGE)
    assert want and XPath(guarded, namespaces=RE)(PAGE) == want


@pytest.mark.parametrize("path", [
    ".//*[@class='x' or not(@id)]", ".//*[re:test(@class, 'x*')]", ".//*[contains(@class, '')]",  # true on bare
    ".//*[self::div or @id]", ".//*[@id][@class]", ".//*[@id][1]", ".//div[@id]", "//*[@id='x']",
])
def test_no_attribute_guard_where_a_bare_element_could_pass(path):
    assert attribute_guard(path) is None


def test_a_whole_document_goes_to_the_xpath():
    xpath = XPath(PATHS[2])
    assert selector(xpath)(PAGE.getroottree()) == xpath(PAGE.getroottree())


def sample_pages(corpus, count):
    pages = []
    for source in ("scrapinghub-aeb", "trafilatura"):
        lines = (corpus / "extraction" / source / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
        for line in lines[:: max(1, len(lines) // count)][:count]:
            with gzip.open(corpus / "extraction" / source / json.loads(line)["html_path"]) as f:
                pages.append(decode_html(f.read(), None) or "")
    return pages


def test_trafilatura_xpaths_select_the_same_on_real_pages(corpus):
    from trafilatura import xpaths
    from trafilatura.htmlprocessing import convert_tags, tree_cleaning
    from trafilatura.settings import Extractor
    from trafilatura.utils import load_html

    expressions = [x for value in vars(xpaths).values() if isinstance(value, list) for x in value
                   if isinstance(x, XPath) and "cc:test" not in x.path]
    selectors = [(x, s) for x in expressions if (s := selector(x)) is not None]
    assert len(selectors) >= 15  # OVERALL_DISCARD_XPATH[0], the comment and body XPaths, ...
    guarded = [(x, XPath(g, namespaces=RE)) for x in expressions if (g := attribute_guard(x.path))]
    assert len(guarded) >= 2  # OVERALL_DISCARD_XPATH[1], COMMENTS_DISCARD_XPATH[2]
    options = Extractor(precision=True, comments=False)
    found = 0
    for page in sample_pages(corpus, 15):
        tree = load_html(page)
        if tree is None:
            continue
        cleaned = convert_tags(tree_cleaning(deepcopy(tree), options), options)  # with <list>, <item>, ...
        for context in (tree, cleaned):
            for xpath, python in selectors + guarded:
                want = xpath(context)
                assert python(context) == want, xpath.path
                found += len(want)
    assert found > 500


EXTRACT = """
import json, sys
from stages.extractors.child import extract_text
from stages.utils import patches
pages = json.load(sys.stdin)
before = [extract_text(p, favor_precision=True, deduplicate=False) for p in pages]
applied = patches.apply(patches.EXTRACTION_PATCHES)
after = [extract_text(p, favor_precision=True, deduplicate=False) for p in pages]
print(json.dumps({"applied": applied, "texts": sum(bool(t) for t in before), "same": before == after}))
"""


def test_trafilatura_extracts_the_same_texts_with_the_extraction_patches(corpus):
    done = subprocess.run([sys.executable, "-c", EXTRACT], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          input=json.dumps(sample_pages(corpus, 20)))
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["applied"] == ["trafilatura element classes", "trafilatura python selectors",
                              "trafilatura xpath callbacks"]
    assert out["texts"] >= 30 and out["same"]
