"""The lossy perturbations of paper 004: linear filters applied to every colour channel, with OpenCV's default
border (reflect-101) so images keep their size (any size larger than half the kernel). None of them has an inverse
in veil.

- `blur`: a K x K Gaussian blur, sigma = 0.3 ((K - 1) / 2 - 1) + 0.8 (OpenCV's rule, as in the paper). It has no
  secret at all: anyone who reads the kernel size rebuilds it exactly.
- `randfilter`: one K x K filter with i.i.d. N(0, 1) weights, derived from a secret key, used for every image.
- `iidfilter`: a new N(0, 1) K x K filter for every image, derived from the key and a digest of that image.

The random filters are keyed as the block encryptions are (`veil.keys`): HKDF-SHA256 of the secret, with info
"<method>/k<K>/<use>", gives one key per use, which SHAKE-256 and Box-Muller turn into normal weights, the same on
every machine. A masked set records only the kernel size and a fingerprint (another HKDF output), never the key.
Outputs are float32 and, for the random filters, not confined to [0, 1]; classifiers standardise their inputs.

What they protect, as measured by `veil report privacy` (results/privacy/report.md): `blur` has no secret, so
anyone trains its inverse on public images (threat a = b); a fixed `randfilter` is linear, so an oracle or known
pairs invert it; `iidfilter` changes the filter per image. See the `{blur,randfilter,iidfilter}*_itn_*` figures.
"""
from __future__ import annotations

import hashlib
import hmac
from abc import abstractmethod
from typing import ClassVar

import numpy as np

from veil.errors import VeilError
from veil.keys import hkdf, key_fingerprint, normals, secret_bytes
from veil.schemes.base import Scheme, float_images, in_layout, register_scheme

#: images filtered at once: a chunk and its padded copy stay in the CPU's cache
CHUNK = 256


def gaussian_kernel(size: int) -> np.ndarray:
    """OpenCV's getGaussianKernel(size, 0) as a 2-D (size, size) kernel summing to 1."""
    sigma = 0.3 * ((size - 1) / 2 - 1) + 0.8
    offsets = np.arange(size) - (size - 1) / 2
    line = np.exp(-offsets ** 2 / (2 * sigma ** 2))
    line /= line.sum()
    return np.outer(line, line).astype(np.float32)


def filter_images(images: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Correlate each image's channels with its kernel: `kernels` is (K, K) for all images or (N, K, K), one each.

    NumPy only, one shifted multiply-add per kernel weight over a chunk of images (as fast here as torch's grouped
    convolution, without importing torch). float32 throughout."""
    size = kernels.shape[-1]
    half = size // 2
    height, width = images.shape[2:]
    if min(height, width) <= half:
        raise VeilError(f"a {size}x{size} filter needs images over {half} pixels high and wide, got {height}x{width}")
    per_image = np.broadcast_to(kernels, (len(images), size, size))
    out = np.zeros_like(images)
    for start in range(0, len(images), CHUNK):
        padded = np.pad(images[start:start + CHUNK], [(0, 0), (0, 0), (half, half), (half, half)], mode="reflect")
        weights, acc = per_image[start:start + len(padded)], out[start:start + len(padded)]
        for dy in range(size):
            for dx in range(size):
                acc += weights[:, dy, dx, None, None, None] * padded[:, :, dy:dy + height, dx:dx + width]
    return out


class FilterScheme(Scheme):
    """A filter perturbation of a kernel size (`kernel` None is the default size); no inverse. Outputs are float32
    images in the input's layout."""

    allowed_kernels: ClassVar[tuple[int, ...]] = (3, 5, 7, 9, 11)
    default_kernel: ClassVar[int] = 5
    options = ("kernel",)
    SHOWN = Scheme.SHOWN + ("default_kernel", "allowed_kernels", "structure", "per_image")
    structure = "filter"

    @classmethod
    def check_kernel(cls, kernel: int | None) -> int:
        """The kernel size (the default for None), checked."""
        kernel = cls.default_kernel if kernel is None else int(kernel)
        if kernel not in cls.allowed_kernels:
            raise VeilError(f"{cls.method} takes kernel sizes {', '.join(map(str, cls.allowed_kernels))}, got {kernel}")
        return kernel

    @property
    def config(self) -> dict:
        return {"kernel": self.kernel}

    @abstractmethod
    def kernels(self, images: np.ndarray) -> np.ndarray:
        """The kernel (K, K) for every image, or one kernel per image (N, K, K)."""

    def transform(self, X) -> np.ndarray:
        """Images, either layout, uint8 or float -> filtered float32 images of the same shape."""
        pixels, channels_last = float_images(X)
        return in_layout(filter_images(pixels, self.kernels(pixels)), channels_last)


@register_scheme("blur")
class Blur(FilterScheme):
    """A K x K Gaussian blur (OpenCV's sigma rule); no inverse. It has no secret at all, by design: anyone who reads
    a blurred set's kernel size rebuilds the blur exactly, so its privacy is the same under threats a and b."""

    def __init__(self, kernel: int | None = None):
        self.kernel = self.check(kernel)

    @classmethod
    def check(cls, kernel: int | None = None) -> int:
        return cls.check_kernel(kernel)

    def kernels(self, images: np.ndarray) -> np.ndarray:
        return gaussian_kernel(self.kernel)

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(gaussian_kernel(self.kernel).tobytes()).hexdigest()
        return f"{self.method}:k{self.kernel}:{digest[:32]}"


class KeyedFilter(FilterScheme):
    """A random filter derived from a secret (bytes or a `veil.keys.Secret`) and a kernel size. The secret itself is
    not kept: only the key of the filter's use (HKDF info "<method>/k<K>/<use>"), as secret as the secret, and the
    fingerprint."""

    keyed = True
    #: what the filter key derives (the last part of its HKDF info)
    use: ClassVar[str]

    def __init__(self, secret=None, kernel: int | None = None):
        self.kernel = self.check(secret, kernel)
        secret = secret_bytes(secret, f"a {self.method} secret")
        prefix = f"{self.method}/k{self.kernel}/"
        self._fingerprint = f"{self.method}:k{self.kernel}:" + key_fingerprint(secret, prefix)
        self._filter_key = hkdf(secret, prefix + self.use)

    @classmethod
    def check(cls, secret=None, kernel: int | None = None) -> int:
        """The kernel size (the default for None), checked, and that a secret is given."""
        if secret is None:
            raise VeilError(f"a {cls.method} masker needs a secret: --key-file FILE or --key-env VARIABLE (`veil "
                            "keygen --out FILE` makes one)")
        return cls.check_kernel(kernel)

    def weights(self, key: bytes) -> np.ndarray:
        """The K x K filter of N(0, 1) weights that `key` gives."""
        return normals(key, self.kernel * self.kernel).reshape(self.kernel, self.kernel).astype(np.float32)

    @property
    def fingerprint(self) -> str:
        return self._fingerprint


@register_scheme("randfilter")
class RandomFilter(KeyedFilter):
    """One K x K filter of N(0, 1) weights derived from the key (HKDF info "randfilter/k<K>/filter"), for every
    image."""

    use = "filter"

    def __init__(self, secret=None, kernel: int | None = None):
        super().__init__(secret, kernel)
        self._filter = self.weights(self._filter_key)

    def kernels(self, images: np.ndarray) -> np.ndarray:
        return self._filter


@register_scheme("iidfilter")
class IIDFilter(KeyedFilter):
    """A new random filter per image, from the key (HKDF info "iidfilter/k<K>/image") and a SHA-256 digest of that
    image alone: different images get unrelated filters, and masking a set whole, in shards or in batches gives the
    same bytes. The fingerprint names the kernel size and key: a model trained on such data is meant for any data
    filtered under that key."""

    use = "image"
    per_image = True

    def kernels(self, images: np.ndarray) -> np.ndarray:
        return np.stack([self.weights(hmac.new(self._filter_key, hashlib.sha256(image.tobytes()).digest(),
                                               hashlib.sha256).digest()) for image in images])
