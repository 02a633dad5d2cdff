"""LE, ELE and PE as scikit-learn estimators; the schemes, and what they protect, are `veil.schemes.learnable`."""
from __future__ import annotations

from veil.maskers.keyed import KeyedMasker
from veil.schemes.learnable import ELE, LE, PE

LEMasker, ELEMasker, PEMasker = (KeyedMasker.face(scheme, __name__) for scheme in (LE, ELE, PE))
