"""Masking schemes: one module per scheme, one interface (fit / transform / inverse_transform / save / load).

Attributes are imported on first access (PEP 562), so that `from veil.maskers import EtCMasker` does not import
torch, which only the AAE needs."""
from __future__ import annotations

import importlib

_WHERE = {"AAEMasker": "aae", "EtCMasker": "etc", "LEMasker": "learnable", "ELEMasker": "learnable",
          "PEMasker": "learnable", "ScrambleMasker": "scramble", "BlurMasker": "filters",
          "RandomFilterMasker": "filters", "IIDFilterMasker": "filters", "Secret": "keys", "MASKERS": "base",
          "Masker": "base", "load_masker": "base", "masker_class": "base", "register_masker": "base"}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
