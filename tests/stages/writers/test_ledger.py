"""The ledger's files in the local run directory hold raw values: only their owner may read them."""

import pyarrow as pa

from pipeline.finalize.consolidate import write_ledger_part
from stages.writers.ledger import DropLedger, drop
from tests.fixtures import make_doc


def test_ledger_files_are_0600_in_0700_folders(tmp_path):
    decisions = tmp_path / "work" / "decisions"
    with DropLedger(str(decisions), "reader") as ledger:
        drop(ledger, make_doc("", url="https://x.example/?mail=jane.roe@example.org"), 3, "bad_url")
    write_ledger_part(pa.table({"id": ["a"]}), tmp_path / "ledger" / "part-00003.parquet")
    for path in (decisions, decisions / "reader", tmp_path / "ledger"):
        assert path.stat().st_mode & 0o777 == 0o700, path
    for path in (decisions / "reader" / "00003.jsonl", tmp_path / "ledger" / "part-00003.parquet"):
        assert path.stat().st_mode & 0o777 == 0o600, path
