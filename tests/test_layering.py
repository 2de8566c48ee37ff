"""The engine's shape, read from its source with `ast`: no import cycle inside `bench/`, and no import of the
reporting package, of a method or of a task (registries load their entries by name)."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "bench"
OUTSIDE = ("leaderboard", "methods", "tasks")


def imports(path: Path) -> set[str]:
    """Every module an `import` statement in the file names, wherever the statement is (top level or inside a
    function): a cycle broken by a function-level import is still a cycle."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
            if node.module == "bench":          # `from bench import kl` imports bench.kl
                out |= {f"bench.{a.name}" for a in node.names}
    return out


def engine_graph() -> dict[str, set[str]]:
    modules = {f"bench.{p.stem}": p for p in ENGINE.glob("*.py") if p.stem != "__init__"}
    return {name: {m for m in imports(path) if m in modules} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}          # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_engine_has_no_import_cycle():
    assert find_cycle(engine_graph()) is None, " -> ".join(find_cycle(engine_graph()))


def test_the_cycle_finder_finds_a_cycle_hidden_inside_a_function(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("import bench.b\n")
    b.write_text("def f():\n    from bench import a\n")
    graph = {"bench.a": imports(a) & {"bench.b"}, "bench.b": imports(b) & {"bench.a"}}
    assert find_cycle(graph) == ["bench.a", "bench.b", "bench.a"]


def test_the_engine_imports_no_report_method_or_task():
    offenders = {f"{p.relative_to(ROOT)}: {m}" for p in ENGINE.glob("*.py") for m in imports(p)
                 if m.split(".")[0] in OUTSIDE}
    assert not offenders, sorted(offenders)


def test_the_engine_source_names_no_method_and_no_task():
    """Names of registered entries never appear in the engine's code (docstrings and comments may explain)."""
    from bench.method import methods
    from bench.task import presets, suites, targets
    names = set(methods.names()) | set(targets.names()) | set(suites.names()) | set(presets.names()) | {"micro"}
    found = set()
    for p in ENGINE.glob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                found.add(f"{p.name}: {node.value!r}")
    assert not found, sorted(found)


def test_naming_an_unknown_method_loads_no_torch():
    code = ("import sys\nfrom bench.cli import main\ncode = main(['run', '--method', 'nosuch'])\n"
            "print(code, 'torch' in sys.modules, 'transformers' in sys.modules, 'lm_eval' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.split() == ["2", "False", "False", "False"], out.stderr
    assert "Unknown method 'nosuch'" in out.stderr
