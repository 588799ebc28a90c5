"""`ccpipe run --reuse RUN`: a new recipe started from RUN's work gives the from-scratch run's bytes.

One source run (an English bench WARC and a Chinese one, 30 records each); each change is run twice, reusing
the source and from scratch, and `parquet/`, `bin/`, `ledger/` and `summary.json` (but its timings) compared.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.core.errors import Refused
from pipeline.core.layout import RunLayout
from pipeline.finalize.public import public_folder, reused_scrubbing
from pipeline.plan.config import config_from_dict
from pipeline.plan.phases import build_phases
from pipeline.plan.resolved import resolved_config
from pipeline.run import run_pipeline

MAX_RECORDS = 30
REPLAYED = ["reader", "blocklist", "langid_precheck", "extract", "langid_scores", "quality_signals", "pii_findings",
            "minhash_signatures", "bpe_tokens"]


def _config(**sections) -> dict:
    return {"input": {"max_records": MAX_RECORDS}, **sections}


@pytest.fixture(scope="module")
def inputs(corpus) -> list[str]:
    return [str(corpus / "warc" / "bench" / "bench-00001.warc.gz"), str(corpus / "warc" / "zh" / "zh-dev-00000.warc.gz")]


@pytest.fixture(scope="module")
def source(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("reuse") / "source"
    run_pipeline(config_from_dict(_config()), inputs, out)
    return out


def _outputs(run) -> dict:
    # the ledger's public copy too: a reused run takes RUN's scrubbed values (pipeline/finalize/public.py)
    found = {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
             for folder in ("parquet", "bin", "ledger", "work/publish") for p in sorted((run / folder).rglob("*"))
             if p.is_file()}
    summary = json.loads((run / "summary.json").read_text())
    del summary["elapsed_seconds"], summary["seconds_per_stage"]
    return {"files": found, "summary": summary}


def _reused(run) -> dict:
    return yaml.safe_load((run / "config.resolved.yaml").read_text())["reused"]


CHANGES = {
    "quality": (_config(langid={"threshold": 0.8}, quality={"fineweb": False}), "replay"),
    "languages": (_config(langid={"languages": ["en", "zh"]}), "extraction"),  # the pre-check changes
    "pii_entities": (_config(pii={"entities": ["EMAIL_ADDRESS"]}), "replay"),
    "tokenizer": (None, "replay"),  # cl100k_base, from the corpus
}


KEYS = {"reader", "blocklist", "langid_precheck", "extract", "store", "langid_scores", "quality_memo", "pii_memo",
        "minhash_signatures", "bpe_tokens"}


@pytest.mark.parametrize("change, changed", [
    ({"langid": {"threshold": 0.8}, "quality": {"c4": False}, "tokenizer": {"eot_token": "<|endoftext|>!"},
      "output": {"shard_tokens": 1000}}, set()),
    ({"dedup": {"buckets": 7}}, {"minhash_signatures"}),
    ({"dedup": {"enabled": False}}, {"minhash_signatures"}),
    ({"pii": {"entities": ["EMAIL_ADDRESS"]}}, {"pii_memo"}),
    ({"pii": {"max_candidates": 10}}, {"pii_memo"}),  # a memo made under another limit holds other documents
    # and Chinese shingles cut by jieba's words (stages/dedup/minhash.py)
    ({"langid": {"languages": ["en", "zh"]}}, {"langid_precheck", "store", "minhash_signatures"}),
    ({"langid": {"precheck": False}}, {"langid_precheck", "store"}),
    ({"blocklist": {"ut1": False}}, {"blocklist", "langid_precheck", "store"}),
    ({"extract": {"favor_precision": False}}, {"extract", "store"}),
    ({"input": {"max_records": 5}}, KEYS - {"langid_scores", "quality_memo", "pii_memo", "minhash_signatures",
                                            "bpe_tokens"}),
    ({"run": {"workers": 4}, "input": {"retry": {"attempts": 2}}}, set()),  # how it runs, not what it computes
])
def test_a_stage_key_changes_with_its_stage_and_those_before_it(change, changed, tmp_path):
    files = [str(tmp_path / "a.warc.gz"), str(tmp_path / "b.warc.gz")]

    def keys(settings: dict) -> dict:
        config = config_from_dict(settings)
        return resolved_config(config, files, build_phases(config, files, tmp_path / "run"))["reuse_keys"]

    before, after = keys({}), keys(change)
    assert set(before) == KEYS and {k for k in KEYS if before[k] != after[k]} == changed


def test_another_vocabulary_changes_the_token_key_only(corpus, tmp_path):
    files = [str(tmp_path / "a.warc.gz")]

    def keys(settings: dict) -> dict:
        config = config_from_dict(settings)
        return resolved_config(config, files, build_phases(config, files, tmp_path / "run"))["reuse_keys"]

    cl100k = str(corpus / "tokenizers" / "cl100k_base" / "cl100k_base.tiktoken")
    before, after = keys({}), keys({"tokenizer": {"name": cl100k}})
    assert {k for k in KEYS if before[k] != after[k]} == {"bpe_tokens"}
    # the same vocabulary by its file: the same ids (the key had the name in it, and a run made with
    # `--tokenizer PATH` had its tokens encoded again by a reuse naming gpt2)
    gpt2 = str(corpus / "tokenizers" / "gpt2" / "gpt2.tiktoken")
    assert keys({"tokenizer": {"name": gpt2}}) == before


@pytest.mark.slow
@pytest.mark.parametrize("change", list(CHANGES))
def test_reuse_gives_the_from_scratch_bytes(change, source, inputs, corpus, tmp_path):
    settings, mode = CHANGES[change]
    if settings is None:
        settings = _config(tokenizer={"name": str(corpus / "tokenizers" / "cl100k_base" / "cl100k_base.tiktoken")})
    config = config_from_dict(settings)
    # two workers against one: the reused output does not depend on the worker count either
    reused = run_pipeline(config.model_copy(update={"run": config.run.model_copy(update={"workers": 2})}),
                          [], tmp_path / "reused", reuse=source)
    run_pipeline(config, inputs, tmp_path / "scratch")
    assert _outputs(tmp_path / "reused") == _outputs(tmp_path / "scratch")
    assert reused["conservation_ok"] and reused["records_total"] > 0
    entry = _reused(tmp_path / "reused")
    assert entry["from"] == str(source) and entry["mode"] == mode
    # (extraction: Chinese is kept too, its shingles cut by jieba's words: the signatures are not RUN's)
    stages = REPLAYED if mode == "replay" else ["extract", "langid_scores", "quality_signals", "pii_findings",
                                                "bpe_tokens"]
    # other PII entities: the findings are looked for again; another vocabulary: the texts are encoded again
    assert entry["stages"] == [s for s in stages if (change, s) not in {("pii_entities", "pii_findings"),
                                                                         ("tokenizer", "bpe_tokens")}]
    if change == "languages":
        assert "zh" in reused["kept_by_language"] and "langid_precheck" in entry["recomputed_because"]
    if change == "pii_entities":  # reused text is the pre-PII text: the PII stage scrubbed it again
        assert set(reused["pii"]) == {"EMAIL_ADDRESS"}
        ledger = pq.read_table(tmp_path / "reused" / "ledger").to_pylist()
        values = [span[3] for row in ledger if row["pii_spans"] for span in json.loads(row["pii_spans"])]
        text = "\n".join(pq.read_table(tmp_path / "reused" / "parquet").column("text").to_pylist())
        assert values and not [v for v in values if v in text]


@pytest.mark.slow
def test_changed_extraction_is_recomputed(source, inputs, tmp_path):
    config = config_from_dict(_config(extract={"favor_precision": False}))
    run_pipeline(config, [], tmp_path / "reused", reuse=source)
    run_pipeline(config, inputs, tmp_path / "scratch")
    assert _outputs(tmp_path / "reused") == _outputs(tmp_path / "scratch")
    entry = _reused(tmp_path / "reused")
    assert entry["stages"] == [] and entry["recomputed_because"] == "changed: extract"


@pytest.mark.slow
def test_missing_store_tasks_are_recomputed_and_said(source, tmp_path, capfd):
    partial = tmp_path / "partial"
    shutil.copytree(source, partial)
    (partial / "work" / "reuse" / "00001.parquet").unlink()
    (partial / "work" / "minhash" / "signatures" / "bucket_005" / "00000.minhash.sig").unlink()
    (partial / "work" / "tokens" / "en" / "00000.tokens").unlink()  # that task's texts encoded again
    config = config_from_dict(_config(quality={"c4": False}))
    reused = run_pipeline(config, [], tmp_path / "reused", reuse=partial)
    run_pipeline(config, [], tmp_path / "whole", reuse=source)  # replayed whole: the from-scratch bytes (above)
    assert _outputs(tmp_path / "reused") == _outputs(tmp_path / "whole")
    err = capfd.readouterr().err
    assert "base tasks 1 of 2 have no store" in err and "base tasks 0 of 2 have no MinHash signatures" in err
    assert _reused(tmp_path / "reused")["tasks_recomputed"] == [1]
    assert _reused(tmp_path / "reused")["signatures_computed"] == [0]
    assert reused["conservation_ok"]
    # the recomputed task wrote its store again: this run can be reused in turn, whole
    assert sorted(p.name for p in (tmp_path / "reused" / "work" / "reuse").glob("*.parquet")) == ["00000.parquet",
                                                                                                   "00001.parquet"]


def test_reuse_of_a_directory_that_is_no_run_is_refused(inputs, tmp_path):
    with pytest.raises(Refused, match="--reuse .*not a ccpipe run directory"):
        run_pipeline(config_from_dict(_config()), inputs, tmp_path / "out", reuse=tmp_path)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_reused_run_is_reused_in_turn(source, tmp_path):
    """source -> FineWeb's filter off -> on again: the second reuse replays the results the first carried over
    from the source (per-text quality results and PII findings), and gives the source's bytes."""
    run_pipeline(config_from_dict(_config(quality={"fineweb": False})), [], tmp_path / "off", reuse=source)
    run_pipeline(config_from_dict(_config()), [], tmp_path / "on", reuse=tmp_path / "off")
    assert _outputs(tmp_path / "on") == _outputs(source)
    assert _reused(tmp_path / "on")["stages"] == REPLAYED


def _ledger_part(path, rows: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({k: pa.array(v, pa.string()) for k, v in rows.items()}), path)


@pytest.mark.parametrize("pii_in_urls, url_replayed", [(1, True), (2, False)])
def test_the_public_copy_replays_the_scrubbing_of_the_reused_run(pii_in_urls, url_replayed, tmp_path):
    """A changed value had PII; an unchanged one had none, unless a surrogate equals the value it replaced
    (`email@example.com` for itself): then the changed values do not add up to RUN's count, and the column is
    scrubbed again rather than replayed with a wrong count."""
    layout = RunLayout(tmp_path)
    raw = {"url": ["https://a.example/?m=jane@x.org", "https://a.example/1", None],
           "duplicate_of_url": [None, None, None], "detail": ["en 0.0011 < 0.01", None, None],
           "excerpt": ["Mail jane@x.org", "hidden", None]}
    public = {**raw, "url": ["https://a.example/?m=email@example.com", "https://a.example/1", None],
              "excerpt": ["Mail email@example.com", None, None]}
    _ledger_part(layout.ledger / "part-00000.parquet", raw)
    _ledger_part(public_folder(layout) / "ledger" / "part-00000.parquet", public)
    (public_folder(layout) / "counts").mkdir()
    (public_folder(layout) / "counts" / "part-00000.json").write_text(
        json.dumps({"pii_in_urls": pii_in_urls, "pii_in_details": 0}))
    resolved = {"reused": {"from": str(tmp_path), "stages": REPLAYED}}
    memo = reused_scrubbing(resolved, "part-00000.parquet")
    assert memo["excerpt"] == {"Mail jane@x.org": ("Mail email@example.com", True)}  # a hidden excerpt: none
    assert memo["detail"] == {"en 0.0011 < 0.01": ("en 0.0011 < 0.01", False)}
    assert ("url" in memo) == url_replayed
    if url_replayed:
        assert memo["url"] == {raw["url"][0]: (public["url"][0], True), raw["url"][1]: (raw["url"][1], False)}
    # other PII settings (findings not replayed), or no such part: everything scrubbed again
    assert reused_scrubbing({"reused": {"from": str(tmp_path), "stages": [s for s in REPLAYED if s != "pii_findings"]}},
                            "part-00000.parquet") == {}
    assert reused_scrubbing(resolved, "part-00001.parquet") == {}
