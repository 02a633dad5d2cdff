"""Masking schemes as scikit-learn estimators, one interface (fit / transform / inverse_transform / save / load):
the AAE (`aae`), and every scheme of `veil.schemes`, whose estimator `faces` makes from what the scheme declares.

Attributes are imported on first access (PEP 562), so that `from veil.maskers import EtCMasker` does not import
torch, which only the AAE needs."""
from __future__ import annotations

import importlib

_WHERE = {"AAEMasker": "veil.maskers.aae", "Secret": "veil.keys",
          **dict.fromkeys(["EtCMasker", "LEMasker", "ELEMasker", "PEMasker", "ScrambleMasker", "BlurMasker",
                           "RandomFilterMasker", "IIDFilterMasker"], "veil.maskers.faces"),
          **dict.fromkeys(["MASKERS", "Masker", "load_masker", "masker_class", "register_masker"], "veil.maskers.base")}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
