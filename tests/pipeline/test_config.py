import json
import resource
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


def _alias_bomb() -> str:
    """'Billion laughs' in 9 levels of 9 aliases: ~320 bytes standing for 9^9 strings."""
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _limit_memory() -> None:
    # in the child, before exec: an unbounded read fails with MemoryError instead of eating the machine
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


@pytest.mark.parametrize("content, needle", [
    (_alias_bomb(), "aliases are expanded"),
    (b"\xff\xfeinput: 1\n", "not UTF-8 text (byte 0xff at offset 0)"),
    ("- input\n- langid\n", "got a list"),
    ("just a string\n", "got a single value"),
    (None, "larger than 1024 KiB"),  # --config /dev/zero
])
def test_hostile_config_files_are_one_line_exit_2(tmp_path, content, needle):
    """Each used to hang (the alias bomb: over 60 s), end in a traceback (exit 1), or read until the machine ran
    out of memory (/dev/zero: 21 GB). Loading them in-process takes < 0.01 s and ~1 MB (tracemalloc)."""
    if content is None:
        path = "/dev/zero"
    else:
        path = tmp_path / "c.yaml"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--config", str(path), "--input", "x.warc.gz",
                           "--output", str(out)], capture_output=True, text=True, timeout=60, preexec_fn=_limit_memory)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert needle in proc.stderr and str(path) in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("flag", ["--config", "--config="])
def test_a_hostile_config_file_is_refused_before_the_heavy_imports(tmp_path, flag):
    """The refusal comes before the command modules import datatrove, spaCy and the rest (~2.3 s and ~140 MB
    of a command's start): 0.3 s and ~20 MB for the alias bomb, /dev/zero, bad bytes and a list."""
    path = tmp_path / "c.yaml"
    path.write_text(_alias_bomb())
    args = ["run", *([flag, str(path)] if flag == "--config" else [flag + str(path)]), "--input", "x", "--output",
            str(tmp_path / "out")]
    code = ("import json, sys; from pipeline.cli import main; rc = main(%r); "
            "print(json.dumps([rc, sorted(m for m in ('datatrove', 'spacy', 'pyarrow', 'numpy') if m in sys.modules)]))")
    proc = subprocess.run([sys.executable, "-c", code % args], capture_output=True, text=True, timeout=60)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [2, []], proc.stderr[-2000:]
    assert "aliases are expanded" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
