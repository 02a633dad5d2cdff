"""One registry type for every `--name` lookup (masking methods, classifiers, architectures, protocols), in the
manner of timm: modules register their entries on import, and the registry imports its modules on first lookup."""
from __future__ import annotations

import importlib

from veil.errors import VeilError


class Registry:
    def __init__(self, kind: str, modules: tuple[str, ...], tag: str | None = None):
        """`tag`: an attribute set to the registered name on each registered class (e.g. a masker's `method`)."""
        self.kind, self.modules, self.tag = kind, modules, tag
        self.entries: dict = {}
        self._imported = False

    def register(self, name: str):
        def decorator(entry):
            if self.tag:
                setattr(entry, self.tag, name)
            self.entries[name] = entry
            return entry

        return decorator

    def names(self) -> list[str]:
        self._import()
        return sorted(self.entries)

    def get(self, name: str):
        self._import()
        if name not in self.entries:
            raise VeilError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self.entries))}")
        return self.entries[name]

    def _import(self) -> None:
        if not self._imported:
            for module in self.modules:
                importlib.import_module(module)
            self._imported = True
