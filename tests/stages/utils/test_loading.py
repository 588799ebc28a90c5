"""`without_torch()`: spaCy imported inside it brings neither PyTorch nor its own command line."""

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
