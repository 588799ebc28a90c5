"""Importing `stages` patches nothing; `stages.utils.patches.apply()` patches, once, and only tested versions."""

import json
import os
import subprocess
import sys

from stages.utils import patches, trafilatura_patches
from tests.conftest import ROOT

STATE = """
import functools, json, pkgutil, importlib
import stages
for m in pkgutil.walk_packages(stages.__path__, "stages."):
    importlib.import_module(m.name)
from datatrove.utils import _import_utils
import datatrove.pipeline.dedup.minhash as minhash
from loguru._better_exceptions import ExceptionFormatter
from tqdm import tqdm
def state():
    return {"datatrove": _import_utils._is_distribution_available.__module__,
            "loguru": isinstance(ExceptionFormatter.__dict__["_get_lib_dirs"].__func__, functools._lru_cache_wrapper),
            "minhash": minhash.tqdm is not tqdm}
before = state()
from stages.utils import patches
%s
print(json.dumps({"before": before, "applied": applied, "after": state()}))
"""


def run_state(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", STATE % code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _tested_here(distribution: str) -> bool:
    version = patches._version(distribution) or ""
    return version.startswith(tuple(v + "." for v in patches.TESTED[distribution]))


def test_importing_stages_patches_nothing_and_apply_patches_once():
    out = run_state("applied = patches.apply(); applied = patches.apply()")
    assert out["before"] == {"datatrove": "datatrove.utils._import_utils", "loguru": False, "minhash": False}
    # every patch whose library is a version it was measured on (an upgrade leaves one out: slower, not wrong)
    assert out["applied"] == sorted(name for name, (dist, _) in patches.PATCHES.items() if _tested_here(dist))
    assert out["after"] == {"datatrove": "stages.utils.patches" if _tested_here("datatrove") else
                            "datatrove.utils._import_utils", "loguru": _tested_here("loguru"),
                            "minhash": _tested_here("datatrove")}


def test_an_untested_version_is_left_unpatched():
    out = run_state("patches.TESTED = {'datatrove': ('0.0',), 'loguru': ('0.0',)}; applied = patches.apply()")
    assert out["applied"] == []
    assert out["after"] == out["before"]


def test_the_distribution_folders_name_the_installed_distributions():
    # the folder names on sys.path, as datatrove's check reads them; names in either spelling
    assert patches._distribution_folders() == patches._distribution_names()
    assert patches._is_distribution_available("fasttext_predict") and patches._is_distribution_available("PyArrow")
    assert patches._is_distribution_available("no-such-distribution-ccpipe") is None


def test_rewritten_xpath_skips_the_python_call_only_where_its_answer_is_known():
    tests = trafilatura_patches.RegexTests()
    path = "//*[re:test(@id|@class, '^nav|menu') or re:test(@style, 'x*') or re:test(@id, '^nav|menu')]"
    # the first test is false on an element with neither attribute: guarded; 'x*' matches "": left unguarded
    assert trafilatura_patches.rewritten_xpath(path, tests) == \
        "//*[((@id or @class) and cc:test(@id|@class, 0)) or cc:test(@style, 1) or ((@id) and cc:test(@id, 0))]"
    # EXSLT's answer: re.search in the first value, or in "" (remembered per value)
    assert [tests(None, v, 0) for v in (["nav-top"], ["x menu", "y"], ["top nav"], [])] == [True, True, False, False]
    assert tests(None, [], 1) and tests(None, ["nav-top"], 0.0)


SELECTIONS = """
import json
from lxml import html
from lxml.etree import XPath
from trafilatura import xpaths
from stages.utils import patches
page = html.fromstring("<html><body><div id='nav-top'>a</div><div class='x menu'>b<p class='byline'>c</p></div>"
                       "<section style='display:none'>d</section><div>e<span class='share-this'>f</span></div>"
                       "<div id='comments' class='post-comments'>g<ul class='comment-list'><li>h</li></ul></div>"
                       "<p aria-hidden='true' id='hidden'>i</p><div class=''>j</div><h1 class='entry-title'>k</h1>"
                       "<div class='tags'><a href='/t'>l</a></div></body></html>")
lists = {name: list(v) for name, v in vars(xpaths).items() if isinstance(v, list) and v and all(isinstance(x, XPath) for x in v)}
def selected(v):
    return [[page.getroottree().getpath(e) for e in x(page)] for x in v]
before = {name: selected(v) for name, v in lists.items()}
applied = patches.apply(patches.EXTRACTION_PATCHES)
after = {name: selected(getattr(xpaths, name)) for name in lists}
replaced = sum(a is not b for name, v in lists.items() for a, b in zip(v, getattr(xpaths, name)))
print(json.dumps({"applied": applied, "same": before == after, "replaced": replaced,
                  "found": sum(len(s) for v in before.values() for s in v)}))
"""


def test_the_extraction_patch_keeps_what_each_trafilatura_xpath_selects():
    done = subprocess.run([sys.executable, "-c", SELECTIONS], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["applied"] == ["trafilatura element classes", "trafilatura justext stoplist",
                              "trafilatura python selectors", "trafilatura xpath callbacks"]
    assert out["replaced"] >= 10  # OVERALL_DISCARD_XPATH's, the comment XPaths', ...
    assert out["found"] >= 10 and out["same"]  # the page has what they look for


CLASSES = """
import json
from lxml import html
from stages.utils import patches
from stages.utils.trafilatura_patches import html_element_lookup
from trafilatura.utils import HTML_PARSER
PAGE = ("<html><body><FORM action='x'><Input name='a'><select><option>1</select><textarea>t</textarea>"
        "<label>l</label></FORM><svg:rect/><p>x<!-- c --><?pi x?>&amp;</p></body></html>")
def classes(parser):
    tree = html.fromstring(PAGE, parser=parser)
    return [[e.tag if isinstance(e.tag, str) else str(e.tag), type(e).__name__] for e in tree.iter()]
plain = html.HTMLParser(collect_ids=False, default_doctype=False, encoding="utf-8")  # comments kept
before = classes(HTML_PARSER) + classes(plain)
applied = patches.apply(patches.EXTRACTION_PATCHES)
plain.set_element_class_lookup(html_element_lookup())
print(json.dumps({"applied": applied, "before": before, "after": classes(HTML_PARSER) + classes(plain)}))
"""


def test_element_classes_from_lxml_s_c_lookup_are_lxml_html_s():
    done = subprocess.run([sys.executable, "-c", CLASSES], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert "trafilatura element classes" in out["applied"]
    names = {name for _, name in out["before"]}
    assert {"FormElement", "InputElement", "SelectElement", "TextareaElement", "LabelElement", "HtmlElement",
            "HtmlComment"} <= names
    assert out["after"] == out["before"]


STOPLIST = """
import json
from justext.core import define_stoplist
from trafilatura import external
from stages.utils import patches
%s
print(json.dumps({"applied": patches.apply(patches.EXTRACTION_PATCHES), "words": sorted(define_stoplist(words)),
                  "size": len(words), "type": type(external.JT_STOPLIST).__name__}))
"""


def test_justext_s_stoplists_come_from_the_cache_as_trafilatura_joins_them(tmp_path):
    """The stoplist of trafilatura's justext fallback from ccpipe's cache: the words trafilatura's own
    `jt_stoplist_init` gives, first read from justext (and cached), then from the cache, in new processes."""
    env = dict(os.environ, CCPIPE_CACHE=str(tmp_path))

    def words(code: str) -> dict:
        done = subprocess.run([sys.executable, "-c", STOPLIST % code], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    unpatched = words("words = external.jt_stoplist_init()")  # before apply(): trafilatura's
    assert unpatched["size"] > 100_000 and not list(tmp_path.rglob("*.txt"))
    patched = "patches.apply(patches.EXTRACTION_PATCHES); words = external.jt_stoplist_init()"
    first = words(patched)  # reads justext's files, writes the cache
    assert "trafilatura justext stoplist" in first["applied"]
    [cached] = tmp_path.rglob("stoplists-*.txt")
    second = words(patched)  # from the cache
    assert first["type"] == second["type"] == "frozenset" and first["size"] == unpatched["size"]
    assert first["words"] == second["words"] == unpatched["words"]
    cached.write_text("not\nthe\nwords")  # whatever the file holds is what it reads: the key is both versions
    assert words(patched)["size"] == 3


PRESIDIO = """
import json, regex
from stages.utils import patches
from stages.utils.loading import without_torch
%s
compiled = []
compile = regex.compile
regex.compile = lambda pattern, flags=0, **kw: compiled.append(pattern) or compile(pattern, flags, **kw)
with without_torch():
    from presidio_analyzer import Pattern
    from stages.pii.analyzer import build_analyzer
try:
    Pattern("ours", "(", 0.5)
    checked = False
except ValueError:
    checked = True
found = build_analyzer().analyze("mail jane.doe@uni-bonn.de, call +49 30 2019433", language="en")
print(json.dumps({"compiled": len(compiled), "checked": checked, "found": sorted(r.entity_type for r in found)}))
"""


def test_presidio_s_own_patterns_go_unchecked_and_every_other_is_checked():
    def run(code: str) -> dict:
        done = subprocess.run([sys.executable, "-c", PRESIDIO % code], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    patched, unpatched = run("patches.apply()"), run("")
    assert patched["checked"] and unpatched["checked"]  # a pattern made outside presidio is still checked
    assert patched["found"] == unpatched["found"] == ["EMAIL_ADDRESS", "PHONE_NUMBER"]
    assert patched["compiled"] + 150 < unpatched["compiled"]  # presidio's 173 built-in patterns, not compiled
