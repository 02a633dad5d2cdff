"""The papers' protocols (demo, tables, pair test, trade-off curves), built from the library pieces.

`veil reproduce NAME` looks NAME up in PROTOCOLS; each protocol module registers itself with `register_protocol`.
A protocol is `run(out_dir, quick=False, seed=0, **options) -> dict` and writes its JSON/PNG/Markdown to out_dir.
"""
from __future__ import annotations

import importlib

from veil.errors import VeilError

PROTOCOLS: dict = {}
_MODULES = ("veil.experiments.paper", "veil.experiments.tradeoff")


def register_protocol(name: str):
    def decorator(run):
        PROTOCOLS[name] = run
        return run

    return decorator


def protocol(name: str):
    for module in _MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    if name not in PROTOCOLS:
        raise VeilError(f"unknown protocol {name!r}; known: {', '.join(sorted(PROTOCOLS))}")
    return PROTOCOLS[name]
