"""The scikit-learn estimator of every scheme in `veil.schemes` (`EtC` -> `EtCMasker`, ...), made here from the
scheme's declared capabilities, so that adding a scheme takes its own module and a registry line, and nothing here.

Which estimator base a scheme gets follows from what it declares: whether it is keyed, and the options it takes
(they are the estimator's parameters)."""
from __future__ import annotations

from veil.errors import VeilError
from veil.maskers.filters import FilterMasker, KeyedFilterMasker, PublicMasker
from veil.maskers.keyed import KeyedMasker
from veil.registry import SCHEMES

#: (keyed, options) -> the estimator base of the schemes declaring them
ESTIMATOR_BASES = {(True, ("block",)): KeyedMasker, (True, ("kernel",)): KeyedFilterMasker,
                   (False, ("kernel",)): FilterMasker, (False, ()): PublicMasker}


def face_of(scheme: type) -> type:
    """The estimator class of `scheme`, registered under its method name (`veil.registry.MASKERS`)."""
    declared = (scheme.keyed, tuple(scheme.options))
    if declared not in ESTIMATOR_BASES:
        raise VeilError(f"no estimator base for a scheme with keyed={declared[0]} and options {declared[1]}; "
                        "add one to veil.maskers.faces.ESTIMATOR_BASES")
    return ESTIMATOR_BASES[declared].face(scheme, __name__)


def _face_every_scheme() -> None:
    """Define each scheme's estimator here, under its class name (so that it pickles and `veil.maskers` finds it)."""
    for method in SCHEMES.names():
        estimator = face_of(SCHEMES.get(method))
        globals()[estimator.__name__] = estimator


_face_every_scheme()
