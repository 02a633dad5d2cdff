"""The papers' protocols (demo, tables, pair test, trade-off curves), built from the library pieces.

`veil reproduce NAME` looks NAME up in PROTOCOLS; each protocol module registers itself with `register_protocol`.
A protocol is `run(out_dir, quick=False, seed=0, **options) -> dict` and writes its JSON/PNG/Markdown to out_dir.
"""
from __future__ import annotations

import inspect

from veil.errors import VeilError
from veil.registry import Registry

PROTOCOLS = Registry("protocol", ("veil.experiments.paper", "veil.experiments.tradeoff"))
register_protocol = PROTOCOLS.register
protocol = PROTOCOLS.get


def run_protocol(name: str, out_dir, **options) -> dict:
    """Run protocol `name`; an option it does not take is refused by name (`reproduce tradeoff takes no --masker`)."""
    run = protocol(name)
    unknown = [key for key in options if key not in inspect.signature(run).parameters]
    if unknown:
        raise VeilError(f"reproduce {name} takes no " + ", ".join("--" + key for key in unknown))
    return run(out_dir, **options)
