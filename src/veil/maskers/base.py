"""The one interface every masking scheme shares, its manifest format, and the registry `--method NAME` uses.

A masker directory holds safetensors/JSON files and `manifest.json` (method, configuration, sha256 of every file,
fingerprint). Loading verifies every checksum, so a tampered or truncated file is refused. Parts never needed to mask
(an AAE decoder) are listed under `secret_files` and never read by `load_public`. What masking does need is not
public either: an AAE encoder lets anyone train a decoder (results/privacy), and a key decrypts.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError

from veil import __version__, manifest
from veil.data.imageset import ImageSet
from veil.errors import VeilError
from veil.registry import MASKERS

MANIFEST = "manifest.json"
register_masker = MASKERS.register
masker_class = MASKERS.get


class MaskerNotFitted(VeilError, NotFittedError):
    """A masker used before it was fitted: a VeilError for the CLI, a NotFittedError for scikit-learn."""


CHANNELS_FIRST, CHANNELS_LAST = (3, 32, 32), (32, 32, 3)


def image_array(images) -> tuple[np.ndarray, bool]:
    """The validated array of an ImageSet or array-like of 32x32 RGB images, and whether it is channels-last.

    Images come as (N, 3, 32, 32) (PyTorch's layout) or (N, 32, 32, 3) (Pillow's and NumPy's): at 32x32 with three
    channels the two cannot be confused. Values are uint8 (0 to 255) or floats (normally in [0, 1])."""
    array = images.images if isinstance(images, ImageSet) else np.asarray(images)
    if array.ndim != 4 or array.shape[1:] not in (CHANNELS_FIRST, CHANNELS_LAST):
        raise VeilError(f"images must have shape (N, 3, 32, 32) or (N, 32, 32, 3), got {array.shape}")
    if len(array) == 0:
        raise VeilError("no images (empty dataset)")
    if array.dtype != np.uint8:
        array = np.asarray(array, dtype=np.float32)
        if not np.isfinite(array).all():
            raise VeilError("images contain NaN or infinite values")
    return array, array.shape[1:] == CHANNELS_LAST


def float_images(images) -> tuple[np.ndarray, bool]:
    """Images in either layout, uint8 or float -> float32 (N, 3, 32, 32), uint8 scaled to [0, 1]; and whether
    they came channels-last (to give results back in that layout with `in_layout`)."""
    array, channels_last = image_array(images)
    if array.dtype == np.uint8:
        array = array / np.float32(255)
    return (np.ascontiguousarray(array.transpose(0, 3, 1, 2)) if channels_last else array), channels_last


def as_images(images) -> np.ndarray:
    """`float_images` without the layout: float32 (N, 3, 32, 32)."""
    return float_images(images)[0]


def in_layout(images: np.ndarray, channels_last: bool) -> np.ndarray:
    """Channels-first images (N, 3, 32, 32) in the layout asked for."""
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1)) if channels_last else images


class Masker(TransformerMixin, BaseEstimator):
    """A masking scheme as a scikit-learn transformer: fit / transform / inverse_transform, plus save / load.

    Parameters are stored by `__init__` as given; `fit(X, y=None)` validates them and derives or learns the state
    (attributes ending in `_`). `transform` takes images in either layout (see `image_array`).

    What generic code may rely on is declared in the class attributes below, never sniffed from an instance.
    """

    method: ClassVar[str] = ""
    #: files that hold the secret (never needed to mask, never put in masked outputs)
    secret_files: ClassVar[tuple[str, ...]] = ()
    #: built from a secret key (the `secret` parameter, a `veil.maskers.keys.Secret`); it has no public part
    keyed: ClassVar[bool] = False
    #: must be fitted on images before it masks (an AAE); otherwise the state follows from the parameters alone
    fits_on_data: ClassVar[bool] = False
    #: `inverse_transform` recovers the images (exactly, for the keyed schemes)
    invertible: ClassVar[bool] = False
    #: the masked form is exact 8-bit pixels: masked sets may store it as uint8
    exact_uint8: ClassVar[bool] = False
    #: what `transform` returns: "images" (same shape and layout as its input) or "vectors" (N, features)
    output: ClassVar[str] = "images"
    #: the constructor options a user may set by name (`veil mask --block 8`)
    options: ClassVar[tuple[str, ...]] = ()

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

    def inverse_transform(self, X) -> np.ndarray:
        raise VeilError(f"the {self.method} scheme has no inverse")

    def masked_meta(self, masked: np.ndarray) -> dict:
        """What a masked set records about how it was masked, beside the method and fingerprint (never a secret)."""
        return {"config": self.config}

    @property
    def config(self) -> dict:
        """The resolved configuration (defaults filled in) that a manifest and a masked set record."""
        return {}

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
        """Load only what masking needs; a secret part is never read."""
        return cls.load(directory, opened=opened)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # 4-D images, not a feature matrix
        tags.target_tags.required = False
        tags.requires_fit = self.fits_on_data
        tags.transformer_tags.preserves_dtype = ["uint8"] if self.exact_uint8 else []
        return tags


def write_manifest(directory, method: str, config: dict, files: list[str], **extra) -> None:
    fields = {"veil_version": __version__, "method": method, "config": config, **extra}
    manifest.write_manifest(Path(directory) / MANIFEST, "veil-masker/1", fields, files)


def refuse_unfinished(directory, command: str = "train-masker") -> None:
    manifest.refuse_unfinished(directory, MANIFEST, command)


def _open_manifest(directory) -> dict:
    return manifest.open_manifest(directory, MANIFEST, {"method": str, "config": dict}, "masker", "train-masker")


def read_manifest(directory, skip: tuple[str, ...] = (), opened: dict | None = None) -> dict:
    """Read and verify a masker manifest; files named in `skip` are not needed and not checked. `opened`: the
    manifest already read (by `load_masker`), so that it is not read twice."""
    opened = _open_manifest(directory) if opened is None else opened
    manifest.verify_files(directory, opened, skip, missing_ok=True)
    return opened


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
    opened = _open_manifest(directory)
    cls = masker_class(opened["method"])
    return cls.load_public(directory, opened=opened) if public_only else cls.load(directory, opened=opened, **kwargs)
