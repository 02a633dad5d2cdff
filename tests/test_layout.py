"""The package's shape: no module-level import cycle inside veil, and the library never imports the CLI."""
import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_imports() -> dict[str, set[str]]:
    """veil module -> the veil modules it imports at module level (imports inside functions are lazy by design)."""
    files = {".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): p
             for p in SRC.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        deps = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("veil"):
                deps |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                deps |= {alias.name for alias in node.names}
        graph[name] = {dep for dep in deps if dep in files and dep != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [node, dep] if dep in path else [node, dep]
            if not state.get(dep) and (cycle := visit(dep, path + [node])):
                return cycle
        state[node] = 2
        return None

    for node in sorted(graph):
        if not state.get(node) and (cycle := visit(node, [])):
            return cycle
    return None


def test_no_import_cycle():
    assert find_cycle(module_imports()) is None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None


def imports_anywhere(path: Path) -> set[str]:
    """The modules a file imports, lazily inside a function included."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def test_the_library_never_imports_the_cli():
    """Anywhere in a module, lazily inside a function included (`python -m veil`'s __main__ is the command itself)."""
    importers = [str(path) for path in SRC.rglob("*.py")
                 if path.name not in ("cli.py", "__main__.py") and "veil.cli" in imports_anywhere(path)]
    assert importers == []


def test_the_schemes_never_import_the_maskers_or_anything_above():
    """The schemes sit below their estimators (veil.maskers) and everything built on those; the key primitives
    they share with the maskers live below both (veil.keys, which imports nothing of veil's but its errors)."""
    above = ("veil.maskers", "veil.models", "veil.classifiers", "veil.attacks", "veil.experiments", "veil.cli")
    upward = {f"{path.name} imports {name}" for path in (SRC / "veil" / "schemes").rglob("*.py")
              for name in imports_anywhere(path) if name.startswith(above)}
    assert upward == set()
    assert {name for name in imports_anywhere(SRC / "veil" / "keys.py") if name.startswith("veil")} == {"veil.errors"}


#: the package's layers, lowest first: a module never imports one of a higher layer, not even lazily inside a
#: function (the AAE masker is built from veil.models, so maskers and models share a layer)
LAYERS = (("veil.data",), ("veil.schemes", "veil.maskers", "veil.models"), ("veil.classifiers",), ("veil.attacks",),
          ("veil.experiments",), ("veil.cli",))


def layer_of(module: str) -> int | None:
    for level, packages in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in packages):
            return level
    return None


def upward_imports() -> list[str]:
    found = []
    for path in SRC.rglob("*.py"):
        module = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        level = layer_of(module)
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) else
                     [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            found += [f"{module} -> {name}" for name in names
                      if level is not None and (layer_of(name) or 0) > level]
    return sorted(found)


def test_no_layer_imports_a_higher_one():
    assert upward_imports() == []


def test_the_layer_check_sees_a_lazy_upward_import(tmp_path, monkeypatch):
    (tmp_path / "veil" / "attacks").mkdir(parents=True)
    (tmp_path / "veil" / "attacks" / "x.py").write_text("def f():\n    from veil.experiments.plots import g\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    assert upward_imports() == ["veil.attacks.x -> veil.experiments.plots"]
