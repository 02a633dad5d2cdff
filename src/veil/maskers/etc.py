"""EtC as a scikit-learn estimator; the scheme, and what it protects, is `veil.schemes.etc`."""
from __future__ import annotations

from veil.maskers.keyed import KeyedMasker
from veil.schemes.etc import EtC

EtCMasker = KeyedMasker.face(EtC, __name__)
