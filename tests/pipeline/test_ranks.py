"""Per-task files are named `{rank:05d}`: five digits up to rank 99999, more after. Parsing and ordering must
hold for any rank (a regex of five digits once mapped rank 100000 onto rank 0)."""

from __future__ import annotations

import json

from pipeline.finalize.steps import _decision_prefixes
from stages.readers.warc import FileFate, failed_reads, write_report


def test_decision_files_are_found_for_ranks_of_any_width(tmp_path):
    for name in ("reader/00000.jsonl", "langid/precheck-00042.jsonl", "reader/100000.jsonl", "kept/100000.jsonl",
                 "quality/fineweb2-99999.jsonl"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    prefixes = _decision_prefixes(tmp_path)
    assert prefixes == ["kept/", "langid/precheck-", "quality/fineweb2-", "reader/"]
    # a finalize task opens its rank's files by name: `{prefix}{rank:05d}.jsonl`
    found = {rank: sorted(f"{prefix}{rank:05d}.jsonl" for prefix in prefixes
                          if (tmp_path / f"{prefix}{rank:05d}.jsonl").exists()) for rank in (0, 42, 99999, 100000)}
    assert found == {0: ["reader/00000.jsonl"], 42: ["langid/precheck-00042.jsonl"],
                     99999: ["quality/fineweb2-99999.jsonl"], 100000: ["kept/100000.jsonl", "reader/100000.jsonl"]}


def test_failed_reads_name_the_file_and_the_task(tmp_path):
    write_report(str(tmp_path), 100000, [FileFate("s3://b/ok.warc.gz"),
                                         FileFate("s3://b/x.warc.gz", error="s3://b/x.warc.gz: 503", failed=True)])
    write_report(str(tmp_path), 3, [FileFate("s3://b/bad.warc.gz", error="damaged")])
    assert (tmp_path / "100000.json").is_file() and json.loads((tmp_path / "00003.json").read_text())
    assert failed_reads(str(tmp_path)) == ("; could not read (transient errors, retries exhausted): "
                                           "task 100000: s3://b/x.warc.gz: 503")
    assert failed_reads(str(tmp_path / "none")) == ""
