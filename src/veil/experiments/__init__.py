"""The papers' protocols (demo, tables, pair test, trade-off curves), built from the library pieces: one sub-package
per reproduced work (lis2021, with the demo; kiya2022; manolakos), the privacy and frontier reports (privacy,
frontier) and the benchmarks (bench), beside the modules they share (claims, run_accuracy, plots).

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
    """Run protocol `name` into a new folder `out_dir`; an option it does not take is refused by name (`reproduce
    tradeoff takes no --masker`).

    `force` continues an existing folder: the protocol starts from copies of its files, so that a run of some parts
    (`--parts table2`, `--parts report`) reports the results already there too, and then its new and rewritten files
    replace the old ones, what it wrote there before and no longer writes is removed, and other files stay (see
    `veil.io.output.claim_output`)."""
    from veil.io.output import claim_output

    run = protocol(name)
    unknown = [key for key in options if key not in inspect.signature(run).parameters]
    if unknown:
        raise VeilError(f"reproduce {name} takes no " + ", ".join("--" + key for key in unknown))
    with claim_output(out_dir, force, folder=True, writer=f"reproduce {name}", prefill=True,
                      reads=[options.get("masker"), options.get("work")]) as tmp:
        return run(tmp, **options)
