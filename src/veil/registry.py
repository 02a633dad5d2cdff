"""One registry type for every `--name` lookup (masking methods and schemes, classifiers, architectures, attacks,
protocols, benchmarks), in the manner of timm, and the registries themselves.

Each registry is declared here as a table from entry name to the module that registers it, so that the names can
be listed (command-line choices, `--help`) without importing a module, and so without importing torch. A lookup
imports only the module its name lives in; that module registers its entries on import (`@register_masker("etc")`),
and registering a name the table does not declare is refused, so the table cannot drift from the code.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

from veil.errors import VeilError


class Registry:
    def __init__(self, kind: str, modules: dict[str, str], tag: str | None = None):
        """`modules`: entry name -> the module that registers it. `tag`: an attribute set to the registered name
        on each registered class (e.g. a masker's `method`)."""
        self.kind, self.modules, self.tag = kind, dict(modules), tag
        self.entries: dict = {}

    def register(self, name: str):
        if name not in self.modules:
            raise VeilError(f"{self.kind} {name!r} is not declared in veil.registry")

        def decorator(entry):
            if self.tag:
                setattr(entry, self.tag, name)
            self.entries[name] = entry
            return entry

        return decorator

    def names(self) -> list[str]:
        """Every declared name, sorted; imports nothing."""
        return sorted(self.modules)

    def descriptions(self) -> dict[str, str]:
        """Every declared name -> the first paragraph of the docstring of the function registered under it, on one
        line, in the order the table declares them. Read from the modules' source: like `names`, it imports none of
        them."""
        found = {}
        for module in dict.fromkeys(self.modules.values()):
            found.update(_registered_docstrings(module))
        return {name: found[name] for name in self.modules}

    def get(self, name: str):
        if name not in self.modules:
            raise VeilError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        if name not in self.entries:
            importlib.import_module(self.modules[name])
        return self.entries[name]


def _registered_docstrings(module: str) -> dict[str, str]:
    """name -> the first paragraph of the docstring (on one line) of each function in `module` decorated
    `@register_...("name")`, from its source file, found without importing it or its package."""
    top, *parts = module.split(".")
    path = Path(importlib.util.find_spec(top).origin).parent.joinpath(*parts).with_suffix(".py")
    return {decorator.args[0].value: " ".join(ast.get_docstring(node).split("\n\n")[0].split())
            for node in ast.parse(path.read_text()).body if isinstance(node, ast.FunctionDef)
            for decorator in node.decorator_list
            if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", "").startswith("register_")}


def _table(package: str, modules: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """{module: names} -> {name: "package.module"}."""
    return {name: f"{package}.{module}" for module, names in modules.items() for name in names}


#: the methods that need no training: each a NumPy-only scheme in veil.schemes; `veil.maskers.faces` makes its
#: scikit-learn estimator from what the scheme declares (adding a scheme: docs/adding-a-scheme.md)
SCHEMES = Registry("masking scheme", _table("veil.schemes", {
    "etc": ("etc",), "learnable": ("le", "ele", "pe"), "scramble": ("scramble",),
    "filters": ("blur", "randfilter", "iidfilter")}), tag="method")
MASKERS = Registry("masking method", {"aae": "veil.maskers.aae", "obfuscator": "veil.maskers.obfuscator",
                                      "aae-keyed": "veil.maskers.keyed_aae",
                                      **dict.fromkeys(SCHEMES.modules, "veil.maskers.faces")}, tag="method")
CLASSIFIERS = Registry("model", _table("veil.classifiers", {
    "nn": ("nn",), "ensemble": ("rf", "adaboost"), "images": ("cnn", "convmixer", "vit", "descrambler-cnn")}),
    tag="kind")
ARCHITECTURES = Registry("architecture", _table("veil.models", {
    "aae": ("aae-encoder", "aae-decoder", "aae-discriminator"), "mlp": ("mlp",), "cnn": ("cnn",),
    "convmixer": ("convmixer",), "vit": ("vit",), "inverse": ("itn",), "gan": ("gan-translator", "gan-critic"),
    "descrambler": ("descrambler-cnn",), "obfuscator": ("obfuscator-encoder", "obfuscator-head")}))
ATTACKS = Registry("attack", _table("veil.attacks", {
    "mismatch": ("mismatch",), "itn": ("itn",), "itn_prior": ("itn-prior",), "latent_align": ("latent-align",),
    "latent_linear": ("latent-linear",), "fr": ("fr",), "jigsaw": ("jigsaw",), "gan": ("gan",),
    "neuracrypt": ("neuracrypt",), "deconv": ("deconv",), "model_key": ("model-key",),
    "key_procrustes": ("key-procrustes",), "seed_guess": ("seed-guess",)}), tag="name")
PROTOCOLS = Registry("protocol", _table("veil.experiments", {
    "lis2021.protocol": ("table1", "table2", "pairs", "width", "all"), "manolakos.tradeoff": ("tradeoff",),
    "kiya2022.at224": ("at224",), "privacy.model_key": ("model-key",)}))
BENCHMARKS = Registry("benchmark", _table("veil.experiments.bench", {
    "pipeline": ("encrypt", "startup", "mask", "mask-nproc", "demo", "train-masker", "train"), "serve": ("serve",),
    "stream": ("mask-stream",)}))
