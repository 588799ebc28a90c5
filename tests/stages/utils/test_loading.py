"""`without_torch()`: spaCy imported inside it brings neither PyTorch nor its own command line; the shared English
words build spaCy's tokenizer without the components other packages register; a fastText model's labels come
back from the cache directory without loading it."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

IMPORT = """
import json, sys
from stages.utils.loading import without_torch
with without_torch():
    import spacy
    words = [t.text for t in spacy.blank("en")("Don't stop, U.S. folks!")]
left_out = [m for m in ("torch", "spacy.cli", "weasel", "httpx", "typer") if m in sys.modules]
info = spacy.info(silent=True)  # imports the command line when asked
import spacy.cli
print(json.dumps({"words": words, "left_out": left_out, "info": isinstance(info, dict),
                  "cli": callable(spacy.cli.download)}))
"""


def test_spacy_imports_without_torch_or_its_command_line():
    done = subprocess.run([sys.executable, "-c", IMPORT], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout)
    assert found == {"words": ["Do", "n't", "stop", ",", "U.S.", "folks", "!"], "left_out": [], "info": True,
                     "cli": True}


WORDS = """
import json, sys
from stages.text.words import shared_words
words = shared_words()("Don't stop, U.S. folks! 2019-10 e-mail")
import spacy
print(json.dumps({"words": words, "presidio": "presidio_analyzer" in sys.modules,
                  "plugins": spacy.util.registry._entry_point_factories.entry_points}))
"""


def test_the_shared_english_words_import_no_spacy_plugin():
    """presidio registers a spaCy component: every new spaCy pipeline would import presidio (0.4 s)."""
    done = subprocess.run([sys.executable, "-c", WORDS], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"words": ["Do", "n't", "stop", ",", "U.S.", "folks", "!", "2019", "-", "10", "e",
                                                 "-", "mail"], "presidio": False, "plugins": True}


def test_fasttext_labels_are_read_back_from_the_cache(tmp_path, monkeypatch):
    from stages.filters.langid import LanguageID, default_model_path
    from stages.utils import loading

    monkeypatch.setenv("CCPIPE_CACHE", str(tmp_path))
    model = default_model_path()
    labels = loading.fasttext_labels(model)
    assert len(labels) == 176 and "__label__en" in labels and "__label__zh" in labels

    def no_load(path):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(loading, "fasttext_model", no_load)
    assert loading.fasttext_labels(model) == labels  # from the cache: no load
    step = LanguageID(("en",))
    step.model_unused = True
    step.warm()  # a reuse run's language ID, handed every score: nothing loaded
    with pytest.raises(AssertionError):
        LanguageID(("en",)).warm()
    bogus = tmp_path / "bogus.bin"
    bogus.write_bytes(b"not a model")
    monkeypatch.undo()
    with pytest.raises(ValueError):
        loading.fasttext_labels(str(bogus))
