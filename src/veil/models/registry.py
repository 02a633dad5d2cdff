"""timm-style registry: `--model NAME` -> a constructor taking keyword configuration."""
from __future__ import annotations

import importlib

from veil.errors import VeilError

MODELS: dict = {}
_MODULES = ("veil.models.aae", "veil.models.mlp", "veil.models.cnn", "veil.models.convmixer", "veil.models.vit",
            "veil.models.descrambler")


def register_model(name: str):
    def decorator(factory):
        MODELS[name] = factory
        return factory

    return decorator


def _import_all() -> None:
    for module in _MODULES:
        importlib.import_module(module)


def build_model(name: str, **config):
    _import_all()
    if name not in MODELS:
        raise VeilError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name](**config)
