"""The one interface every masking scheme shares, its manifest format, and the registry `--method NAME` uses.

A masker directory holds safetensors/JSON files and `manifest.json` (method, configuration, sha256 of every file,
fingerprint). Loading verifies every checksum, so a tampered or truncated file is refused. The files that must not
leave the data owner are listed under `secret_files` and written mode 0600: an AAE's decoder, and its encoder too,
since with the encoder anyone trains a decoder (results/privacy). "Secret" does not mean "never read to mask":
masking reads the encoder (`load_public`, which never reads the decoder), as a keyed scheme masks with its key.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError

from veil.errors import VeilError
from veil.maskers.files import open_masker_manifest
from veil.registry import MASKERS
from veil.schemes.base import MaskingFunction

register_masker = MASKERS.register
masker_class = MASKERS.get


class MaskerNotFitted(VeilError, NotFittedError):
    """A masker used before it was fitted: a VeilError for the CLI, a NotFittedError for scikit-learn."""


class Masker(TransformerMixin, BaseEstimator, MaskingFunction):
    """A masking scheme as a scikit-learn transformer: fit / transform / inverse_transform, plus save / load.

    Parameters are stored by `__init__` as given; `fit(X, y=None)` validates them and derives or learns the state
    (attributes ending in `_`). `transform` takes images in either layout (see `veil.schemes.base.image_array`).

    What generic code may rely on is declared in class attributes (`Capabilities`), never sniffed from an instance.
    """

    #: files that must not leave the data owner (mode 0600, never in masked outputs); masking may read some of them
    secret_files: ClassVar[tuple[str, ...]] = ()
    #: trained with the owner's labels as well as its images (`fit(X, y)`; `veil train-masker` loads them)
    fits_on_labels: ClassVar[bool] = False

    def fit(self, X=None, y=None) -> "Masker":
        """Validate the parameters and derive the masking function from them; X and y are not used."""
        self._validate()
        self._derive()
        self.fitted_params_ = self.get_params(deep=False)
        return self

    def _validate(self) -> None:
        """Check the parameters (raising VeilError, or ValueError/TypeError for values of the wrong type)."""

    def _derive(self) -> None:
        """Set the fitted state that follows from the parameters."""

    def _fitted(self) -> "Masker":
        """Self, fitted: a masker whose state follows from its parameters alone fits itself on first use, and again
        when a parameter was set since (so `EtCMasker(secret).transform(X)` works, as for a stateless transformer)."""
        fitted = getattr(self, "fitted_params_", None)
        if fitted is None or any(value is not fitted.get(name) for name, value in self.get_params(deep=False).items()):
            self.fit()
        return self

    def transform(self, X) -> np.ndarray:
        raise VeilError(f"{self.method} masker cannot transform")

    @property
    def fingerprint(self) -> str:
        """One-way identifier of the masking function (encoder weights or key), stored with masked data."""
        raise MaskerNotFitted(f"{self.method} masker is not fitted")

    def save(self, directory) -> None:
        raise VeilError(f"{self.method} masker cannot be saved")

    @classmethod
    def load(cls, directory, opened: dict | None = None, **kwargs) -> "Masker":
        """`opened`: the directory's manifest when the caller has read it already (see `read_manifest`)."""
        raise VeilError(f"{cls.method} masker cannot be loaded")

    @classmethod
    def load_public(cls, directory, opened: dict | None = None) -> "Masker":
        """Load only what masking needs (an AAE's encoder; its decoder is never read)."""
        return cls.load(directory, opened=opened)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # 4-D images, not a feature matrix
        tags.target_tags.required = False
        tags.requires_fit = self.fits_on_data
        tags.transformer_tags.preserves_dtype = ["uint8"] if self.exact_uint8 else []
        return tags


class SchemeMasker(Masker):
    """The estimator face of a NumPy-only scheme (`veil.schemes`): its parameters are the scheme's constructor
    arguments, `fit` builds the scheme (`scheme_`), and masking, configuration and fingerprint are the scheme's own.
    `face` makes the estimator class of each scheme."""

    scheme: ClassVar[type]

    @classmethod
    def face(cls, scheme: type, module: str) -> type:
        """The estimator class of `scheme` (`EtC` -> `EtCMasker`, defined in `module`): a subclass of this class
        that takes over the capabilities the scheme declares (`SHOWN`) and its docstring, registered under the
        scheme's method name."""
        name = f"{scheme.__name__}Masker"
        namespace = {attribute: getattr(scheme, attribute) for attribute in scheme.SHOWN}
        namespace.update(scheme=scheme, __module__=module, __qualname__=name,
                         __doc__=f"{scheme.__doc__}\n\n    The scikit-learn estimator of `{scheme.__module__}.{name[:-6]}`.")
        return register_masker(scheme.method)(type(name, (cls,), namespace))

    def _validate(self) -> None:
        self.scheme.check(**self.get_params(deep=False))

    def _derive(self) -> None:
        self.scheme_ = self.scheme(**self.get_params(deep=False))

    def transform(self, X) -> np.ndarray:
        return self._fitted().scheme_.transform(X)

    def inverse_transform(self, X) -> np.ndarray:
        return self._fitted().scheme_.inverse_transform(X)

    def masked_meta(self, masked: np.ndarray) -> dict:
        return self._fitted().scheme_.masked_meta(masked)

    @property
    def config(self) -> dict:
        return self._fitted().scheme_.config

    @property
    def fingerprint(self) -> str:
        return self._fitted().scheme_.fingerprint


def build_from_config(cls, config, where, *args):
    """`cls(*args, **config)` for a configuration read from a file, validated: a wrong key or value type is a
    VeilError naming `where`."""
    if not isinstance(config, dict):
        raise VeilError("the masker configuration is not a JSON object", where)
    try:
        masker = cls(*args, **config)
        masker._validate()
        return masker
    except (TypeError, ValueError, OverflowError) as exc:
        raise VeilError(f"invalid masker configuration ({exc})", where) from None


def load_masker(directory, public_only: bool = False, **kwargs) -> Masker:
    """Load whatever masker a directory holds, dispatching on its manifest's method; with `public_only`, only
    what masking needs (`Masker.load_public`). The manifest is read once, here."""
    opened = open_masker_manifest(directory)
    cls = masker_class(opened["method"])
    return cls.load_public(directory, opened=opened) if public_only else cls.load(directory, opened=opened, **kwargs)
