"""timm-style registry: `--model NAME` -> a constructor taking keyword configuration."""
from __future__ import annotations

from veil.registry import Registry

MODELS = Registry("architecture", ("veil.models.aae", "veil.models.mlp", "veil.models.cnn", "veil.models.convmixer", "veil.models.vit", "veil.models.inverse", "veil.models.gan",
            "veil.models.descrambler"))
register_model = MODELS.register


def build_model(name: str, **config):
    return MODELS.get(name)(**config)
