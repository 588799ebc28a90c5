"""Rebuild `pipeline/sample/*.warc.gz`, the default input of `make run`, from the shared corpus (see the
README.md there); `tests/pipeline/test_sample.py` checks that it gives the shipped bytes.

    python tests/build_sample.py [../shared/corpus] [OUT_DIR]

Picks response records of `warc/bench` by their truth rows (pages under the MIT licence, genuine Common Crawl
records, the planted cases every stage drops) and writes them again with warcio, gzip per record, into two
files. The same corpus gives the same bytes.
"""

from __future__ import annotations

import io
import json
import sys
import uuid
from collections import defaultdict
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.warcwriter import WARCWriter

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "pipeline" / "sample"
ORIGINALS = 36  # English news pages (scrapinghub-aeb, MIT): enough kept documents for a funnel worth reading
# per kind, how many records of the scrapinghub pages (MIT) or of no third-party page (genuine_cc, planted)
TAKE = {"exact_dup": 3, "near_dup": 4, "blocklisted_domain": 3, "blocklisted_word": 2, "non_html": 3,
        "http_error": 3, "genuine_cc": 18}


def choose(truth: list[dict]) -> set[str]:
    """Record ids: the dups with their originals, the pages with planted PII, the planted cases, genuine CC."""
    mit = [r for r in truth if r.get("source") == "scrapinghub-aeb"]
    by_kind = defaultdict(list)
    for row in mit + [r for r in truth if r.get("source") is None]:
        by_kind[row["kind"]].append(row)
    chosen = [row for kind, n in TAKE.items() for row in by_kind[kind][:n]]
    wanted_urls = {row["dup_of"] for row in chosen if row.get("dup_of")}
    originals = [r for r in by_kind["original"] if r["url"] in wanted_urls]
    originals += [r for r in by_kind["original"] if r.get("pii") and r not in originals][:8]
    originals += [r for r in by_kind["original"] if r not in originals][:max(0, ORIGINALS - len(originals))]
    return {row["record_id"] for row in chosen + originals}


def main(corpus: Path, out_dir: Path = SAMPLE) -> None:
    bench = corpus / "warc" / "bench"
    truth = [json.loads(line) for line in (bench / "truth.jsonl").read_text().splitlines()]
    wanted = choose(truth)
    records = []
    for path in sorted(bench.glob("bench-*.warc.gz")):
        with open(path, "rb") as f:
            for record in ArchiveIterator(f, arc2warc=False):
                if record.rec_type == "response" and record.rec_headers.get_header("WARC-Record-ID") in wanted:
                    records.append((record.rec_headers, record.http_headers, record.content_stream().read()))
    halves = (records[0::2], records[1::2])  # two files: two tasks, so `--workers 2` has work for both
    for i, half in enumerate(halves):
        with open(out_dir / f"ccpipe-sample-{i:05d}.warc.gz", "wb") as out:
            writer = WARCWriter(out, gzip=True)
            info = writer.create_warcinfo_record(f"ccpipe-sample-{i:05d}.warc.gz", {
                "software": "ccpipe tests/build_sample.py (warcio)", "isPartOf": "CC-MAIN-2024-22",
                "description": "ccpipe's offline sample: see pipeline/sample/README.md"})
            # fixed date and id: the same bytes each build
            info.rec_headers.replace_header("WARC-Date", "2024-05-18T00:00:00Z")
            info.rec_headers.replace_header("WARC-Record-ID", f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, Path(out.name).name)}>")
            writer.write_record(info)
            for rec_headers, http_headers, payload in half:
                record = writer.create_warc_record(
                    rec_headers.get_header("WARC-Target-URI"), "response", payload=io.BytesIO(payload),
                    warc_headers=rec_headers, http_headers=http_headers)
                writer.write_record(record)
    print(f"{len(records)} records -> " + ", ".join(f"{out_dir}/ccpipe-sample-{i:05d}.warc.gz" for i in range(2)))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "corpus",
         Path(sys.argv[2]) if len(sys.argv) > 2 else SAMPLE)
