"""The house's shape, read from its source with `ast`: the layers of the forgetbench package import only the
layers under them, nothing in the engine imports a method, a task or the reporting package (registries load
their entries by name), and there is no import cycle."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# repository folder -> the import package it is mapped to (pyproject.toml's package-dir)
FOLDERS = {"bench": "forgetbench", "methods": "forgetbench.methods", "tasks": "forgetbench.tasks",
           "leaderboard": "forgetbench.leaderboard"}
# layer -> the layers it may import (besides itself). The contracts are forgetbench.method and forgetbench.task.
ALLOWED = {
    "core": set(),
    "toolbox": {"core"},
    "contract": {"core", "toolbox"},
    "records": {"core"},
    "data": {"core", "contract"},
    "runner": {"core", "toolbox", "contract", "records"},
    "sweeper": {"core", "toolbox", "contract", "records", "runner"},
    "cli": {"core", "toolbox", "contract", "records", "runner", "sweeper", "data"},
    "api": {"core", "toolbox", "contract", "records", "runner", "sweeper"},      # never the CLI: the CLI is over it
    "methods": {"core", "toolbox", "contract"},
    "tasks": {"core", "toolbox", "contract"},
    "leaderboard": {"core", "toolbox", "contract", "records"},
}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts[1:])
    if parts and parts[-1] in ("__init__", "__main__"):
        parts = parts[:-1]
    return ".".join([FOLDERS[rel.parts[0]], *parts])


def modules() -> dict[str, Path]:
    return {module_name(p): p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")}


def imports(path: Path, known: set[str] = frozenset()) -> set[str]:
    """Every module an `import` statement in the file names, wherever the statement is (top level or inside a
    function): a cycle broken by a function-level import is still a cycle. `from a import b` names a.b where that
    is a `known` module, else a."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = {f"{node.module}.{a.name}" for a in node.names}
            out |= names & known if names <= known else (names & known) | {node.module}
    return out


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "api"
    return "contract" if parts[1] in ("method", "task") else parts[1]


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {m for m in imports(path, set(known)) if m in known and m != name}
            for name, path in known.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}          # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_every_layer_imports_only_the_layers_under_it():
    offenders = sorted(f"{m} ({layer(m)}) imports {i} ({layer(i)})" for m, out in graph().items() for i in out
                       if layer(i) != layer(m) and layer(i) not in ALLOWED[layer(m)])
    assert not offenders, offenders


def test_every_package_folder_is_a_layer():
    assert {layer(m) for m in modules()} == set(ALLOWED)


def test_the_package_has_no_import_cycle():
    # the package's face re-exports nothing its modules need: the API module is left out (it imports the CLI)
    edges = {m: out - {"forgetbench"} for m, out in graph().items() if m != "forgetbench"}
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges))


def test_the_cycle_finder_finds_a_cycle_hidden_inside_a_function(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("import pkg.b\n")
    b.write_text("def f():\n    from pkg import a\n")
    known = {"pkg.a", "pkg.b"}
    edges = {"pkg.a": imports(a, known) & known, "pkg.b": imports(b, known) & known}
    assert find_cycle(edges) == ["pkg.a", "pkg.b", "pkg.a"]


def test_a_method_never_imports_another_method():
    offenders = sorted(f"{m} imports {i}" for m, out in graph().items() if layer(m) == "methods"
                       for i in out if layer(i) == "methods" and i != "forgetbench.methods")
    assert not offenders, offenders


def test_the_engine_source_names_no_method_and_no_task():
    """Names of registered entries never appear in the engine's code (docstrings and comments may explain)."""
    from forgetbench.method import methods
    from forgetbench.task import presets, suites, targets
    names = set(methods.names()) | set(targets.names()) | set(suites.names()) | set(presets.names()) | {"micro"}
    found = set()
    for p in (ROOT / "bench").rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                found.add(f"{p.relative_to(ROOT)}: {node.value!r}")
    assert not found, sorted(found)


def test_naming_an_unknown_method_loads_no_torch():
    code = ("import sys\nfrom forgetbench.cli import main\ncode = main(['run', '--method', 'nosuch'])\n"
            "print(code, 'torch' in sys.modules, 'transformers' in sys.modules, 'lm_eval' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.split() == ["2", "False", "False", "False"], out.stderr
    assert "Unknown method 'nosuch'" in out.stderr
