"""The one interface every masking scheme shares, its manifest format, and the registry `--method NAME` uses.

A masker directory holds safetensors/JSON files and `manifest.json` (method, configuration, sha256 of every file,
fingerprint). Loading verifies every checksum, so a tampered or truncated file is refused. Parts never needed to mask
(an AAE decoder) are listed under `secret_files` and never read by `load_public`. What masking does need is not
public either: an AAE encoder lets anyone train a decoder (results/privacy), and a key decrypts.
"""
from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import ClassVar

import numpy as np

from veil import __version__, manifest
from veil.data.imageset import ImageSet
from veil.errors import VeilError
from veil.registry import MASKERS

MANIFEST = "manifest.json"
register_masker = MASKERS.register
masker_class = MASKERS.get


def as_images(images) -> np.ndarray:
    """Accept an ImageSet or an array (N, 3, 32, 32) in [0, 1]; validate and return float32."""
    array = images.images if isinstance(images, ImageSet) else np.asarray(images)
    if array.ndim != 4 or array.shape[1:] != (3, 32, 32):
        raise VeilError(f"images must have shape (N, 3, 32, 32), got {array.shape}")
    if len(array) == 0:
        raise VeilError("no images (empty dataset)")
    array = np.asarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise VeilError("images contain NaN or infinite values")
    return array


class Masker:
    """fit / transform / inverse_transform / save / load, in the manner of a scikit-learn transformer."""

    method: ClassVar[str] = ""
    #: files that hold the secret (never needed to mask, never put in masked outputs)
    secret_files: ClassVar[tuple[str, ...]] = ()
    # Capabilities, read by the workflows instead of asking what type a masker is:
    #: masking needs a trained masker, loaded from its directory (`--masker DIR`), not one built from options
    needs_training: ClassVar[bool] = False
    #: built from a secret (`--key-file`/`--key-env`), which also unmasks
    keyed: ClassVar[bool] = False
    #: the constructor options a user may set by name (`veil mask --block 8`)
    options: ClassVar[tuple[str, ...]] = ()
    #: the masked form is exact 8-bit pixels: masked sets store it as uint8
    exact_uint8: ClassVar[bool] = False

    def fit(self, images, **kwargs) -> "Masker":
        return self

    def transform(self, images) -> np.ndarray:
        raise VeilError(f"{self.method} masker cannot transform")

    def inverse_transform(self, masked: np.ndarray) -> np.ndarray:
        raise VeilError(f"the {self.method} scheme has no inverse")

    def masked_meta(self, masked: np.ndarray) -> dict:
        """What a masked set records about how it was masked, beside the method and fingerprint (never a secret)."""
        return {"config": self.config}

    @property
    def fingerprint(self) -> str:
        """One-way identifier of the masking function (encoder weights or key), stored with masked data."""
        raise VeilError(f"{self.method} masker is not fitted")

    def save(self, directory) -> None:
        raise VeilError(f"{self.method} masker cannot be saved")

    @classmethod
    def load(cls, directory, **kwargs) -> "Masker":
        raise VeilError(f"{cls.method} masker cannot be loaded")

    @classmethod
    def load_public(cls, directory) -> "Masker":
        """Load only what masking needs; a secret part is never read."""
        return cls.load(directory)


def write_manifest(directory, method: str, config: dict, files: list[str], **extra) -> None:
    fields = {"veil_version": __version__, "method": method, "config": config, **extra}
    manifest.write_manifest(Path(directory) / MANIFEST, "veil-masker/1", fields, files)


def refuse_unfinished(directory, command: str = "train-masker") -> None:
    manifest.refuse_unfinished(directory, MANIFEST, command)


#: the manifest `load_masker` has read, handed to the class's `load` so that it is not read twice
_OPENED: ContextVar[tuple[Path, dict] | None] = ContextVar("veil_opened_masker_manifest", default=None)


def _open_manifest(directory) -> dict:
    opened = _OPENED.get()
    if opened is not None and opened[0] == Path(directory):
        return opened[1]
    return manifest.open_manifest(directory, MANIFEST, {"method": str, "config": dict}, "masker", "train-masker")


def read_manifest(directory, skip: tuple[str, ...] = ()) -> dict:
    """Read and verify a masker manifest; files named in `skip` are not needed and not checked."""
    opened = _open_manifest(directory)
    manifest.verify_files(directory, opened, skip, missing_ok=True)
    return opened


def build_from_config(cls, config, where, *args):
    """`cls(*args, **config)` for a configuration read from a file: a wrong key or value type is a VeilError."""
    if not isinstance(config, dict):
        raise VeilError("the masker configuration is not a JSON object", where)
    try:
        return cls(*args, **config)
    except (TypeError, ValueError, OverflowError) as exc:
        raise VeilError(f"invalid masker configuration ({exc})", where) from None


def load_masker(directory, public_only: bool = False, **kwargs) -> Masker:
    """Load whatever masker a directory holds, dispatching on its manifest's method; with `public_only`, only
    what masking needs (`Masker.load_public`). The manifest is read once, here."""
    opened = _open_manifest(directory)
    cls = masker_class(opened["method"])
    token = _OPENED.set((Path(directory), opened))
    try:
        return cls.load_public(directory) if public_only else cls.load(directory, **kwargs)
    finally:
        _OPENED.reset(token)
