"""The package's shape: no module-level import cycle inside veil, no import (lazy ones included) from a higher layer
than the importer's, the library never imports the CLI, and a scheme's name is written only where it is declared."""
import ast
import sys
from pathlib import Path

from veil.registry import SCHEMES

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


#: the package's layers, lowest first, following the design (data -> masker -> masked set -> classifier -> metrics;
#: attacks and experiments compose them; the server and the CLI sit on top): a module never imports one of a higher
#: layer, not even lazily inside a function. The AAE masker is built from veil.models, so schemes, maskers and models
#: share a layer; the modules named in no layer (veil.workflows, veil.masked, ...) are glue and are not ranked.
LAYERS = (("veil.errors", "veil.io", "veil.keys", "veil.registry"), ("veil.data",),
          ("veil.schemes", "veil.maskers", "veil.models"), ("veil.classifiers",), ("veil.attacks",),
          ("veil.experiments",), ("veil.serve",), ("veil.commands",), ("veil.cli",))


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layer_of(module: str) -> int | None:
    for level, packages in enumerate(LAYERS):
        if any(in_package(module, package) for package in packages):
            return level
    return None


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")


def imports_by_module() -> dict[str, set[str]]:
    """veil module -> every module it imports, lazily inside a function included."""
    return {module_name(path): imports_anywhere(path) for path in SRC.rglob("*.py")}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """The imports of a module from a higher layer than its own."""
    return sorted(f"{module} -> {name}" for module, names in graph.items() for name in names
                  if layer_of(module) is not None and (layer_of(name) or 0) > layer_of(module))


def test_no_layer_imports_a_higher_one():
    assert upward_imports(imports_by_module()) == []


def test_the_layer_check_sees_a_lazy_upward_import(tmp_path, monkeypatch):
    (tmp_path / "veil" / "attacks").mkdir(parents=True)
    (tmp_path / "veil" / "attacks" / "x.py").write_text("def f():\n    from veil.experiments.plots import g\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    assert upward_imports(imports_by_module()) == ["veil.attacks.x -> veil.experiments.plots"]


def test_the_layer_check_fails_on_each_forbidden_arrow():
    """Each named rule of the layering, fed a graph that breaks it: attacks -> experiments, schemes or maskers ->
    classifiers, the keys -> the schemes (the arrow that once ran back up), data -> maskers, the library -> cli."""
    forbidden = {"veil.attacks.fr": {"veil.experiments.paper"}, "veil.schemes.etc": {"veil.classifiers.nn"},
                 "veil.maskers.aae": {"veil.classifiers.base"}, "veil.keys": {"veil.schemes.keyed"},
                 "veil.data.load": {"veil.maskers.base"}, "veil.serve.app": {"veil.cli"}}
    assert len(upward_imports(forbidden)) == len(forbidden)
    assert upward_imports({"veil.experiments.paper": {"veil.attacks.fr"}, "veil.maskers.faces": {"veil.keys"}}) == []


#: the masking schemes' method names, as `veil.registry` declares them; written nowhere else as string literals
SCHEME_NAMES = frozenset(SCHEMES.modules)
#: where a scheme's name is legitimately written as data, not a dispatch on it: the registry declares the names,
#: the experiments' protocols are configurations naming what they run, an old masked-set format records names as
#: they were written then, and "blur" is also one of the augmentation's degradations
SCHEME_NAMES_ALLOWED = ("veil.registry", "veil.experiments", "veil.masked", "veil.classifiers.augment")


def scheme_name_literals(module: str, source: str) -> list[str]:
    """The string literals in `source` that are a scheme name, outside that scheme's own module (the module that
    registers it) and the allowed places."""
    if any(in_package(module, allowed) for allowed in SCHEME_NAMES_ALLOWED):
        return []
    own = {name for name, home in SCHEMES.modules.items() if home == module}
    return [f"{module}:{node.lineno} {node.value!r}" for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and node.value in SCHEME_NAMES - own]


def test_no_scheme_name_is_written_outside_its_module():
    found = [hit for path in SRC.rglob("*.py") for hit in scheme_name_literals(module_name(path), path.read_text())]
    assert found == []


def test_the_scheme_name_check_finds_a_name_written_elsewhere():
    assert scheme_name_literals("veil.workflows", "if method == 'etc':\n    pass\n") == ["veil.workflows:1 'etc'"]
    assert scheme_name_literals("veil.schemes.etc", "@register_scheme('etc')\nclass EtC: ...\n") == []


def veil_names(tree: ast.Module) -> dict[str, str]:
    """Name bound by an import from veil, anywhere in the module -> the module it comes from."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("veil"):
            names |= {alias.asname or alias.name: node.module for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {(alias.asname or alias.name).split(".")[0]: alias.name for alias in node.names
                      if alias.name.startswith("veil")}
    return names


def command_library_calls(source: str) -> dict[str, list[str]]:
    """`cmd_*` function of a CLI module -> the veil library calls it makes, through the module's own helpers too.
    Building a request (a class of `veil.commands`) is not a call into the library: it only holds the arguments."""
    tree = ast.parse(source)
    imported = veil_names(tree)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}

    def is_request(name: str) -> bool:
        return imported.get(name) == "veil.commands" and name[:1].isupper()

    def calls(function: ast.FunctionDef, seen: frozenset) -> list[str]:
        found = []
        for node in ast.walk(function):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in imported:
                found.append(f"{func.value.id}.{func.attr}")
            elif isinstance(func, ast.Name) and func.id in imported and not is_request(func.id):
                found.append(func.id)
            elif isinstance(func, ast.Name) and func.id in functions and func.id not in seen:
                found += calls(functions[func.id], seen | {func.id})
        return found

    return {name: calls(node, frozenset({name})) for name, node in functions.items() if name.startswith("cmd_")}


def test_each_command_calls_one_library_function():
    """cli.py parses, builds the command's request, calls the command's one door (`veil.commands`) and prints."""
    calls = command_library_calls((SRC / "veil" / "cli.py").read_text())
    assert len(calls) >= 14
    assert {name: found for name, found in calls.items() if len(found) != 1} == {}


def test_the_door_check_sees_a_second_call_through_a_helper():
    source = ("from veil.commands import MaskRequest\nfrom veil.data import load\nfrom veil import workflows\n"
              "def _data(args):\n    return load(args.data)\n"
              "def cmd_mask(args):\n    print(workflows.mask(MaskRequest(_data(args))))\n"
              "def cmd_keygen(args):\n    from veil.keyfiles import write_new_key\n    write_new_key(args.out)\n")
    assert command_library_calls(source) == {"cmd_mask": ["workflows.mask", "load"], "cmd_keygen": ["write_new_key"]}
