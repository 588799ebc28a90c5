import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("CCPIPE_CORPUS", ROOT.parent / "shared" / "corpus"))


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared test corpus (../shared/corpus, or $CCPIPE_CORPUS); tests that need it skip without it."""
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS} (set CCPIPE_CORPUS to its location)")
    return CORPUS


@pytest.fixture(scope="session")
def gpt2_tiktoken(corpus) -> Path:
    path = corpus / "tokenizers" / "gpt2" / "gpt2.tiktoken"
    if not path.is_file():
        pytest.skip(f"GPT-2 vocabulary not found at {path}")
    return path
