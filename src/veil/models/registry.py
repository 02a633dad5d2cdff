"""timm-style registry: an architecture NAME -> a constructor taking keyword configuration."""
from __future__ import annotations

from veil.registry import ARCHITECTURES

register_model = ARCHITECTURES.register


def build_model(name: str, **config):
    return ARCHITECTURES.get(name)(**config)
