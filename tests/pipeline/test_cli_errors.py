"""Every way a user meets a refusal or a failure, through the real command line (a subprocess each): the exit
code of the README's table, one line (two at most) on stderr naming the file, key or flag, no traceback, and
nothing created when it is refused before work. Most cases fail before any work; one run of the shipped
sample, interrupted and resumed, serves the cases that need a run."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from pipeline.plan.inputs import expand_inputs
from pipeline.release.diff import format_diff

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "pipeline" / "sample"


def ccpipe(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True, text=True,
                          check=False, cwd=cwd, env=env, timeout=timeout)


def refused(proc: subprocess.CompletedProcess, *needles: str, code: int = 2) -> str:
    """The checks every case shares; returns stderr."""
    err = proc.stderr
    assert proc.returncode == code, (proc.returncode, err)
    assert "Traceback" not in err and "Traceback" not in proc.stdout, err
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 2, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def run_args(tmp_path, *extra, output=None):
    return ("run", "--input", SAMPLE, "--output", output or tmp_path / "out", "--no-progress", *extra)


def write(tmp_path, name, text) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---- config and flags: one line naming the key, or the flag as written; nothing created ----------------------

@pytest.mark.parametrize("yaml_text, needles", [
    ("langid:\n  languages: [english]\n", ["langid.languages", "'english'", "not a label of the model"]),
    ("langid:\n  model: /nope/lid.176.bin\n", ["langid.model", "/nope/lid.176.bin", "no such file"]),
    ("blocklist:\n  lists_dir: /nope\n", ["blocklist.lists_dir", "/nope", "no such directory"]),
    ("pii:\n  entities: [EMAIL, PHONE_NUMBER]\n", ["pii.entities", "'EMAIL'", "EMAIL_ADDRESS"]),
    ("langid:\n  threshold: 0.5\n  threshold: 0.7\n", ["duplicate key 'langid.threshold'", "line 3"]),
    ("langid:\n  languages: [en, 3]\n", ["langid.languages: expected a list of strings"]),
    ("quality:\n  gopher: true\n", ["unknown key 'quality.gopher'"]),
])
def test_config_problems_name_the_file_and_key(tmp_path, yaml_text, needles):
    config = write(tmp_path, "c.yaml", yaml_text)
    err = refused(ccpipe(*run_args(tmp_path, "--config", config)), str(config), *needles)
    assert err.startswith("ccpipe: config error:")
    assert not (tmp_path / "out").exists()


def test_flags_are_named_as_written(tmp_path):
    err = refused(ccpipe(*run_args(tmp_path, "--workers", "0")), "--workers: expected a value >= 1, got 0")
    assert "run.workers" not in err
    refused(ccpipe(*run_args(tmp_path, "--max-records", "0")), "--max-records")
    refused(ccpipe(*run_args(tmp_path, "--cpus-per-task", "0")), "--cpus-per-task")
    assert not (tmp_path / "out").exists()


def test_tokenizer_files_are_parsed_before_work(tmp_path):
    refused(ccpipe(*run_args(tmp_path, "--tokenizer", ROOT / "README.md")), "--tokenizer", "README.md",
            "not a .tiktoken vocabulary")
    vocab = write(tmp_path, "vocab.json", '{"hello": 0, "world": 1}')  # GPT-2's vocab.json format, not tokenizer.json
    refused(ccpipe(*run_args(tmp_path, "--tokenizer", vocab)), "--tokenizer", "vocab.json",
            "not a Hugging Face tokenizer.json")
    refused(ccpipe(*run_args(tmp_path, "--tokenizer", tmp_path / "missing.tiktoken")), "--tokenizer")
    assert not (tmp_path / "out").exists()


# ---- inputs that cannot be reached: named with their cause before any phase ----------------------------------

@pytest.fixture(scope="module")
def http_server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(403 if "forbidden" in self.path else 404)
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the block ends: connecting is refused


@pytest.mark.parametrize("path, cause", [
    ("{server}/missing.warc.gz", "HTTP 404"),
    ("{server}/forbidden.warc.gz", "HTTP 403"),
    ("http://127.0.0.1:{port}/x.warc.gz", "connection refused"),
    ("http://nonexistent.invalid/x.warc.gz", "DNS lookup failed"),  # .invalid never resolves (RFC 6761)
])
def test_unreachable_inputs_are_named_with_their_cause(tmp_path, http_server, path, cause):
    url = path.format(server=http_server, port=_closed_port())
    proc = ccpipe("run", "--input", url, "--output", tmp_path / "out", "--no-progress")
    refused(proc, url, cause)
    assert not (tmp_path / "out").exists()


def test_missing_local_input(tmp_path):
    refused(ccpipe(*run_args(tmp_path), "--input", tmp_path / "nope.warc.gz"), "nope.warc.gz", "no such file")


# ---- outputs that cannot hold the run ---------------------------------------------------------------------

def test_output_refusals_exit_2(tmp_path):
    a_file = write(tmp_path, "a-file", "x")
    refused(ccpipe(*run_args(tmp_path, output=a_file)), str(a_file), "not a directory")
    refused(ccpipe(*run_args(tmp_path, output=a_file / "sub")), str(a_file / "sub"), "cannot write")
    refused(ccpipe(*run_args(tmp_path, output="/proc/ccpipe-out")), "/proc/ccpipe-out", "cannot write")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    refused(ccpipe(*run_args(tmp_path, output=other)), "not a ccpipe run directory")
    another = tmp_path / "another"
    another.mkdir()
    (another / "config.resolved.yaml").write_text("config: {}\ninputs: [x.warc.gz]\ntasks: 1\n")
    refused(ccpipe(*run_args(tmp_path, output=another)), "holds a run with other inputs")
    assert sorted(p.name for p in another.iterdir()) == ["config.resolved.yaml"]


def test_read_only_mount_and_immutable_directory(tmp_path):
    """A real read-only mount (a private mount namespace) and an immutable directory (`chattr +i`): root only."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("chattr"):
        pytest.skip("needs root, unshare and chattr")
    mount = tmp_path / "ro"
    mount.mkdir()
    cmd = (f"mount -t tmpfs -o ro none {mount} && exec {sys.executable} -m pipeline.cli run --input {SAMPLE} "
           f"--output {mount}/out --no-progress")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", cmd], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    refused(proc, f"{mount}/out", "Read-only file system")
    frozen = tmp_path / "immutable"
    frozen.mkdir()
    if subprocess.run(["chattr", "+i", str(frozen)], capture_output=True).returncode != 0:
        pytest.skip("this filesystem has no immutable attribute")
    try:
        refused(ccpipe(*run_args(tmp_path, output=frozen / "out")), str(frozen / "out"), "Operation not permitted")
    finally:
        subprocess.run(["chattr", "-i", str(frozen)], check=True)


def test_slurm_without_sbatch_leaves_nothing(tmp_path):
    """A PATH without Slurm's programs (this machine may have them): refused before the run directory exists."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": str(tmp_path / "empty-bin")}
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, run_args(tmp_path, "--executor", "slurm"))],
                          capture_output=True, text=True, check=False, env=env)
    refused(proc, "sbatch not found")
    assert not (tmp_path / "out").exists()


def test_blocklist_lists_dir_that_does_not_exist():
    refused(ccpipe("blocklist", "check", "--lists-dir", "/nope", "https://www.freehentaihub7.com/710"),
            "--lists-dir: /nope")


def test_slurm_finalize_job_echoes_its_own_name(tmp_path):
    plan = ccpipe(*run_args(tmp_path, "--executor", "slurm", "--dry-run"))
    assert plan.returncode == 0, plan.stderr
    finalize = plan.stdout[plan.stdout.index("--job-name=ccpipe-finalize"):]
    assert 'echo "Starting data processing job ccpipe-finalize"' in finalize
    assert not (tmp_path / "out").exists()


def test_input_spellings_are_one_file(tmp_path, monkeypatch):
    """`b/../a/` and `a` give the same file paths, which the parquet and the ledger record."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.warc.gz").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert expand_inputs(["b/../a/"]) == expand_inputs(["./a"]) == expand_inputs(["a/x.warc.gz"]) == ["a/x.warc.gz"]


def test_version():
    proc = ccpipe("--version")
    assert proc.returncode == 0 and re.fullmatch(r"ccpipe \d+\.\d+\.\d+\n", proc.stdout)


def test_the_readme_table_lists_these_codes():
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| code | meaning |"):]
    codes = [int(c) for c in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)]
    assert codes[:4] == [0, 1, 2, 130]


def test_release_diff_numbers():
    d = {"old": "a 1", "new": "a 2", "counts": [], "split": [], "versions": [],
         "funnel": [{"key": "dropped.quality.gopher_short_doc", "old": 1, "new": None}],
         "config": [{"key": "langid.threshold", "old": 0.65, "new": 0.8}],
         "inputs": {"added": [], "removed": []}, "files": {"added": [], "removed": [], "changed": [], "same": 0}}
    text = format_diff(d)
    assert "gopher_short_doc: 1 -> 0  -1" in text and "0.65 -> 0.8  +0.15" in text
    assert "None" not in text and "0000000" not in text


# ---- one run of the sample: interrupted, resumed, then audited ---------------------------------------------

def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """`ccpipe run` on the sample with one worker, Ctrl-C once the first task is done, then the same command.

    The run starts with SIGINT at its default action, as a terminal's foreground job does: a test suite started
    in the background (`make test &`) hands its children SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler (the run went on to exit 0). The second task takes ~0.5 s: where the whole run
    ended before the signal landed, the scenario did not happen and is played again, three times at most."""
    for _ in range(3):
        out = tmp_path_factory.mktemp("sample") / "run"
        args = [sys.executable, "-m", "pipeline.cli", *map(str, run_args(None, "--workers", "1", output=out))]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                start_new_session=True, preexec_fn=_sigint_default)
        marker = out / "logs" / "base" / "completions" / "00000"
        deadline = time.monotonic() + 240
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole foreground group
        _, interrupted_err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            break
    # with progress bars this time: datatrove's own "Reading dup files" bar must not be among them
    resumed = ccpipe(*[a for a in run_args(None, "--workers", "1", output=out) if a != "--no-progress"])
    return out, proc.returncode, interrupted_err, resumed


def test_ctrl_c_says_what_was_done_and_the_rerun_resumes(sample_run):
    _, code, err, resumed = sample_run
    assert code == 130 and "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert len(err.strip().splitlines()) <= 2
    assert re.search(r"interrupted: 1 of 2 base tasks done; rerunning the same command resumes", err), err
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming: 1 of 2 base tasks done" in resumed.stderr
    assert "Reading dup files" not in resumed.stderr  # datatrove's own bar is not among ccpipe's


def test_sample_run_funnel(sample_run):
    out, _, _, resumed = sample_run
    table = resumed.stdout
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines() if line.strip()}
    assert int(rows["kept"][0]) > 0 and "scrubbed" in rows  # PII counts in the final table
    for stage in ("reader", "blocklist", "langid", "quality", "dedup"):
        assert int(rows[stage][1]) > 0, f"{stage} dropped nothing on the sample"
    # the extract row counts what extraction saw: the pre-check's drops are left out of it
    assert int(rows["extract"][0]) < int(rows["blocklist"][0]) - int(rows["blocklist"][1])
    status = ccpipe("status", out)
    assert status.returncode == 0, status.stdout


def test_audit_commands_on_the_run(sample_run, tmp_path):
    out = sample_run[0]
    kept = ccpipe("audit", "sample", out, "--stage", "kept", "-n", "2")
    assert kept.returncode == 0 and "kept" in kept.stdout, kept.stderr
    refused(ccpipe("audit", "report", out, "-o", "/proc/ccpipe-report.html"), "/proc/ccpipe-report.html",
            "cannot write")
    # the same run, as if it had read one more file: the diff warns that the inputs differ
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    resolved = yaml.safe_load((copy / "config.resolved.yaml").read_text())
    resolved["inputs"].append("elsewhere.warc.gz")
    (copy / "config.resolved.yaml").write_text(yaml.safe_dump(resolved))
    other = ccpipe("audit", "diff", out, copy)
    assert other.returncode == 0 and "read different inputs" in other.stderr, other.stderr


def _nothing_read_run(tmp_path) -> tuple[Path, subprocess.CompletedProcess]:
    garbage = tmp_path / "garbage.warc.gz"
    garbage.write_bytes(b"\x1f\x8b\x08\x00" + b"not a warc at all" * 20)
    out = tmp_path / "nothing"
    return out, ccpipe("run", "--input", garbage, "--output", out, "--no-progress")


def test_a_run_that_read_nothing_failed(tmp_path):
    out, proc = _nothing_read_run(tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "the run failed: no input file could be read" in proc.stderr
    status = ccpipe("status", out)
    assert status.returncode == 1 and "run failed: no input file could be read" in status.stdout


# ---- hostile inputs and outputs: one line, before work --------------------------------------------------------

def test_input_file_name_that_is_not_utf8(tmp_path):
    """Used to pass the pre-flight check, then fail every task (and every rerun) with ~100 traceback lines."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLE / "ccpipe-sample-00001.warc.gz", os.fsdecode(bytes(folder) + b"/bad\xffutf8.warc.gz"))
    out = tmp_path / "out"
    refused(ccpipe("run", "--input", folder, "--output", out, "--no-progress"), r"bad\xffutf8.warc.gz",
            "not valid UTF-8")
    assert not out.exists()


@pytest.mark.parametrize("kind", ["loop", "dangling", "below a loop"])
def test_release_output_onto_a_broken_symlink_is_refused_before_work(sample_run, tmp_path, kind):
    """Used to build the whole release, then fail at the final rename with a traceback (exit 1)."""
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere" / "x")
    output = {"loop": tmp_path / "loop", "dangling": tmp_path / "dangling", "below a loop": tmp_path / "loop" / "rel"}
    before = set(tmp_path.iterdir())
    refused(ccpipe("release", "build", sample_run[0], "--name", "s", "--version", "1.0.0", "--output", output[kind]),
            str(output[kind]), "symbolic link")
    assert set(tmp_path.iterdir()) == before  # no staging directory left either


def test_truncated_warc_is_one_accurate_line(tmp_path):
    """A .warc.gz cut inside a record after its first ones: the records before the cut are counted and kept,
    and the damage is said once (it used to be printed live and again at the end, followed by 'the run
    failed: no input file could be read', exit 1)."""
    whole = (SAMPLE / "ccpipe-sample-00001.warc.gz").read_bytes()
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "cut.warc.gz").write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "out"
    proc = ccpipe("run", "--input", folder, "--output", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cut.warc.gz: file ends inside a gzip member" in lines[0], proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run_failed"] is None and summary["records_total"] > 0 and summary["conservation_ok"]
    assert f"{summary['records_total']} response records read before the cut" in lines[0]
