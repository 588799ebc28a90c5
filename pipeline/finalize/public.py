"""The public copy of a ledger part: what `publish` uploads in place of the run's own ledger.

Written by each finalize task beside its ledger part, `work/publish/ledger/part-{rank}.parquet`, with
`work/publish/counts/part-{rank}.json` saying how many rows had PII in their URL and detail (summary.json's
`pii_in_urls`, `pii_in_details`). The run's own ledger keeps the raw values, for audits (`ccpipe audit explain`).
In the public copy:

- `url`, `duplicate_of_url`, `detail` and `excerpt` go through the run's PII scrubbing (stages/pii/fields.py):
  a URL `https://www.example.com/contact?email=jane.roe@example.org` leaves as `...?email=email@example.com`;
- `pii_spans` keep type and offsets, not the values;
- the excerpts of rows dropped before the PII stage (raw text) are left out;
- `warc` is relative to the run's input root (the common folder of its local inputs): no local path leaves.

A run made with `--reuse RUN` and RUN's PII settings (pipeline/plan/reuse.py: `pii_findings` replayed) takes
the scrubbed values of the rows RUN had too from RUN's own ledger part and its public copy, row by row
(`reused_scrubbing`), instead of scrubbing them again: on bench, 0.57 s -> 0.09 s of CPU for 1,416 rows,
nearly all the same as RUN's.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.core.layout import RunLayout
from pipeline.finalize.consolidate import write_ledger_part
from stages.pii.fields import scrub_text, scrub_url
from stages.pii.scrub import DEFAULT_MAX_CANDIDATES, PIIScrubber
from stages.utils.io import write_text_atomic


def public_folder(layout: RunLayout) -> Path:
    return layout.work / "publish"


# A ledger field cannot be dropped like a document, nor scrubbed at any cost: a 64 KiB URL of `555 0100 `
# holds 21,845 PII candidates, 2.7 s of presidio in one finalize task (`+1-212-555-0123.` repeated, one phone
# in each piece between delimiters, 1.4 s). A field over the PII stage's default
# `pii.max_candidates` (an excerpt of 1,000 characters holds well under the default) leaves as this tag,
# counted as holding PII: none of its characters is published.
TOO_DENSE = "<too dense to scrub: withheld>"


@functools.cache
def _scrubber(entities: tuple[str, ...], replacement: str, max_candidates: int | None) -> PIIScrubber:
    return PIIScrubber(entities=list(entities), replacement=replacement, max_candidates=max_candidates)


def _scrubbed_field(scrubber: PIIScrubber | None, value: str | None, scrub) -> tuple[str | None, int]:
    """(public value, how many PII values it had) of one ledger field; `scrub`: scrub_url or scrub_text."""
    if scrubber is None:
        return value, 0
    if value and scrubber.too_dense(value):
        return TOO_DENSE, 1
    return scrub(scrubber, value)


def run_scrubber(resolved: dict) -> PIIScrubber | None:
    """The run's PII scrubber (its entities and replacement style), or None when the run scrubs no PII."""
    pii = resolved["config"].get("pii", {})
    if not pii.get("enabled", True):
        return None
    return _scrubber(tuple(pii["entities"]), pii["replacement"], pii.get("max_candidates", DEFAULT_MAX_CANDIDATES))


def input_root(inputs: list[str]) -> str | None:
    """The common folder of the run's local inputs (URLs are published as they are), or None if none is local."""
    local = [os.path.dirname(os.path.abspath(p)) for p in inputs if "://" not in p]
    return os.path.commonpath(local) if local else None


def relative_warc(path: str | None, root: str | None) -> str | None:
    if path is None or root is None or "://" in path:
        return path
    return os.path.relpath(os.path.abspath(path), root)


def _unscrubbed(stages: list[str]) -> list[str]:
    """The stages up to PII's in the run's funnel: their drops' excerpts are raw text (all, without PII)."""
    return stages[:stages.index("pii") + 1] if "pii" in stages else stages


def _without_values(spans: str | None) -> str | None:
    """`[[type, start, end, value], ...]` -> `[[type, start, end], ...]`."""
    return None if spans is None else json.dumps([s[:3] for s in json.loads(spans)], ensure_ascii=False)


# the scrubbed columns, and the count (summary.json) of rows whose value had PII
SCRUBBED = {"url": "pii_in_urls", "duplicate_of_url": None, "detail": "pii_in_details", "excerpt": None}


def reused_scrubbing(resolved: dict, part: str) -> dict[str, dict]:
    """{column: {raw value: (public value, whether it had PII)}} from ledger part `part` of the run this one
    reuses and its public copy, when that run scrubbed with the same settings (its PII findings are replayed);
    else {}. A value without PII comes out unchanged, so a changed value had PII; a column whose changed values
    do not add up to that run's count (a surrogate equal to the value it replaced) is scrubbed again."""
    entry = resolved.get("reused") or {}
    if "pii_findings" not in entry.get("stages", []):
        return {}
    source = RunLayout(Path(entry["from"]))
    try:
        raw = pq.read_table(source.ledger / part, columns=list(SCRUBBED))
        public = pq.read_table(public_folder(source) / "ledger" / part, columns=list(SCRUBBED))
        counts = json.loads((public_folder(source) / "counts" / f"{Path(part).stem}.json").read_text())
    except (OSError, ValueError, pa.ArrowException):  # deleted or partly written since: scrubbed again, as without
        return {}
    if raw.num_rows != public.num_rows:
        return {}
    memo: dict[str, dict] = {}
    for column, count in SCRUBBED.items():
        pairs = [(v, c) for v, c in zip(raw[column].to_pylist(), public[column].to_pylist()) if c is not None]
        if count is not None and sum(v != c for v, c in pairs) != counts.get(count):
            continue
        memo[column] = {v: (c, v != c) for v, c in pairs}
    return memo


def public_table(table: pa.Table, resolved: dict, reused: dict[str, dict] | None = None
                 ) -> tuple[pa.Table, dict[str, int]]:
    """The public copy of one ledger part (one task's rows), and how many rows had PII in url and detail.
    `reused`: the scrubbed values of another run with the same settings (`reused_scrubbing`)."""
    scrubber = run_scrubber(resolved)
    root = input_root(resolved.get("inputs", []))
    counts = {"pii_in_urls": 0, "pii_in_details": 0}

    def scrubbed(values: list, scrub, count: str | None = None, column: str = "") -> pa.Array:
        out = []
        known = (reused or {}).get(column, {})
        for value in values:
            if value in known:
                clean, found = known[value]
            else:
                clean, found = _scrubbed_field(scrubber, value, scrub)
            out.append(clean)
            if count and found:
                counts[count] += 1
        return pa.array(out, pa.string())

    hide = pc.fill_null(pc.is_in(table["stage"], pa.array(_unscrubbed(resolved["stages"]), pa.string())), False)
    # excerpts after the PII stage are scrubbed text already: scrubbing them again only guards
    excerpt = pc.if_else(hide, pa.scalar(None, pa.string()), table["excerpt"]).to_pylist()
    columns = {
        "url": scrubbed(table["url"].to_pylist(), scrub_url, "pii_in_urls", "url"),
        "duplicate_of_url": scrubbed(table["duplicate_of_url"].to_pylist(), scrub_url, column="duplicate_of_url"),
        "detail": scrubbed(table["detail"].to_pylist(), scrub_text, "pii_in_details", "detail"),
        "excerpt": scrubbed(excerpt, scrub_text, column="excerpt"),
        "warc": pa.array([relative_warc(v, root) for v in table["warc"].to_pylist()], pa.string()),
        "pii_spans": pa.array([_without_values(v) for v in table["pii_spans"].to_pylist()], pa.string()),
    }
    for name, column in columns.items():
        i = table.schema.get_field_index(name)
        table = table.set_column(i, table.schema.field(i), column)
    return table, counts


def read_resolved(layout: RunLayout) -> dict:
    return layout.read_resolved()


def write_public_part(layout: RunLayout, part: Path, resolved: dict | None = None) -> Path:
    """The public copy of ledger part `part` and its counts, under work/publish/; returns the copy's path."""
    resolved = resolved or read_resolved(layout)
    dest = public_folder(layout) / "ledger" / part.name
    table, counts = public_table(pq.read_table(part), resolved, reused_scrubbing(resolved, part.name))
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_ledger_part(table, dest, private=False)
    write_text_atomic(public_folder(layout) / "counts" / f"{part.stem}.json", json.dumps(counts, sort_keys=True))
    return dest


def public_counts(layout: RunLayout) -> dict[str, int]:
    """summary.json's `pii_in_urls` and `pii_in_details`: the sums over the public parts."""
    total = {"pii_in_urls": 0, "pii_in_details": 0}
    folder = public_folder(layout) / "counts"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        for key, n in json.loads(path.read_text()).items():
            total[key] = total.get(key, 0) + n
    return total
