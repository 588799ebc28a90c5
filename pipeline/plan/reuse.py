"""`ccpipe run --reuse RUN`: which of RUN's work a new run may start from, decided from the resolved configs.

Every run records in `config.resolved.yaml` a digest per expensive stage (`reuse_keys`), of everything that
changes that stage's output: the inputs and task split, the stage's resolved settings, the package that does
the work, and the sha256 of its lists and model (from `provenance`). Each key folds in the keys of the stages
before it. A new run compares its keys with RUN's:

    replay      reader, blocklist, language pre-check and extraction unchanged: base tasks read RUN's store
                (`work/reuse/`, stages/writers/reuse.py) instead of the WARC files, and language ID takes the
                stored scores when the model is the same
    extraction  the reader and extraction are unchanged, the blocklist or the pre-check is not (e.g. another
                kept language): the WARC files are read again, and trafilatura runs only on the records RUN
                did not extract
    none        the reader or extraction changed: everything is recomputed

What comes after (language ID's decisions, quality, dedup, PII, tokenizer, shards) is always recomputed, so
the output is the from-scratch run's, byte for byte; the quality filters replay RUN's results on the texts
they already judged when they are the same code (`quality_memo`, stages/filters/quality_memo.py), which
re-decides, not re-measures, a change of which filters run; MinHash takes RUN's signatures of the texts it
signed when the MinHash settings and word segmenters are the same (`minhash_signatures`,
stages/dedup/replay.py), and the tokenizer RUN's ids of the texts it kept (its token files and parquet) when
it is the same vocabulary (`bpe_tokens`, stages/tokens/replay.py); PII replays RUN's findings on the texts it
scrubbed when the PII settings are the same (`pii_memo`). A base task whose store is missing (a partly
deleted `work/`) is recomputed from the WARC files, one whose signature files are missing computes its
signatures, one whose token files are missing encodes its texts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.core.errors import Refused
from pipeline.core.layout import RunLayout

# the stages a store stands for, in pipeline order, as config.resolved.yaml's `reused` names them
REPLAYED = ("reader", "blocklist", "langid_precheck", "extract")


@dataclass(frozen=True)
class Reuse:
    """What the base phase takes from another run: its store folder, how (`mode`), and whether its language
    scores hold (same model)."""

    source: Path
    store: Path
    mode: str  # "replay" or "extraction"
    scores: bool
    missing: tuple[int, ...] = field(default=())  # base tasks without a store there: recomputed
    quality: bool = False  # the quality filters' results on its texts hold (same code): replayed
    pii: bool = False  # its PII findings hold (same PII settings and code): replayed on the same texts
    signatures: bool = False  # its MinHash signatures hold (same settings and segmenters): taken for the same texts
    unsigned: tuple[int, ...] = field(default=())  # base tasks without signature files there: computed
    tokens: bool = False  # its token ids hold (same tokenizer): taken for the texts it kept (stages/tokens/replay.py)


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stage_keys(resolved: dict) -> dict[str, str]:
    """One digest per reusable stage, from a resolved config (`pipeline.plan.resolved.resolved_config`)."""
    config, found, versions = resolved["config"], resolved["provenance"], resolved["versions"]
    source = {k: v for k, v in config["input"].items() if k not in ("retry", "cache_gb")}  # how, not what, is read
    read = _digest(resolved["ccpipe_version"], resolved["inputs"], resolved["tasks"], source, versions["warcio"])
    blocklist = _digest(read, config["recipe"], config["blocklist"], found.get("URLBlocklist"),
                        found.get("FineWebURLFilter"))
    precheck = _digest(blocklist, found.get("LanguagePrecheck"))  # languages, threshold, model sha256
    extract = _digest(read, config["extract"], versions["trafilatura"])
    # the quality filters' results on a text: FineWeb's thresholds live in ccpipe's and datatrove's code, the
    # words in spaCy's (stages/filters/quality_memo.py)
    quality = _digest(resolved["ccpipe_version"], versions["datatrove"], versions.get("spacy"))
    return {"reader": read, "blocklist": blocklist, "langid_precheck": precheck, "extract": extract,
            "store": _digest(precheck, extract), "langid_scores": _digest(found.get("LanguageID", {}).get("sha256")),
            "quality_memo": quality,
            "pii_memo": _digest(resolved["ccpipe_version"], config["pii"], found.get("PIIScrubber")),
            # a signature: the text's words (spaCy's, datatrove's segmenters) hashed with the MinHash settings
            "minhash_signatures": _digest(resolved["ccpipe_version"], versions["datatrove"], versions.get("spacy"),
                                          found.get("Signature") or found.get("LanguageSignature")),
            # a text's ids: the vocabulary (its sha256, end-of-text id, pattern), not where it was read from (a
            # name or a path), and the library that encodes
            "bpe_tokens": _digest(resolved["ccpipe_version"], versions.get("tiktoken"), versions.get("tokenizers"),
                                  {k: v for k, v in found.get("tokenizer", {}).items() if k not in ("name", "path")})}


def _changed(old: dict, new: dict, keys: tuple[str, ...]) -> list[str]:
    return [k for k in keys if old.get(k) != new.get(k)]


def plan_reuse(source: str | Path, resolved: dict) -> tuple[Reuse | None, dict]:
    """(how the base phase reuses `source`'s work, or None; the `reused` entry of the new resolved config)."""
    layout = RunLayout(Path(source).absolute())  # task processes (Ray workers) may run in another directory
    try:
        previous = layout.read_resolved()
    except (OSError, yaml.YAMLError) as exc:
        raise Refused(f"--reuse {source}: not a ccpipe run directory (no readable config.resolved.yaml: "
                      f"{getattr(exc, 'strerror', None) or exc})") from None
    old = (previous or {}).get("reuse_keys")
    if not old:
        raise Refused(f"--reuse {source}: this run has no reuse store (made by a ccpipe before 'reuse_keys')")
    new = resolved["reuse_keys"]
    entry: dict = {"from": str(layout.root)}
    if old["store"] == new["store"]:
        mode, stages = "replay", list(REPLAYED)
    elif not _changed(old, new, ("reader", "extract")):
        mode, stages = "extraction", ["extract"]
        entry["recomputed_because"] = "changed: " + ", ".join(_changed(old, new, ("blocklist", "langid_precheck")))
    else:
        entry["stages"] = []
        entry["recomputed_because"] = "changed: " + ", ".join(_changed(old, new, ("reader", "extract")))
        return None, entry
    scores = old["langid_scores"] == new["langid_scores"]
    if scores:
        stages.append("langid_scores")
    quality = old.get("quality_memo") == new["quality_memo"]
    if quality:
        stages.append("quality_signals")
    pii = old.get("pii_memo") == new["pii_memo"]
    if pii:
        stages.append("pii_findings")
    signatures = resolved["config"]["dedup"]["enabled"] and old.get("minhash_signatures") == new["minhash_signatures"]
    if signatures:
        stages.append("minhash_signatures")
    tokens = old.get("bpe_tokens") == new["bpe_tokens"]
    if tokens:
        stages.append("bpe_tokens")
    missing = tuple(rank for rank in range(resolved["tasks"])
                    if not (layout.reuse_store / f"{rank:05d}.parquet").is_file())
    entry.update({"mode": mode, "stages": stages})
    if missing:
        entry["tasks_recomputed"] = list(missing)
    buckets = resolved["config"]["dedup"]["buckets"]  # RUN's too: the same key
    unsigned = tuple(rank for rank in range(resolved["tasks"]) if signatures and not _signed(layout, rank, buckets))
    if unsigned:
        entry["signatures_computed"] = list(unsigned)
    return Reuse(layout.root, layout.reuse_store, mode, scores, missing, quality, pii, signatures, unsigned,
                 tokens), entry


def _signed(layout: RunLayout, rank: int, buckets: int) -> bool:
    """Whether the run at `layout` has task `rank`'s signature files (every bucket's) from a completed task."""
    return (layout.completions("base") / f"{rank:05d}").is_file() and all(
        (layout.minhash / "signatures" / f"bucket_{b:03d}" / f"{rank:05d}.minhash.sig").is_file()
        for b in range(buckets))


def reuse_of(resolved: dict) -> Reuse | None:
    """The `Reuse` a run was started with, from its config.resolved.yaml (`ccpipe finalize` rebuilds its phases)."""
    entry = resolved.get("reused") or {}
    if not entry.get("mode"):
        return None
    source = Path(entry["from"])
    return Reuse(source, RunLayout(source).reuse_store, entry["mode"], "langid_scores" in entry["stages"],
                 tuple(entry.get("tasks_recomputed", ())), "quality_signals" in entry["stages"],
                 "pii_findings" in entry["stages"], "minhash_signatures" in entry["stages"],
                 tuple(entry.get("signatures_computed", ())), "bpe_tokens" in entry["stages"])
