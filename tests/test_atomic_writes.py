"""Files that later code reads and trusts (stats, task tallies, the publish target, Slurm's job ids and start
time) are written whole or not at all: through `stages/utils/io.py` (a temporary name, then a rename), never
truncated in place, where a kill or a full disk leaves half a JSON file that `ccpipe finalize` then chokes on."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRUSTED = ["pipeline/engines/tasks.py", "pipeline/engines/local.py", "pipeline/engines/slurm.py",
           "pipeline/finalize/publish.py", "pipeline/finalize/finish.py", "stages/writers/ledger.py"]


def in_place_writes(path: Path) -> list[str]:
    """`x.write_text(...)`, `x.write_bytes(...)`, `open(..., "w")` and `folder.open(..., "wt")` in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("write_text", "write_bytes"):
            found.append(f"{path.name}:{node.lineno} {name}")
        if name == "open":
            modes = [a.value for a in node.args[1:2] + [k.value for k in node.keywords if k.arg == "mode"]
                     if isinstance(a, ast.Constant)]
            if any(isinstance(m, str) and "w" in m for m in modes):
                found.append(f"{path.name}:{node.lineno} open(..., {modes[0]!r})")
    return found


@pytest.mark.parametrize("module", TRUSTED)
def test_trusted_files_are_written_atomically(module):
    assert in_place_writes(ROOT / module) == []
