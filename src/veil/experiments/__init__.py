"""The papers' protocols (demo, tables, pair test, trade-off curves), built from the library pieces.

`veil reproduce NAME` looks NAME up in PROTOCOLS; each protocol module registers itself with `register_protocol`.
A protocol is `run(out_dir, quick=False, seed=0, **options) -> dict` and writes its JSON/PNG/Markdown to out_dir.
"""
from __future__ import annotations

from veil.registry import Registry

PROTOCOLS = Registry("protocol", ("veil.experiments.paper", "veil.experiments.tradeoff"))
register_protocol = PROTOCOLS.register
protocol = PROTOCOLS.get
