"""The file helpers' readers: what they give is what PyYAML's and pyarrow's own readers give."""

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from stages.utils.io import read_parquet, read_yaml


def test_read_yaml_is_safe_load_and_takes_a_lone_surrogate_libyaml_refuses(tmp_path):
    path = tmp_path / "config.resolved.yaml"
    data = {"inputs": ["/data/ünï.warc.gz"], "config": {"pii": {"fast": True, "ratio": 0.5, "ner": None}}}
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    assert read_yaml(path) == yaml.safe_load(path.read_text(encoding="utf-8")) == data
    # a file name that was not UTF-8, as a run of an older version recorded it
    path.write_text('inputs:\n- "/data/bad\\uDCFFname.warc.gz"\n', encoding="utf-8")
    assert read_yaml(path) == {"inputs": ["/data/bad\udcffname.warc.gz"]}


def test_read_parquet_is_read_table_with_its_metadata(tmp_path):
    table = pa.table({"a": [1, 2], "m": [{"x": 1.5}, None]},
                     schema=pa.schema([("a", pa.int64()), ("m", pa.map_(pa.string(), pa.float64()))]))
    pq.write_table(table.replace_schema_metadata({b"k": b"v"}), tmp_path / "t.parquet")
    back = read_parquet(tmp_path / "t.parquet")
    assert back.equals(pq.read_table(tmp_path / "t.parquet")) and back.schema.metadata == {b"k": b"v"}
    assert read_parquet(tmp_path / "t.parquet", columns=["a"]).column_names == ["a"]
