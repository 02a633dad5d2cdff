"""The papers' protocols (demo, tables, pair test, trade-off curves), built from the library pieces.

`veil reproduce NAME` looks NAME up in PROTOCOLS; each protocol module registers itself with `register_protocol`.
A protocol is `run(out_dir, quick=False, seed=0, **options) -> dict` and writes its JSON/PNG/Markdown to out_dir.
"""
from __future__ import annotations

import inspect

from veil.errors import VeilError
from veil.registry import PROTOCOLS

register_protocol = PROTOCOLS.register
protocol = PROTOCOLS.get


def protocol_parts(name: str) -> tuple[str, ...]:
    """The parts `--parts` may narrow protocol `name` to."""
    return protocol(name).parts


def run_protocol(name: str, out_dir, force: bool = False, **options) -> dict:
    """Run protocol `name` into a new folder `out_dir` (`force`: into an existing one, replacing what the protocol
    writes and what it wrote there before, keeping other files; see `veil.io.claim_output`); an option it does not
    take is refused by name (`reproduce tradeoff takes no --masker`)."""
    from veil.io import claim_output

    run = protocol(name)
    unknown = [key for key in options if key not in inspect.signature(run).parameters]
    if unknown:
        raise VeilError(f"reproduce {name} takes no " + ", ".join("--" + key for key in unknown))
    with claim_output(out_dir, force, folder=True, writer=f"reproduce {name}",
                      reads=[options.get("masker"), options.get("work")]) as tmp:
        return run(tmp, **options)
