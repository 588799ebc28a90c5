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


CORPUS_ABSENT = "shared corpus not found"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (`CI=true`), a skipped test is a failure: CI installs every tool the tests need (Slurm, Ray,
    moto, Chromium, torch). The one allowed skip is the shared corpus being absent altogether."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI", "").lower() in ("1", "true", "yes") and CORPUS.is_dir():
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if CORPUS_ABSENT not in reason and not hasattr(report, "wasxfail"):
            report.outcome = "failed"
            report.longrepr = f"skipped in CI, which counts as a failure: {reason}"
