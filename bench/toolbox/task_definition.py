"""Which files define a task's items, prompts and scoring, found by reading them (YAML lines, `import` statements),
never by importing them: what a task's content hash covers (forgetbench.task.definition_hash).

Files of the task's folder are named relative to it, and task modules it imports by absolute name
(forgetbench.tasks.micro.world) by that name and found where Python finds them, as lm-eval's run will: so a folder
copied or moved elsewhere defines the same task. A package's `__init__.py` is never one of them: it registers tasks,
it does not define their items.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
from pathlib import Path

TASK_PACKAGE = "forgetbench.tasks"          # absolute imports of task code count; libraries' do not

TASK_LINE = re.compile(r"^task:\s*[\"']?([^\"'\s#]+)[\"']?\s*(?:#.*)?$", re.MULTILINE)
INCLUDE_LINE = re.compile(r"^include:\s*[\"']?([^\"'\s#]+)[\"']?\s*(?:#.*)?$", re.MULTILINE)
# `key: !function module.name`, at any depth: lm-eval imports module.py from the YAML's own folder
FUNCTION_TAG = re.compile(r"^\s*(?:-\s+)?([\w-]+):\s*!function\s+([\w.]+)\.\w+\s*$", re.MULTILINE)


def lm_eval_files(include: Path, task: str) -> dict[str, Path]:
    """An lm-eval task's YAML (with those it includes), the modules its `!function` tags name and the modules of
    the same folder those import, transitively; by path relative to `include`."""
    yamls = task_yamls(include, task)
    return _named(yamls, include) | imported_files(called_modules(yamls), include)


def task_yamls(include: Path, task: str) -> set[Path]:
    """The YAML that declares `task: <task>` and those it includes. A name no YAML declares (a group, a tag, a
    Python task) is defined by every YAML of the folder."""
    every = sorted(include.rglob("*.yaml"))
    own = [y for y in every if task in TASK_LINE.findall(y.read_text())]
    found: set[Path] = set()
    todo = list(own or every)
    while todo:
        y = todo.pop()
        if y.is_file() and y not in found:
            found.add(y)
            todo += [y.parent / name for name in INCLUDE_LINE.findall(y.read_text())]
    return found


def scorer_imports(include: Path, task: str) -> set[str]:
    """Every dotted name that the code of the task's `process_results` imports, with what it imports from the
    folder (the verifier, where lm-eval's scoring of the task calls it)."""
    scorers = imported_files(called_modules(task_yamls(include, task), {"process_results"}), include)
    return set().union(*map(imported_names, scorers.values()))


def called_modules(yamls: set[Path], keys: set[str] | None = None) -> set[Path]:
    """The files of the modules the YAMLs' `!function` tags name (those under `keys` only, when given)."""
    return {y.parent / f"{module}.py" for y in yamls for key, module in FUNCTION_TAG.findall(y.read_text())
            if (keys is None or key in keys) and (y.parent / f"{module}.py").is_file()}


def imported_files(files: set[Path], root: Path) -> dict[str, Path]:
    """The files (under `root`) and, transitively, the modules they import: those under `root` by a relative
    import, by path relative to it; task modules imported by absolute name, by that name."""
    found: dict[str, Path] = {}
    todo = [(f.relative_to(root).as_posix(), f) for f in files]
    while todo:
        name, f = todo.pop()
        if name not in found and f.name != "__init__.py":
            found[name] = f
            todo += [m for m in (_module_file(n, f, root) for n in imported_names(f)) if m]
    return found


def imported_names(path: Path) -> set[str]:
    """The dotted names every `import` in the file names, at the top level or inside a function (lm-eval calls
    those): `from a import b` names a.b and a; a relative import keeps its leading dots."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            dots, module = "." * node.level, node.module
            out |= {f"{dots}{module}.{a.name}" if module else dots + a.name for a in node.names}
            out |= {dots + module} if module else set()
    return out


def _module_file(name: str, importer: Path, root: Path) -> tuple[str, Path] | None:
    """(its name, its file) for a module a dotted name imports: a relative import under `root`, by its path
    relative to `root`; a task module imported by absolute name, by that name, where Python finds it (a copied
    folder's loaders.py imports the installed forgetbench.tasks.micro.world, not the copy's world.py)."""
    if name.startswith("."):
        level = len(name) - len(name.lstrip("."))
        path = importer.parents[level - 1].joinpath(*name.lstrip(".").split(".")).with_suffix(".py")
        inside = path.is_file() and path.is_relative_to(root)
        return (path.relative_to(root).as_posix(), path) if inside else None
    if not name.startswith(TASK_PACKAGE + "."):
        return None
    try:
        spec = importlib.util.find_spec(name)      # imports the parent packages (registration), not the module
    except (ImportError, ValueError):
        return None
    origin = Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None
    return (name, origin) if origin else None


def code_files(fn) -> dict[str, Path]:
    """The module that defines a function and the modules of its folder it imports, transitively; by path
    relative to that folder. Empty for a callable whose source is not a file, and for one defined in a package's
    __init__.py (registration code)."""
    try:
        source = Path(inspect.getsourcefile(fn))
    except (TypeError, OSError):
        return {}
    return imported_files({source}, source.parent)


def _named(files: set[Path], root: Path) -> dict[str, Path]:
    return {f.relative_to(root).as_posix(): f for f in files if f.name != "__init__.py"}
