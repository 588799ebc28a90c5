"""The sample `make run` reads by default (pipeline/sample/) is what tests/build_sample.py makes of the corpus."""

from __future__ import annotations

from tests.build_sample import SAMPLE, main


def test_the_shipped_sample_rebuilds_byte_for_byte(corpus, tmp_path):
    main(corpus, tmp_path)
    for shipped in sorted(SAMPLE.glob("*.warc.gz")):
        assert (tmp_path / shipped.name).read_bytes() == shipped.read_bytes(), shipped.name
    assert len(list(SAMPLE.glob("*.warc.gz"))) == 2
