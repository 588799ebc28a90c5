"""`without_torch()`: spaCy imported inside it brings neither PyTorch nor its own command line; the shared English
words build spaCy's tokenizer without the components other packages register."""

import json
import subprocess
import sys

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
