"""Where `veil mask`, the attacks and the experiments get a masking function by method name: one lookup for every
face of the masking protocol (`veil.schemes.base.MaskingFunction`), which imports neither scikit-learn nor torch.

A method that needs no training is its NumPy scheme (`veil.schemes`), built from a secret and options; a trained one
is loaded from its directory: the AAE's encoder run in NumPy (`NumpyAAE`), any other trained masker (the obfuscator,
the keyed AAE) as its torch estimator, imported only then. A trained masker that is also keyed (the keyed AAE: a
shared network and a secret key) takes both the directory and the secret. Which a method is follows from what its
class declares (`fits_on_data`, `keyed`), never from its name."""
from __future__ import annotations

from veil.errors import VeilError
from veil.maskers.aae_numpy import NumpyAAE
from veil.registry import MASKERS, SCHEMES
from veil.schemes.base import MaskingFunction

#: the methods that need training, by name -> what masks with one of their trained maskers
TRAINED = {NumpyAAE.method: NumpyAAE}


def masking_class(method: str) -> type[MaskingFunction]:
    """The class that masks for `method`; imports no estimator."""
    if method in SCHEMES.names():
        return SCHEMES.get(method)
    if method in TRAINED:
        return TRAINED[method]
    if method not in MASKERS.names():
        raise VeilError(f"unknown masking method {method!r}; known: {', '.join(MASKERS.names())}")
    return MASKERS.get(method)


def masking_function(method: str, masker_dir=None, secret: bytes | None = None, **options) -> MaskingFunction:
    """What `veil mask --method` masks with, built (and so validated) before any output is claimed: a trained
    masker from `masker_dir`, or a scheme from `secret` (when keyed) and `options` (None means the default). What a
    method does not take is refused by name."""
    cls = masking_class(method)
    given = {name: value for name, value in options.items() if value is not None}
    return _load_trained(cls, masker_dir, secret, given) if cls.fits_on_data else _build(cls, masker_dir, secret, given)


def masks_pixels(method: str) -> bool:
    """Whether `veil mask --method` masks uint8 pixels as decoded (see `Capabilities.takes_uint8`): the caller then
    loads the images with `load(..., pixels=True)`, and no float copy of the whole set is made."""
    cls = masking_class(method)
    return cls.exact_uint8 or cls.takes_uint8


def _load_trained(cls, masker_dir, secret: bytes | None, options: dict) -> MaskingFunction:
    if cls.keyed:
        if masker_dir is None or secret is None or options:
            raise VeilError(f"--method {cls.method} takes --masker DIR (the shared network) and its key (--key-file "
                            "or --key-env), no other options")
        return cls.load(masker_dir, secret=secret)
    if masker_dir is None or secret is not None or options:
        raise VeilError(f"--method {cls.method} takes --masker DIR only (a trained or exported masker; no key or "
                        "other options)")
    return cls.load(masker_dir)


def _build(cls, masker_dir, secret: bytes | None, options: dict) -> MaskingFunction:
    method = cls.method
    if masker_dir is not None:
        raise VeilError(f"--masker DIR is for a trained masker; {method} is built from its key/options")
    if cls.keyed and "seed" in options:
        raise VeilError(f"{method} is keyed and takes no --seed: give the secret with --key-file FILE (`veil keygen "
                        "--out FILE` makes one)")
    unknown = [f"--{name}" for name in options if name not in cls.options]
    if unknown:
        takes = ", ".join(f"--{name}" for name in cls.options) or "no options"
        raise VeilError(f"{method} takes {takes}, not {', '.join(unknown)}")
    if cls.keyed != (secret is not None):
        raise VeilError(f"{method} is keyed: give the secret with --key-file FILE or --key-env VARIABLE" if cls.keyed
                        else f"{method} has no key (drop --key-file / --key-env)")
    return cls(secret, **options) if cls.keyed else cls(**options)
