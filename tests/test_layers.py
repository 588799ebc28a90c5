"""The layering of the code (../shared/STYLE.md, README "Architecture"), checked on the source by its AST.

Layers import downward only: `stages/` never imports `pipeline/`; inside `pipeline/`, each subpackage
imports only from its own or a lower layer; no import cycle between modules, function-level imports
included; function-level imports of the project's own modules are not allowed at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# lowest first; a module may import from its own layer (no cycles) or any layer below
LAYERS = [
    ("blocklists",),
    ("stages",),
    ("pipeline", "pipeline.core"),  # `pipeline` itself holds only __version__
    ("pipeline.plan",),
    ("pipeline.engines",),
    ("pipeline.finalize",),
    ("pipeline.run", "pipeline.status", "pipeline.audit", "pipeline.release", "pipeline.classifier"),
    ("pipeline.train",),
    ("pipeline.cli",),
]


def layer_of(module: str) -> int:
    best = None
    for i, names in enumerate(LAYERS):
        for name in names:
            if module == name or module.startswith(name + "."):
                if best is None or len(name) > best[1]:
                    best = (i, len(name))
    if best is None:
        raise AssertionError(f"{module}: in no layer of tests/test_layers.py")
    return best[0]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found = {}
    for package in ("stages", "pipeline", "blocklists"):
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """(imported project module, line, inside a function) for every import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    found = []

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                # `from pipeline.x import y` may name a submodule y
                names = [f"{child.module}.{a.name}" if f"{child.module}.{a.name}" in modules else child.module
                         for a in child.names]
            else:
                names = []
            for name in names:
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name:
                    found.append((name, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def test_every_module_is_in_a_layer():
    for module in project_modules():
        layer_of(module)


def test_imports_go_downward_only():
    modules = project_modules()
    problems = []
    for module, path in modules.items():
        for target, line, _ in imports(path, modules):
            if target == "pipeline" and module.startswith("pipeline"):
                continue  # `import pipeline` for __version__
            if layer_of(target) > layer_of(module):
                problems.append(f"{path.relative_to(ROOT)}:{line}: {module} imports {target}, a higher layer")
    assert not problems, "\n".join(problems)


def test_no_function_level_imports_of_the_project():
    modules = project_modules()
    problems = [f"{path.relative_to(ROOT)}:{line}: imports {target} inside a function"
                for module, path in modules.items() for target, line, nested in imports(path, modules) if nested]
    assert not problems, "\n".join(problems)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := dfs(node)):
            return cycle
    return None


def test_no_import_cycles():
    modules = project_modules()
    graph = {module: {t for t, _, _ in imports(path, modules) if t != module} for module, path in modules.items()}
    # a package's __init__ importing nothing, `pipeline` -> `pipeline.x` edges are the package itself
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("graph, cyclic", [({"a": {"b"}, "b": {"a"}}, True), ({"a": {"b"}, "b": {"c"}}, False)])
def test_the_cycle_check_finds_cycles(graph, cyclic):
    assert (find_cycle(graph) is not None) == cyclic


def test_the_layer_check_sees_an_upward_import(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from pipeline.run import run_pipeline\n")
    found = imports(path, project_modules())
    assert ("pipeline.run", 2, True) in found and layer_of("pipeline.run") > layer_of("stages.readers.warc")


MAX_LINES = 400  # ../shared/STYLE.md: "when a file passes ~400 lines, it is probably two things"


def test_no_module_is_over_400_lines():
    too_long = [f"{path.relative_to(ROOT)}: {n} lines" for folder in ("stages", "pipeline", "tests")
                for path in sorted((ROOT / folder).rglob("*.py"))
                if (n := len(path.read_text().splitlines())) > MAX_LINES]
    assert not too_long, "\n".join(too_long)


def test_stages_are_grouped_by_role():
    # steps live in role folders (readers, filters, ...), as datatrove's pipeline/; only the package at the top
    flat = sorted(p.name for p in (ROOT / "stages").glob("*.py") if p.name != "__init__.py")
    assert not flat, f"modules directly under stages/: {flat}"
