"""A small generic registry: entries register themselves by name from the modules of one package.

Modules are imported lazily, the first time a name is looked up or listed, so that `bench/` never has to
name a method or a task: adding one is adding a file to `methods/` or `tasks/`. A registry `by_module`
holds one entry per module, named like the module's file: it lists and checks names without importing
anything, and imports only the module of the entry asked for.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Generic, TypeVar

from forgetbench.core.errors import unknown

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, package: str, by_module: bool = False):
        self.kind = kind
        self.package = package
        self.by_module = by_module
        self._entries: dict[str, T] = {}
        self._discovered = False

    def add(self, name: str, obj: T, module: str | None = None) -> None:
        if self.by_module and module is not None and module != f"{self.package}.{name}":
            raise ValueError(f"{self.kind} {name!r} must be defined in {self.package}/{name}.py, not in {module}")
        if name in self._entries and self._entries[name] is not obj:
            raise ValueError(f"{self.kind} {name!r} is registered twice "
                             f"({self._entries[name]!r} and {obj!r})")
        self._entries[name] = obj

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
        if name not in self._entries:
            raise unknown(self.kind, name, self.names())
        return self._entries[name]

    def names(self) -> list[str]:
        if self.by_module:
            return sorted(set(self._modules()) | set(self._entries))
        self._discover()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return [(n, self.get(n)) for n in self.names()]

    def the_one(self, flag: str) -> str:
        """The name of the single entry whose attribute `flag` is true (a registry contract: exactly one)."""
        chosen = [n for n, obj in self.items() if getattr(obj, flag)]
        if len(chosen) != 1:
            raise RuntimeError(f"exactly one {self.kind} must set {flag}; found {chosen}")
        return chosen[0]
