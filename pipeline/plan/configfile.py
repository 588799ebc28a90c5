"""A YAML config file read in bounded time and memory, before any validation of what it says.

At most MAX_CONFIG_BYTES (`--config /dev/zero` used to read until the machine ran out of memory: 21 GB),
UTF-8 (`\\xff\\xfe` was a UnicodeDecodeError traceback), at most MAX_CONFIG_NODES values once YAML's
aliases are expanded (a 400-byte "billion laughs" file hung for over a minute), nested no deeper than
Python's recursion allows, and a mapping of sections at the top (a YAML list was a ValueError traceback).
Each is a ConfigFileError of one line; `pipeline.plan.config` puts the file's name before it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

MAX_CONFIG_BYTES = 1 << 20  # a config is a few KB; the largest in the tests is 2 KB
MAX_CONFIG_NODES = 100_000  # values after alias expansion: a config holds ~100


class ConfigFileError(ValueError):
    """A config file that is no YAML mapping of sections, or too large to be one; `key` names a duplicate key."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


def _check_unique_keys(node: yaml.Node, prefix: str = "", seen_nodes: set[int] | None = None) -> None:
    """PyYAML keeps the last of two equal keys without a word: here a duplicate is an error naming it.

    Each node is checked once: an alias is the same node again, and following every alias of a 400-byte
    "billion laughs" file (9 levels of 9 aliases) would visit 9^9 nodes."""
    seen_nodes = set() if seen_nodes is None else seen_nodes
    if id(node) in seen_nodes:
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            if key in seen:
                raise ConfigFileError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}", key=key)
            seen.add(key)
            _check_unique_keys(value_node, key + ".", seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_unique_keys(item, prefix, seen_nodes)


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many nodes `node` stands for once every alias is expanded, counted without expanding any."""
    if id(node) not in sizes:
        sizes[id(node)] = 0  # a recursive alias counts once
        children = (node.value if isinstance(node, yaml.SequenceNode) else
                    [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else [])
        sizes[id(node)] = min(1 + sum(_expanded_size(child, sizes) for child in children), 1 << 62)
    return sizes[id(node)]


def read_config_file(path: str | Path) -> dict:
    """The YAML mapping in `path`, read in bounded time and memory: at most MAX_CONFIG_BYTES, UTF-8, with at
    most MAX_CONFIG_NODES once aliases are expanded, a mapping at the top."""
    with open(path, "rb") as f:
        raw = f.read(MAX_CONFIG_BYTES + 1)  # `--config /dev/zero` never ends: read no more than this
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigFileError(f"larger than {MAX_CONFIG_BYTES // 1024} KiB: not a config file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigFileError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is None:
            return {}
        if _expanded_size(root, {}) > MAX_CONFIG_NODES:
            raise ConfigFileError(f"more than {MAX_CONFIG_NODES:,} values once its aliases are expanded "
                                  "(an alias bomb?)")
        if not isinstance(root, yaml.MappingNode):
            kind = {yaml.SequenceNode: "a list"}.get(type(root), "a single value")
            raise ConfigFileError(f"expected a mapping of sections (input:, langid:, ...) at the top, got {kind}")
        _check_unique_keys(root)
        return yaml.safe_load(text) or {}
    except RecursionError:  # `[[[[...` nested thousands deep: PyYAML's composer recurses per level
        raise ConfigFileError("not valid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigFileError("not valid YAML" + (f" at line {mark.line + 1}" if mark else "")) from exc
