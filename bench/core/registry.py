"""A small generic registry: entries register themselves by name from the modules of one package.

Modules are imported lazily, the first time a name is looked up or listed, so that `bench/` never has to
name a method or a task: adding one is adding a file to `methods/` or `tasks/`. A registry `by_module`
holds one entry per module, named like the module's file: it lists and checks names without importing
anything, and imports only the module of the entry asked for.

A registry with `plugins` (the name of an entry-point group) also takes entries from other packages, as
lm-eval's registry does, in two ways:
- an entry point of that group (`NAME = "pkg.module:Object"` in an installed distribution's metadata): listed
  by name without importing anything, loaded the first time it is asked for;
- a module path where a name goes (`pkg.module:Object`, or `pkg.module.Object`): imported when asked for.
`admit` says why such an object cannot be an entry (the package's own are checked where they register), and
`canonical(name)` is the name to record for one: a name a fresh process finds the same entry by.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
from collections.abc import Callable
from importlib import metadata
from typing import Generic, TypeVar

from forgetbench.core.errors import UserError, did_you_mean, unknown
from forgetbench.core.store import warn

T = TypeVar("T")

PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")      # a name: never read as a module path (that has . or :)


class Registry(Generic[T]):
    def __init__(self, kind: str, package: str, by_module: bool = False, *, plugins: str | None = None,
                 admit: Callable[[object], str | None] | None = None):
        if plugins is not None and not by_module:
            raise ValueError("a registry takes plugins only by module (its own names are its files')")
        self.kind = kind
        self.package = package
        self.by_module = by_module
        self.plugins = plugins          # the entry-point group of entries from other packages; None: no plugins
        self.admit = admit              # why an object from another package cannot be an entry; None if it can
        self._entries: dict[str, T] = {}
        self._discovered = False
        self._warned: set[str] = set()

    def add(self, name: str, obj: T, module: str | None = None) -> None:
        if self.by_module and module is not None:
            self._check_home(name, module)
        if name in self._entries and self._entries[name] is not obj:
            raise ValueError(f"{self.kind} {name!r} is registered twice "
                             f"({self._entries[name]!r} and {obj!r})")
        self._entries[name] = obj

    def _check_home(self, name: str, module: str) -> None:
        """The package's own entry lives in the file of its name (that is how it is found); another package's takes
        a plain name that is not one of the package's own."""
        if self.plugins is None or _inside(module, self.package):
            if module != f"{self.package}.{name}":
                raise ValueError(f"{self.kind} {name!r} must be defined in {self.package}/{name}.py, not in {module}")
        elif not PLAIN.fullmatch(name):
            raise ValueError(f"{self.kind} name {name!r} (registered by {module}): use letters, digits, _ and -, "
                             "starting with a letter (a . or : reads as a module path)")
        elif name in self._modules():
            raise ValueError(f"{self.kind} {name!r} (registered by {module}) is the name of {self.package}.{name}; "
                             f"give it a name of its own")

    def _modules(self) -> list[str]:
        pkg = importlib.import_module(self.package)
        return sorted(i.name for i in pkgutil.iter_modules(pkg.__path__) if not i.name.startswith("_"))

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        for name in self._modules():
            importlib.import_module(f"{self.package}.{name}")

    def get(self, name: str) -> T:
        if self.by_module and name not in self._entries and name in self._modules():
            importlib.import_module(f"{self.package}.{name}")
        if not self.by_module:
            self._discover()
        if name in self._entries:
            return self._entries[name]
        if name in (points := self._entry_points()):
            return self._load_entry_point(name, points[name])
        if self.plugins is not None and (path := _split_path(name)) is not None:
            return self._load_path(name, *path)
        raise unknown(self.kind, name, self.names())

    def __contains__(self, name: str) -> bool:
        """Whether `get(name)` finds an entry (a module path is imported to tell; an error of that module's own code
        is raised, not taken for an unknown name)."""
        try:
            self.get(name)
        except UserError:
            return False
        return True

    def names(self) -> list[str]:
        if self.by_module:
            return sorted(set(self._modules()) | set(self._entries) | set(self._entry_points()))
        self._discover()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return [(n, self.get(n)) for n in self.names()]

    def the_one(self, flag: str) -> str:
        """The name of the single entry whose attribute `flag` is true (a registry contract: exactly one), among the
        package's own: an installed plugin never changes it (nor is imported to tell)."""
        own = self._modules() if self.by_module else self.names()
        chosen = [n for n in own if getattr(self.get(n), flag)]
        if len(chosen) != 1:
            raise RuntimeError(f"exactly one {self.kind} must set {flag}; found {chosen}")
        return chosen[0]

    def canonical(self, name: str) -> str:
        """The name to record for the entry `name` finds (a run's folder and spec): one that a fresh process finds the
        same entry by and that can name a folder (no : or /). An entry of the package's own or of an entry point is
        recorded by that name, however it was asked for (a module path to it too); any other, asked for by module
        path or by a name that a module of another package registered without an entry point, as `module.Object`:
        the object's own module and name."""
        obj = self.get(name)
        if self.plugins is None:
            return name
        points, own = self._entry_points(), self._modules()
        where = (getattr(obj, "__module__", None), getattr(obj, "__qualname__", None))
        known = [n for n, o in self._entries.items() if o is obj and (n in points or n in own)]
        known += [n for n in sorted(points) if any((ep.module, ep.attr) == where for ep in points[n])]
        if known:
            return name if name in known else known[0]
        module, qualname = where
        if not (isinstance(module, str) and module != "__main__" and isinstance(qualname, str)
                and qualname.isidentifier()):
            raise UserError(f"{self.kind.capitalize()} {name!r} is not defined at the top level of a module, so no "
                            "module path finds it again; define it at module level.")
        return f"{module}.{qualname}"

    # ------------------------------------------------------------------ entries from other packages
    def _entry_points(self) -> dict[str, list[metadata.EntryPoint]]:
        """The group's entry points by name, none loaded; one whose name is not plain, or is one of the package's
        own names, is left out with a warning (the package's own entry keeps its name)."""
        if self.plugins is None:
            return {}
        found: dict[str, list[metadata.EntryPoint]] = {}
        for ep in metadata.entry_points(group=self.plugins):
            if not PLAIN.fullmatch(ep.name):
                self._warn(ep, "is not a plain name (letters, digits, _ and -, starting with a letter); left out")
            elif ep.name in self._modules():
                self._warn(ep, f"is the name of {self.package}.{ep.name}, which keeps it; left out")
            else:
                found.setdefault(ep.name, []).append(ep)
        return found

    def _warn(self, ep: metadata.EntryPoint, why: str) -> None:
        if (key := f"{ep.name}={ep.value}") not in self._warned:
            self._warned.add(key)
            warn(f"{self.kind} entry point {ep.name!r} ({ep.value}, from {_distribution(ep)}) {why}")

    def _load_entry_point(self, name: str, eps: list[metadata.EntryPoint]) -> T:
        if len({ep.value for ep in eps}) > 1:
            raise UserError(f"{self.kind.capitalize()} {name!r} is an entry point of more than one package ("
                            + "; ".join(sorted(f"{_distribution(ep)}: {ep.value}" for ep in eps)) + "); uninstall one.")
        ep = eps[0]
        obj = self._import(ep.module, ep.attr, f"{name!r} (entry point {ep.value}, from {_distribution(ep)})")
        self._check_admitted(f"{name!r} ({ep.value})", obj)
        other = [n for n, o in self._entries.items() if o is obj and n != name]
        if other:
            raise UserError(f"{self.kind.capitalize()} entry point {name!r} ({ep.value}) registers itself as "
                            f"{other[0]!r}; one {self.kind}, one name: make them the same.")
        self._entries[name] = obj
        return obj

    def _load_path(self, name: str, module: str, attr: str) -> T:
        obj = self._import(module, attr, repr(name))
        if not any(self._entries.get(n) is obj for n in self._modules()):     # the package's own: checked already
            self._check_admitted(repr(name), obj)
        return obj

    def _import(self, module: str, attr: str | None, what: str) -> object:
        """`attr` of `module`, imported; a module or attribute that is not there is a UserError."""
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            # only a missing module of the path itself is a wrong name; a module the path's own module fails to
            # import is an error of that module's code, raised as it is
            if e.name is None or not (module == e.name or module.startswith(e.name + ".")):
                raise
            raise UserError(f"{self.kind.capitalize()} {what}: no module named {e.name!r} (is its package installed, "
                            "or its folder on PYTHONPATH?).") from None
        if not attr:
            return mod
        try:
            return functools.reduce(getattr, attr.split("."), mod)
        except AttributeError:
            here = sorted(n for n, v in vars(mod).items() if not n.startswith("_")
                          and (self.admit is None or self.admit(v) is None))
            raise UserError(f"{self.kind.capitalize()} {what}: module {module} has no attribute {attr!r}."
                            f"{did_you_mean(attr, here)} {self.kind.capitalize()}s there: "
                            f"{', '.join(here) or 'none'}.") from None

    def _check_admitted(self, what: str, obj: object) -> None:
        why = self.admit(obj) if self.admit is not None else None
        if why:
            raise UserError(f"{self.kind.capitalize()} {what} {why}.")


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _split_path(name: str) -> tuple[str, str] | None:
    """`pkg.module:Object` or `pkg.module.Object` as (module, object); None for anything else (a plain name)."""
    module, sep, attr = name.partition(":") if ":" in name else name.rpartition(".")
    if not sep or not attr.isidentifier() or not all(part.isidentifier() for part in module.split(".")):
        return None
    return module, attr


def _distribution(ep: metadata.EntryPoint) -> str:
    return ep.dist.name if getattr(ep, "dist", None) is not None else "an unnamed distribution"
