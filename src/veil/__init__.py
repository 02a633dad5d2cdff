"""veil: classify images nobody may see.

Data flows one way: data -> masker -> masked dataset -> classifier -> metrics.

    import veil
    images = veil.load_images("digits")
    masker = veil.EtCMasker(b"a secret of 16 bytes or more", block=8)   # or veil.AAEMasker(...).fit(images)
    masked = masker.transform(images.images)

Maskers and classifiers are scikit-learn estimators (`clone`, `Pipeline`, `GridSearchCV`); keyed maskers keep their
key in a `veil.Secret`, which no repr shows. Names are imported on first use (PEP 562): `import veil` itself does
not import torch, and neither does a keyed or filter masker; the AAE masker and the classifiers do.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> module that defines it
_WHERE = {
    **dict.fromkeys(["AAEMasker", "EtCMasker", "LEMasker", "ELEMasker", "PEMasker", "ScrambleMasker", "BlurMasker",
                     "RandomFilterMasker", "IIDFilterMasker", "Secret", "Masker", "load_masker"], "veil.maskers"),
    **dict.fromkeys(["NNClassifier", "RandomForest", "AdaBoost", "load_classifier"], "veil.classifiers"),
    **dict.fromkeys(["CNNClassifier", "ConvMixerClassifier", "ViTClassifier", "DescramblerCNNClassifier"],
                    "veil.classifiers.images"),
    "MaskedSet": "veil.masked",
    "VeilError": "veil.errors",
    "ImageSet": "veil.data.imageset",
}
#: names whose object is called something else in its module
_RENAMED = {"load_images": ("veil.data.load", "load")}

__all__ = sorted(["__version__", *_WHERE, *_RENAMED])


def __getattr__(name: str):
    """Import a public name's module on first access (PEP 562)."""
    if name in _WHERE:
        module, attribute = _WHERE[name], name
    elif name in _RENAMED:
        module, attribute = _RENAMED[name]
    else:
        raise AttributeError(f"module 'veil' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
