"""Block pixel scrambling as a scikit-learn estimator; the scheme, and what it protects, is `veil.schemes.scramble`."""
from __future__ import annotations

from veil.maskers.keyed import KeyedMasker
from veil.schemes.scramble import Scramble

ScrambleMasker = KeyedMasker.face(Scramble, __name__)
