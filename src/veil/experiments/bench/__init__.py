"""`veil bench NAME`: the benchmarks, each registered by name in `veil.registry.BENCHMARKS` with
`@register_benchmark(NAME)` on the function that runs it, whose docstring is the description `veil bench --help`
shows (read from the source, so that the help imports none of the benchmarks' modules).

A benchmark is `run(json_path, **options) -> dict` and writes its figures to the new file `json_path`.
"""
from __future__ import annotations

import inspect

from veil.registry import BENCHMARKS

register_benchmark = BENCHMARKS.register


def run_benchmark(name: str, json_path, **options) -> dict:
    """Run benchmark `name` with those of `options` it takes: the command line offers every benchmark's options to
    each, and a benchmark ignores the others."""
    run = BENCHMARKS.get(name)
    taken = inspect.signature(run).parameters
    return run(json_path, **{key: value for key, value in options.items() if key in taken})
