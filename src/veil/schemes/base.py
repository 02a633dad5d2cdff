"""What every scheme that needs no training shares: its capabilities, its configuration and fingerprint, and the
image arrays it takes (either layout, uint8 or float).

A scheme object is built from its options (and a key) and is then fixed: constructing it is what fitting is for the
estimator that wraps it (`veil.maskers`). It imports nothing but NumPy, so `veil mask --method etc` and the filters
never load scikit-learn, SciPy or torch.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from veil.data.imageset import ImageSet
from veil.errors import VeilError
from veil.registry import SCHEMES

register_scheme = SCHEMES.register
scheme_class = SCHEMES.get

CHANNELS = 3


def is_channels_last(shape: tuple) -> bool:
    """Whether images of this shape (N, ., ., .) are (N, H, W, 3) rather than veil's own (N, 3, H, W): only when
    the second axis cannot be the channels (an image 3 pixels high is read channels-first)."""
    return shape[1] != CHANNELS and shape[3] == CHANNELS


def image_size(shape: tuple) -> tuple[int, int]:
    """(H, W) of images of this shape, in either layout."""
    return tuple(shape[1:3]) if is_channels_last(shape) else tuple(shape[2:4])


def require_size(array: np.ndarray, size: tuple[int, int], what: str, hint: str = "") -> None:
    """Refuse images (either layout) of another size than `size` (H, W), naming both: a masker or model built for
    one size."""
    got = image_size(array.shape)
    if got != tuple(size):
        raise VeilError(f"{what} takes {size[0]}x{size[1]} images, got {got[0]}x{got[1]}{hint}")


def image_array(images) -> tuple[np.ndarray, bool]:
    """The validated array of an ImageSet or array-like of RGB images (any size), and whether it is channels-last.

    Images come as (N, 3, H, W) (PyTorch's layout) or (N, H, W, 3) (Pillow's and NumPy's). Values are uint8 (0 to
    255) or floats (normally in [0, 1])."""
    array = images.images if isinstance(images, ImageSet) else np.asarray(images)
    if array.ndim != 4 or CHANNELS not in (array.shape[1], array.shape[3]) or 0 in array.shape[1:]:
        raise VeilError(f"images must have shape (N, 3, H, W) or (N, H, W, 3), got {array.shape}")
    if len(array) == 0:
        raise VeilError("no images (empty dataset)")
    if array.dtype != np.uint8:
        array = np.asarray(array, dtype=np.float32)
        if not np.isfinite(array).all():
            raise VeilError("images contain NaN or infinite values")
    return array, is_channels_last(array.shape)


def float_images(images) -> tuple[np.ndarray, bool]:
    """Images in either layout, uint8 or float -> float32 (N, 3, H, W), uint8 scaled to [0, 1]; and whether
    they came channels-last (to give results back in that layout with `in_layout`)."""
    array, channels_last = image_array(images)
    if array.dtype == np.uint8:
        array = array / np.float32(255)
    return (np.ascontiguousarray(array.transpose(0, 3, 1, 2)) if channels_last else array), channels_last


def as_images(images) -> np.ndarray:
    """`float_images` without the layout: float32 (N, 3, H, W)."""
    return float_images(images)[0]


def in_layout(images: np.ndarray, channels_last: bool) -> np.ndarray:
    """Channels-first images (N, 3, H, W) in the layout asked for."""
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1)) if channels_last else images


class Capabilities:
    """What generic code may rely on about a scheme or a masker (`veil.maskers.base.Masker`), declared on its class."""

    method: ClassVar[str] = ""
    #: built from a secret key (a `veil.keys.Secret`); it has no public part
    keyed: ClassVar[bool] = False
    #: must be fitted on images before it masks (an AAE; never a scheme); otherwise it follows from its parameters
    fits_on_data: ClassVar[bool] = False
    #: `inverse_transform` recovers the images (exactly, for the keyed schemes)
    invertible: ClassVar[bool] = False
    #: the masked form is exact 8-bit pixels: masked sets may store it as uint8, and uint8 input needs no floats
    exact_uint8: ClassVar[bool] = False
    #: `transform` takes uint8 pixels as decoded, with no float copy of the whole set: implied by `exact_uint8`, and
    #: declared by a masker that scales each batch itself (the NumPy AAE)
    takes_uint8: ClassVar[bool] = False
    #: the masked images are made to be JPEG-compressed (encryption-then-compression): a sharded set
    #: (`veil.shards`) stores them as JPEG unless asked for lossless PNG; other exact schemes are stored as PNG
    jpeg_compressible: ClassVar[bool] = False
    #: what `transform` returns: "images" (same shape and layout as its input) or "vectors" (N, features)
    output: ClassVar[str] = "images"
    #: how the masking acts, for the attacks that exploit it (`veil.attacks`): "blocks" (keyed permutations and value
    #: flips of pixel blocks, the same for every image of a set), "filter" (a convolution of each image), "latent"
    #: (a learnt encoder's vectors); declared by each masker family
    structure: ClassVar[str] = ""
    #: a new masking function for every image (iidfilter) rather than one for the whole set
    per_image: ClassVar[bool] = False
    #: what a jigsaw solver can assemble: "blocks" (whole blocks moved, turned and recoloured, one arrangement for
    #: the set), "pixels" (one arrangement of the pixels inside every block), or None
    puzzle: ClassVar[str | None] = None
    #: the constructor options a user may set by name (`veil mask --block 8`)
    options: ClassVar[tuple[str, ...]] = ()
    #: masking in shards that start at multiples of this many images gives the bytes of masking the set whole
    #: (`veil.sharding`); None: the result depends on the whole set, which is never sharded
    shard_unit: ClassVar[int | None] = 1


class MaskingFunction(Capabilities, ABC):
    """The one masking protocol: what `veil mask`, the attacks and the experiments mask with, whichever face it has
    (a NumPy scheme, `Scheme`; a scikit-learn estimator, `veil.maskers.base.Masker`; the NumPy AAE encoder,
    `veil.maskers.aae_numpy.NumpyAAE`). It declares its capabilities as class attributes and gives transform (and,
    if invertible, inverse_transform), the configuration and fingerprint a masked set records."""

    @abstractmethod
    def transform(self, X) -> np.ndarray:
        """Images, either layout -> the masked form."""

    def inverse_transform(self, X) -> np.ndarray:
        raise VeilError(f"the {self.method} scheme has no inverse")

    @property
    def config(self) -> dict:
        """The resolved configuration (defaults filled in) that a manifest and a masked set record."""
        return {}

    @property
    def recorded_config(self) -> dict:
        """`config` as a manifest or a results file records it, a dict whatever type `config` has (the AAE's is
        its training recipe, `AAEConfig`)."""
        return self.config

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """One-way identifier of the masking function, stored with masked data."""

    def masked_meta(self, masked: np.ndarray) -> dict:
        """What a masked set records about how it was masked, beside the method and fingerprint (never a secret)."""
        return {"config": self.config}


class Scheme(MaskingFunction):
    """A masking function fixed by its options, that needs no training. The estimator of a scheme takes its
    capabilities from here (`SHOWN`)."""

    #: the class attributes the estimator of this scheme takes over
    SHOWN: ClassVar[tuple[str, ...]] = ("keyed", "invertible", "exact_uint8", "jpeg_compressible", "output", "options",
                                        "shard_unit")

    @classmethod
    def check(cls, **parameters) -> None:
        """Check the constructor's parameters before building (its estimator's `fit` calls this first), raising a
        VeilError for a bad value; a scheme with options checks them here."""
