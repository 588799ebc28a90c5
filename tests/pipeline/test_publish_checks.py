"""A run that does not add up is never published: `summary.json` says what failed, the command exits 1, and
nothing reaches the `--output` URL (it used to be uploaded first, then the run exited 1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "pipeline" / "sample"

pytestmark = pytest.mark.timeout(300)


def ccpipe(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=280)


def test_a_run_whose_books_do_not_balance_is_not_published(tmp_path):
    published, work = tmp_path / "published", tmp_path / "work"
    for sub in ("bin", "ledger", "parquet/en"):  # a local "URL": fsspec's put_file makes no folders there
        (published / sub).mkdir(parents=True)
    run = ccpipe("run", "--input", SAMPLE / "ccpipe-sample-00001.warc.gz", "--output", f"file://{published}",
                 "--work-dir", work, "--no-progress")
    assert run.returncode == 0, run.stderr
    assert json.loads((published / "summary.json").read_text())["conservation_ok"]

    # the reader's report now counts one record more than the ledger holds: finalizing again cannot balance
    report = work / "work" / "files" / "00000.json"
    files = json.loads(report.read_text())
    files["files"][0]["responses"] += 1
    report.write_text(json.dumps(files))
    for path in [p for p in published.rglob("*") if p.is_file()]:
        path.unlink()
    final = ccpipe("finalize", work)
    assert final.returncode == 1, final.stderr
    assert json.loads((work / "summary.json").read_text())["conservation_ok"] is False
    assert [p for p in published.rglob("*") if p.is_file()] == [], "published a run that does not add up"
