"""`ccpipe release build|verify|diff`: a release of the bench corpus, built once per session and reused."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.cli import build_parser
from pipeline.finalize.shards import read_tokens, write_split_shards
from pipeline.release.build import build_release, validation_mask
from pipeline.release.diff import diff_manifests, format_diff
from pipeline.release.manifest import ReleaseError, read_manifest

VALIDATION_FRACTION = 0.1  # ~25 of the bench corpus's 256 documents
SHARD_TOKENS = 100_000  # 3 training shards


def ccpipe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, timeout=900, check=False)


def bench_release(tmp_path_factory, corpus: Path, tokenizer: Path) -> tuple[Path, Path]:
    """(run dir, release dir) of the bench corpus, run and packaged in one go with 2 workers.

    Built once per session: the test modules that need it call this, and find it built.
    """
    root = tmp_path_factory.getbasetemp() / "bench-release"
    run, release = root / "run", root / "bench-1.0.0"
    if not (root / "done").exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        proc = ccpipe("release", "build", "--input", str(corpus / "warc" / "bench"), "--tokenizer", str(tokenizer),
                      "--keep-run", str(run), "--name", "bench", "--version", "1.0.0", "--output", str(release),
                      "--validation-fraction", str(VALIDATION_FRACTION), "--shard-tokens", str(SHARD_TOKENS),
                      "--workers", "2", "--no-progress")
        assert proc.returncode == 0, proc.stderr[-3000:]
        (root / "done").write_text(proc.stdout)
    return run, release


@pytest.fixture(scope="module")
def bench(tmp_path_factory, corpus, gpt2_tiktoken):
    return bench_release(tmp_path_factory, corpus, gpt2_tiktoken)


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def problems_named(stderr: str) -> set[str]:
    """The files a failed `release verify` names: each problem line is `path: what differs`."""
    return {line.split(":", 1)[0] for line in stderr.splitlines() if not line.startswith("ccpipe:")}


# ---------------------------------------------------------------------------------------------- unit


def test_release_commands_have_help_ending_with_an_example():
    release = build_parser()._subparsers._group_actions[0].choices["release"]
    commands = [release] + list(release._subparsers._group_actions[0].choices.values())
    assert {c.prog.split()[-1] for c in commands} == {"release", "build", "verify", "diff"}
    for command in commands:
        text = command.format_help().rstrip()
        assert command.description, f"{command.prog}: no description"
        example = text.rsplit("example:", 1)[1].strip()
        assert example.startswith(f"ccpipe release {'' if command is release else command.prog.split()[-1]}".rstrip())


def test_validation_split_is_a_function_of_the_text():
    texts = [f"document number {i}" for i in range(20_000)]
    small, large = validation_mask(texts, 0.05), validation_mask(texts, 0.1)
    assert abs(large.mean() - 0.1) < 0.01 and abs(small.mean() - 0.05) < 0.01
    assert not (small & ~large).any()  # a larger fraction only moves documents into validation
    assert (validation_mask(texts[::-1], 0.1) == large[::-1]).all()  # order does not matter
    first = int.from_bytes(hashlib.sha256(texts[0].encode()).digest()[:8], "big")
    assert large[0] == (first < 0.1 * 2**64)


def test_split_shards_put_validation_first(tmp_path):
    val, train = tmp_path / "v.tokens", tmp_path / "t.tokens"
    np.arange(7, dtype="<u2").tofile(val)
    np.arange(100, 112, dtype="<u2").tofile(train)
    written = write_split_shards([val], [train], tmp_path / "bin", "xx", shard_tokens=5)
    assert written == [{"file": "xx_val_000000.bin", "tokens": 7}, {"file": "xx_train_000001.bin", "tokens": 5},
                       {"file": "xx_train_000002.bin", "tokens": 5}, {"file": "xx_train_000003.bin", "tokens": 2}]
    assert list(read_tokens(tmp_path / "bin" / "xx_val_000000.bin")) == list(range(7))
    assert sorted(p.name for p in (tmp_path / "bin").iterdir()) == sorted(w["file"] for w in written)  # nothing aside


def test_bad_options_are_refused_before_any_work(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(ReleaseError, match="expected X.Y.Z"):
        build_release(tmp_path / "run", tmp_path / "rel", "n", "1.0")
    with pytest.raises(ReleaseError, match="between 0 and 1"):
        build_release(tmp_path / "run", tmp_path / "rel", "n", "1.0.0", validation_fraction=1.5)
    with pytest.raises(ReleaseError, match="not a finished ccpipe run"):
        build_release(tmp_path / "run", tmp_path / "rel", "n", "1.0.0")
    assert not (tmp_path / "rel").exists()
    proc = ccpipe("release", "verify", str(tmp_path / "nothing"))
    assert proc.returncode == 2 and "no such release directory" in proc.stderr


# ---------------------------------------------------------------------------------------------- bench release


@pytest.mark.slow
def test_bench_release_holds_the_run_split_by_hash(bench):
    run, release = bench
    summary = json.loads((run / "summary.json").read_text())
    m = read_manifest(release)
    assert m["totals"]["documents"] == summary["kept"] and m["totals"]["tokens"] == summary["tokens"]
    rows = {split: [r for p in sorted((release / "data" / "en").glob(f"{split}-*.parquet"))
                    for r in pq.read_table(p).to_pylist()] for split in ("train", "validation")}
    run_rows = [r for p in sorted((run / "parquet" / "en").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    in_val = validation_mask([r["text"] for r in run_rows], VALIDATION_FRACTION)
    for split, wanted in (("train", ~in_val), ("validation", in_val)):
        assert [r["id"] for r in rows[split]] == [r["id"] for r, w in zip(run_rows, wanted) if w]  # run order kept
    assert 10 < len(rows["validation"]) < 50
    # the validation .bin is shard 0 and holds exactly the validation documents' tokens, each after <|endoftext|>
    val_tokens = read_tokens(release / "bin" / "en_val_000000.bin")
    assert len(val_tokens) == sum(r["token_count"] + 1 for r in rows["validation"])
    starts = np.cumsum([0] + [r["token_count"] + 1 for r in rows["validation"]])[:-1]
    assert (val_tokens[starts] == 50256).all()
    bins = sorted(p.name for p in (release / "bin").iterdir())
    assert bins == ["en_train_000001.bin", "en_train_000002.bin", "en_train_000003.bin", "en_val_000000.bin"]
    assert [f["tokens"] for f in m["files"] if f["split"] == "train" and f["format"] == "bin"][:2] == [SHARD_TOKENS] * 2
    # no local paths in the release; only file names of the inputs
    assert m["inputs"] == [f"bench-{i:05d}.warc.gz" for i in range(8)]
    assert {r["file_path"] for r in rows["train"]} <= set(m["inputs"])
    for name in ("MANIFEST.json", "README.md"):
        text = (release / name).read_text()
        assert str(Path.cwd()) not in text and str(run.parent) not in text and socket.gethostname() not in text


@pytest.mark.slow
def test_manifest_records_versions_checksums_and_funnel(bench):
    run, release = bench
    m = read_manifest(release)
    resolved = yaml.safe_load((run / "config.resolved.yaml").read_text())
    for path in sorted((release / "data").rglob("*.parquet")) + sorted((release / "bin").iterdir()):
        entry = next(f for f in m["files"] if f["path"] == path.relative_to(release).as_posix())
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and entry["bytes"] == path.stat().st_size
    assert {"ccpipe", "datatrove", "trafilatura"} <= set(m["versions"])
    for package in ("ccpipe", "datatrove", "trafilatura"):
        assert len(m["built_with"][package]["sha256"]) == 64
    assert m["built_with"]["datatrove"]["version"] == m["versions"]["datatrove"]
    assert m["provenance"]["tokenizer"]["sha256"] == resolved["provenance"]["tokenizer"]["sha256"]
    assert m["provenance"]["LanguageID"]["sha256"] == resolved["provenance"]["LanguageID"]["sha256"]
    assert len(m["provenance"]["URLBlocklist"]) == len(resolved["provenance"]["URLBlocklist"])
    assert m["config_sha256"] == hashlib.sha256(
        json.dumps(m["config"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
    assert m["config"]["dedup"] == resolved["config"]["dedup"] and "workers" not in m["config"]["run"]
    summary = json.loads((run / "summary.json").read_text())
    stages = {s["stage"]: s for s in m["funnel"]["stages"]}
    assert stages["reader"]["in"] == m["funnel"]["records_total"] == summary["records_total"] > 1000
    assert m["funnel"]["dropped"] == summary["dropped"] and m["funnel"]["kept"] == summary["kept"]
    assert stages["dedup"]["dropped"] == sum(m["funnel"]["dropped"]["dedup"].values())


@pytest.mark.slow
def test_card_is_a_hugging_face_card_with_this_builds_numbers(bench):
    _, release = bench
    m, card = read_manifest(release), (release / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["license"] == "odc-by" and front["language"] == ["en"] and front["size_categories"] == ["n<1K"]
    (config,) = front["configs"]
    for data_files in config["data_files"]:
        assert list(release.glob(data_files["path"])), data_files
    for heading in ("## Processing steps", "## Schema", "## Personal information", "## Known limitations"):
        assert heading in card
    stages = {s["stage"]: s for s in m["funnel"]["stages"]}
    assert f"| langid | {stages['langid']['in']:,} | {stages['langid']['dropped']:,} |" in card
    assert f"| en | validation | {m['totals']['by_split']['validation']['documents']:,} |" in card
    assert f"EMAIL_ADDRESS {m['funnel']['pii']['EMAIL_ADDRESS']}" in card


@pytest.mark.slow
def test_builds_are_byte_identical_whatever_the_workers(bench, tmp_path, gpt2_tiktoken):
    run, release = bench
    # one worker, and a copy of the run without its token files: the text is re-tokenized
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("parquet", "summary.json", "config.resolved.yaml"):
        (shutil.copytree if (run / name).is_dir() else shutil.copy)(run / name, copy / name)
    proc = ccpipe("release", "build", str(copy), "--name", "bench", "--version", "1.0.0", "--output",
                  str(tmp_path / "again"), "--validation-fraction", str(VALIDATION_FRACTION), "--shard-tokens",
                  str(SHARD_TOKENS), "--workers", "1", "--tokenizer", str(gpt2_tiktoken))
    assert proc.returncode == 0, proc.stderr
    assert files_of(tmp_path / "again") == files_of(release)
    refused = ccpipe("release", "build", str(run), "--name", "bench", "--version", "1.0.0", "--output", str(release))
    assert refused.returncode == 2 and "exists" in refused.stderr and str(release) in refused.stderr
    assert not list(release.parent.glob(".bench-1.0.0.building-*"))


@pytest.mark.slow
def test_verify_passes_on_the_release(bench):
    proc = ccpipe("release", "verify", str(bench[1]))
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["bin/en_train_000002.bin", "bin/en_val_000000.bin",
                                    "data/en/validation-00000-of-00001.parquet"])
def test_verify_names_exactly_the_file_with_a_flipped_byte(bench, tmp_path, victim):
    copy = shutil.copytree(bench[1], tmp_path / "release")
    path = copy / victim
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    proc = ccpipe("release", "verify", str(copy))
    assert proc.returncode == 1
    assert problems_named(proc.stderr) == {victim}, proc.stderr


@pytest.mark.slow
def test_verify_catches_edits_to_the_card_and_the_manifest(bench, tmp_path):
    copy = shutil.copytree(bench[1], tmp_path / "release")
    card = (copy / "README.md").read_text()
    n = read_manifest(copy)["totals"]["by_split"]["validation"]["documents"]
    edited = card.replace(f"| en | validation | {n:,} |", f"| en | validation | {n + 1:,} |")
    assert edited != card
    (copy / "README.md").write_text(edited)
    proc = ccpipe("release", "verify", str(copy))
    assert proc.returncode == 1 and problems_named(proc.stderr) == {"README.md"}, proc.stderr
    # a card another ccpipe wrote (another wording) is held to its front matter
    m = json.loads((copy / "MANIFEST.json").read_text())
    (copy / "MANIFEST.json").write_text(json.dumps({**m, "card_version": 0}))
    assert ccpipe("release", "verify", str(copy)).returncode == 0
    (copy / "README.md").write_text(card.replace("license: odc-by", "license: mit"))
    proc = ccpipe("release", "verify", str(copy))
    assert proc.returncode == 1 and problems_named(proc.stderr) == {"README.md"}, proc.stderr
    (copy / "README.md").write_text(card)
    entry = next(f for f in m["files"] if f["path"] == "bin/en_train_000001.bin")
    entry["documents"] += 1
    (copy / "MANIFEST.json").write_text(json.dumps(m))
    (copy / "stray.txt").write_text("not in the manifest")
    proc = ccpipe("release", "verify", str(copy))
    named = problems_named(proc.stderr)
    assert proc.returncode == 1 and {"bin/en_train_000001.bin", "stray.txt"} <= named, proc.stderr


@pytest.mark.slow
def test_diff_reports_counts_split_config_and_versions(bench, tmp_path):
    run, release = bench
    other = tmp_path / "bench-1.1.0"
    build_release(run, other, "bench", "1.1.0", validation_fraction=0.2, shard_tokens=SHARD_TOKENS, workers=2)
    proc = ccpipe("release", "diff", str(release), str(other))
    assert proc.returncode == 0, proc.stderr
    assert "bench 1.0.0 -> bench 1.1.0" in proc.stdout
    assert "validation_fraction: 0.1 -> 0.2" in proc.stdout
    assert "by_split.validation.documents" in proc.stdout and "config: no change" in proc.stdout
    # another config and library version: named key by key
    old, new = read_manifest(release), read_manifest(release)
    new["config"]["dedup"]["n_grams"] = 6
    new["versions"]["trafilatura"] = "9.9.9"
    new["provenance"]["tokenizer"]["sha256"] = "0" * 64
    d = diff_manifests(old, new)
    assert [(c["key"], c["old"], c["new"]) for c in d["config"]] == [("dedup.n_grams", 5, 6)]
    assert {c["key"] for c in d["versions"]} == {"versions.trafilatura", "provenance.tokenizer.sha256"}
    assert "dedup.n_grams: 5 -> 6" in format_diff(d) and d["files"]["same"] == len(old["files"])
