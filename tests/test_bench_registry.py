"""`veil bench NAME`: the benchmarks' registry, and the descriptions `veil bench --help` reads from their source."""
import inspect

from veil.registry import BENCHMARKS


def test_every_declared_benchmark_registers_itself():
    for name in BENCHMARKS.names():
        BENCHMARKS.get(name)
    assert sorted(BENCHMARKS.entries) == BENCHMARKS.names()


def test_descriptions_read_from_the_source_are_the_registered_docstrings():
    registered = {name: " ".join(inspect.getdoc(BENCHMARKS.get(name)).split("\n\n")[0].split())
                  for name in BENCHMARKS.names()}
    assert BENCHMARKS.descriptions() == registered
    assert list(BENCHMARKS.descriptions()) == list(BENCHMARKS.modules)


def test_every_benchmark_writes_to_its_json_path_first():
    assert all(next(iter(inspect.signature(BENCHMARKS.get(name)).parameters)) == "json_path"
               for name in BENCHMARKS.names())
