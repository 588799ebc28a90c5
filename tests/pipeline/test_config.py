import subprocess
import sys

import pytest

from pipeline.plan.config import Config, ConfigError, load_config


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_are_fineweb():
    c = Config()
    assert c.langid.languages == ("en",) and c.langid.threshold == 0.65
    assert (c.dedup.n_grams, c.dedup.buckets, c.dedup.hashes_per_bucket) == (5, 14, 8)
    assert c.output.shard_tokens == 100_000_000
    assert c.input.max_payload_bytes == 1 << 20


def test_values_are_typed_and_frozen(tmp_path):
    c = load_config(write(tmp_path, "langid:\n  languages: [en, de]\n  threshold: 0.8\npii:\n  replacement: tag\n"))
    assert c.langid.languages == ("en", "de") and c.langid.threshold == 0.8 and c.pii.replacement == "tag"
    with pytest.raises(AttributeError):
        c.langid.threshold = 0.1


@pytest.mark.parametrize("text, message", [
    ("langid:\n  treshold: 0.7\n", "unknown key 'langid.treshold'"),
    ("langid:\n  threshold: high\n", "langid.threshold: expected a number"),
    ("langid:\n  threshold: 1.5\n", "langid.threshold: expected a value between 0.0 and 1.0"),
    ("pii:\n  replacement: hash\n", "pii.replacement: expected one of 'surrogate', 'tag'"),
    ("dedup:\n  enabled: 3\n", "dedup.enabled: expected true or false"),
    ("colour: blue\n", "unknown key 'colour'"),
    ("run: [1, 2]\n", "run: expected a mapping"),
    ("a: [\n", "not valid YAML"),
])
def test_bad_config_names_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_overrides_from_the_command_line(tmp_path):
    c = load_config(write(tmp_path, "run:\n  workers: 1\n"), {"run": {"workers": 4}, "input": {"max_records": 10}})
    assert c.run.workers == 4 and c.input.max_records == 10


def test_cli_bad_config_exits_2_before_any_work(tmp_path):
    path = write(tmp_path, "quality:\n  gopher: true\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--config", str(path), "--input", "x.warc.gz",
                           "--output", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown key 'quality.gopher'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()
