"""`recipe: fineweb`: FineWeb's recipe step for step, on two bench WARCs.

The blocklist is datatrove's URLFilter (its reasons, not ccpipe's), there is no language pre-check, the
quality filters are datatrove's own, and PII is datatrove's PIIFormatter (e-mail and IP only)."""

from __future__ import annotations

import duckdb
import pytest
from datatrove.pipeline.filters import URLFilter
from datatrove.pipeline.formatters import PIIFormatter

from pipeline.plan.config import config_from_dict
from pipeline.plan.phases import build_phases
from pipeline.run import run_pipeline
from stages.filters.quality import QualityFilters

# datatrove's URLFilter.filter returns exactly these reasons
URLFILTER_REASONS = {"domain", "subdomain", "url", "hard_blacklisted", "soft_blacklisted", "blacklisted_subword"}


def test_fineweb_recipe_builds_datatroves_own_steps():
    phases = build_phases(config_from_dict({"recipe": "fineweb"}), ["a.warc.gz"], "/tmp/unused")
    steps = [step for phase in phases for step in phase.steps]
    assert any(isinstance(s, URLFilter) for s in steps) and any(isinstance(s, PIIFormatter) for s in steps)
    assert not any(type(s).__name__ in ("URLBlocklist", "LanguagePrecheck", "PIIScrubber") for s in steps)
    assert not any(isinstance(s, QualityFilters) for s in steps)  # datatrove's four filters instead
    default = [type(s).__name__ for p in build_phases(config_from_dict({}), ["a.warc.gz"], "/tmp/u") for s in p.steps]
    assert {"URLBlocklist", "LanguagePrecheck", "PIIScrubber", "QualityFilters"} <= set(default)


@pytest.mark.slow
def test_fineweb_recipe_runs(bench_dir, gpt2_tiktoken, truth, tmp_path):
    files = ["bench-00000.warc.gz", "bench-00001.warc.gz"]
    config = config_from_dict({"recipe": "fineweb", "tokenizer": {"name": str(gpt2_tiktoken)}, "run": {"workers": 2}})
    summary = run_pipeline(config, [str(bench_dir / f) for f in files], tmp_path / "run")
    assert summary["conservation_ok"]
    rows = duckdb.sql(f"SELECT id, stage, reason FROM read_parquet('{tmp_path}/run/ledger/*.parquet')").fetchall()
    fate = {i: (stage, reason) for i, stage, reason in rows}
    mine = [t for t in truth if t["warc_file"] in files]
    assert len(rows) == len(mine)  # one ledger row per response record
    blocked = {reason for stage, reason in fate.values() if stage == "blocklist"}
    assert blocked and blocked <= URLFILTER_REASONS, blocked
    assert "language_precheck" not in {reason for _, reason in fate.values()}
    for t in mine:
        if t["kind"] == "blocklisted_domain":
            assert fate[t["record_id"]] in (("blocklist", "domain"), ("blocklist", "subdomain"),
                                            ("blocklist", "url"), ("reader", "too_large")), t["url"]
    # FineWeb's formatter replaces planted e-mail and public IP addresses, and leaves every other type
    kept = dict(duckdb.sql(f"SELECT id, text FROM read_parquet('{tmp_path}/run/parquet/*/*.parquet')").fetchall())
    planted = [(p["type"], p["value"], kept[t["record_id"]]) for t in mine if t["record_id"] in kept
               for p in t.get("pii", [])]
    assert any(kind == "EMAIL_ADDRESS" for kind, _, _ in planted), "no kept page with a planted e-mail address"
    for kind, value, text in planted:
        if kind in ("EMAIL_ADDRESS", "IP_ADDRESS"):
            assert value not in text, (kind, value)
    assert any(value in text for kind, value, text in planted if kind in ("PHONE_NUMBER", "US_SSN", "IBAN_CODE"))
