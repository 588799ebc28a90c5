"""What a newcomer meets in the first hour (issue 20), through the real command line: a train and a validation
shard, a funnel that reads top to bottom (run, `audit summary`, report), progress with records and an ETA,
`--languages`, the GPT-2 note, the example configs, and the messages of `audit diff`, a rerun with other
inputs and a JSON file that is no tokenizer."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.finalize.shards import read_tokens
from tests.readme_examples import README, blocks, rewrite, run_sample, same

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "pipeline" / "sample"
EXAMPLES = ROOT / "pipeline" / "examples"
EOT = 50256


def ccpipe(*args, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True, text=True,
                          check=False, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """`make run`'s command with `--languages en,zh`, progress bars on: (run directory, the process)."""
    out = tmp_path_factory.mktemp("first-hour") / "run"
    proc = ccpipe("run", "--input", SAMPLE, "--output", out, "--workers", "2", "--languages", "en,zh")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def _table(text: str, columns: int) -> list[list[str]]:
    """The rows of a funnel table: a stage name then `columns` integers."""
    pattern = re.compile(r"^(\w+)" + r"\s+(\d+)" * columns + r"\b")
    return [list(m.groups()) for line in text.splitlines() if (m := pattern.match(line)) and m.group(1) != "kept"]


def test_every_language_with_two_documents_gets_a_train_and_a_validation_shard(sample):
    out, _ = sample
    summary = yaml.safe_load((out / "summary.json").read_text())
    assert summary["kept_by_language"]["en"] >= 2 and summary["kept_by_language"]["zh"] == 1
    # a language of one document (the sample's one Chinese page) has nothing to train on: validation only
    assert sorted(p.name for p in (out / "bin").iterdir()) == ["en_train_000001.bin", "en_val_000000.bin",
                                                              "zh_val_000000.bin"]
    summary["tokens"] = summary["tokens_by_language"]["en"]
    val, train = read_tokens(out / "bin" / "en_val_000000.bin"), read_tokens(out / "bin" / "en_train_000001.bin")
    assert len(val) + len(train) == summary["tokens"]
    assert 0 < len(val) <= 0.1 * summary["tokens"]  # output.val_fraction: 10 % at most
    assert val[0] == EOT and train[0] == EOT  # whole documents: the training shard starts with one
    assert int(np.count_nonzero(val == EOT)) >= 1


def test_funnel_reads_in_execution_order_each_in_the_previous_out(sample):
    out, proc = sample
    rows = _table(proc.stdout, 2)  # stage, in, dropped
    assert [r[0] for r in rows][:5] == ["reader", "blocklist", "precheck", "extract", "langid"]
    for (_, a_in, a_dropped), (_, b_in, _) in zip(rows, rows[1:]):
        assert int(b_in) == int(a_in) - int(a_dropped), rows
    precheck = next(line for line in proc.stdout.splitlines() if line.startswith("precheck"))
    assert "language_precheck" in precheck
    langid = next(line for line in proc.stdout.splitlines() if line.startswith("langid"))
    assert "language_precheck" not in langid

    audit = ccpipe("audit", "summary", out)
    assert audit.returncode == 0, audit.stderr
    rows = _table(audit.stdout, 3)  # stage, in, kept, dropped
    assert [r[0] for r in rows][:5] == ["reader", "blocklist", "precheck", "extract", "langid"]
    for a, b in zip(rows, rows[1:]):
        assert int(b[1]) == int(a[2]), rows  # in = the row before's kept

    report = ccpipe("audit", "report", out)
    assert report.returncode == 0, report.stderr
    page = (out / "report.html").read_text()
    stages = re.findall(r"<tr><td>(\w+)</td><td>(\w+)</td>", page)
    assert ("precheck", "language_precheck") in stages and ("langid", "language_precheck") not in stages
    order = list(dict.fromkeys(s for s, _ in stages))
    assert order.index("blocklist") < order.index("precheck") < order.index("langid")


def test_report_marks_each_languages_own_threshold(sample):
    out, _ = sample
    report = ccpipe("audit", "report", out, "-o", out / "thresholds.html")
    assert report.returncode == 0, report.stderr
    page = (out / "thresholds.html").read_text()
    # English at langid.threshold, Chinese at its FineWeb-2 profile's language score (cmn_Hani: 0.692)
    hist = page[page.index('id="hist-language-score"'):]
    hist = hist[:hist.index("</svg>")]
    labels = re.findall(r'class="threshold"[^>]*/><text[^>]*>([^<]+)</text>', hist)
    assert sorted(labels) == ["en 0.65", "zh 0.692"], labels


def test_progress_shows_records_read_records_per_second_and_an_eta(sample):
    _, proc = sample
    lines = proc.stderr.replace("\r", "\n").splitlines()
    base = [line for line in lines if line.startswith("base")]
    done = re.compile(r"100%, 2/2 tasks, 72 records read, \d+ records/s \[\d\d:\d\d, ETA")
    assert any(done.search(line) for line in base), base[-3:]
    final = [line for line in lines if line.startswith("final")]
    assert final and re.search(r"100%, 2/2 tasks \[\d\d:\d\d, ETA", final[-1]), final[-1:]


def test_languages_flag_and_the_gpt2_note_said_once(sample, tmp_path):
    out, proc = sample
    assert yaml.safe_load((out / "config.resolved.yaml").read_text())["config"]["langid"]["languages"] == ["en", "zh"]
    notes = [line for line in proc.stderr.replace("\r", "\n").splitlines() if "note:" in line]
    assert len(notes) == 1 and "keeping zh with GPT-2's English vocabulary" in notes[0], notes
    assert "cl100k_base or o200k_base" in notes[0] and "~45 % fewer tokens" in notes[0]
    bad = ccpipe("run", "--input", SAMPLE, "--output", tmp_path / "x", "--languages", "zh,xx")
    assert bad.returncode == 2 and bad.stderr.startswith("ccpipe: config error: --languages: 'xx'"), bad.stderr
    assert not (tmp_path / "x").exists()


def test_rerun_with_other_inputs_names_the_input_change_first(sample):
    out, _ = sample
    one = sorted(SAMPLE.glob("*.warc.gz"))[0]
    proc = ccpipe("run", "--input", one, "--output", out, "--no-progress", "--languages", "en,zh")
    assert proc.returncode == 2, proc.stderr
    # the change the user made, not its consequence (one task fewer)
    assert "or task count: other input files (2 -> 1 files; 1 no longer read, e.g. " in proc.stderr, proc.stderr
    assert "the task count changed" not in proc.stderr


def test_audit_diff_counts_the_records_of_one_run_apart(sample, tmp_path):
    out, _ = sample
    one = sorted(SAMPLE.glob("*.warc.gz"))[0]
    other = tmp_path / "one"
    proc = ccpipe("run", "--input", one, "--output", other, "--no-progress", "--languages", "en,zh")
    assert proc.returncode == 0, proc.stderr
    diff = ccpipe("audit", "diff", out, other)
    assert diff.returncode == 0, diff.stderr
    first = diff.stdout.splitlines()[0]
    m = re.fullmatch(r"(\d+) of (\d+) records in both runs changed fate; (\d+) record\(s\) only in the first run, "
                     r"(\d+) only in the second", first)
    assert m, first
    changed, both, only_a, only_b = map(int, m.groups())
    records = [yaml.safe_load((d / "summary.json").read_text())["records_total"] for d in (out, other)]
    assert both == records[1] and only_a == records[0] - records[1] and only_b == 0 and changed <= both


def test_a_valid_json_that_is_no_tokenizer_says_so(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"version": "1.0", "settings": {"a": 1}}')
    proc = ccpipe("run", "--input", SAMPLE, "--output", tmp_path / "out", "--tokenizer", path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert f"--tokenizer: {path}: not a Hugging Face tokenizer.json (valid JSON, but no \"model\" section" \
        in proc.stderr and "expected `,`" not in proc.stderr, proc.stderr


def test_readme_examples_are_a_runs_output(tmp_path):
    """README.md's `make run` funnel and `bin/` listing are what the command prints and writes today: regenerate
    them with `python -m tests.readme_examples` when the output changes on purpose."""
    stdout, run = run_sample(tmp_path)
    text = README.read_text()
    generated = blocks(stdout, run)
    assert same(rewrite(text, generated), text), "README.md's examples are stale: run python -m tests.readme_examples"
    assert "en_train_000001.bin" in generated["sample-bin"] and "precheck" in generated["make-run"]


# ---- the example configs: each one run ------------------------------------------------------------------

# example -> (inputs, max records per file, the languages it keeps, the .bin magic); small, to stay lean: one
# sample file's first 12 records keep 3 English documents
EXAMPLE_RUNS = {
    "fineweb-en.yaml": (["sample"], 12, {"en"}, 20240520),
    "fineweb-recipe.yaml": (["sample"], 12, {"en"}, 20240520),
    "zh-cl100k.yaml": (["zh"], 4, {"zh"}, 20240801),
    "en-zh.yaml": (["zh", "sample"], 6, {"en", "zh"}, 20240801),
}


def test_every_example_config_has_a_run():
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(EXAMPLE_RUNS)


@pytest.mark.parametrize("name", sorted(EXAMPLE_RUNS))
def test_example_config_runs(name, corpus, tmp_path):
    inputs, max_records, languages, magic = EXAMPLE_RUNS[name]
    first = {"sample": SAMPLE / "ccpipe-sample-00000.warc.gz", "zh": corpus / "warc" / "zh" / "zh-dev-00000.warc.gz"}
    paths = [first[i] for i in inputs]
    env = {"CCPIPE_TOKENIZERS": str(corpus / "tokenizers" / "cl100k_base")}
    out = tmp_path / "out"
    proc = ccpipe("run", "--config", EXAMPLES / name, "--input", *paths, "--output", out, "--no-progress",
                  "--max-records", max_records, "--workers", len(paths), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # jieba's "Building prefix dict ... Loading model cost 3.9 seconds" is not printed, once per worker or at all
    assert "prefix dict" not in proc.stderr and "Loading model" not in proc.stderr, proc.stderr
    summary = yaml.safe_load((out / "summary.json").read_text())
    assert set(summary["kept_by_language"]) == languages and summary["conservation_ok"]
    for lang in languages:
        shards = sorted((out / "bin").glob(f"{lang}_*.bin"))
        assert [p.name for p in shards] == [f"{lang}_train_000001.bin", f"{lang}_val_000000.bin"]
        assert int(np.fromfile(shards[0], dtype="<i4", count=1)[0]) == magic
