"""The lossy, unkeyed perturbations of paper 004: linear filters applied to every colour channel, with OpenCV's
default border (reflect-101) so sizes stay 32x32. None of them has an inverse in veil.

- `blur`: a K x K Gaussian blur, sigma = 0.3 ((K - 1) / 2 - 1) + 0.8 (OpenCV's rule, as in the paper).
- `randfilter`: one K x K filter with i.i.d. N(0, 1) weights, drawn from `seed`, used for every image.
- `iidfilter`: a new N(0, 1) K x K filter for every image (drawn from `seed` and a digest of the batch).

Outputs are float32 and, for the random filters, not confined to [0, 1]; classifiers standardise their inputs.

What they protect, as measured by `veil report privacy` (results/privacy/report.md): `blur` has no secret, so
anyone trains its inverse on public images (threat a = b); a fixed `randfilter` is linear, so an oracle or known
pairs invert it, and a masked set records its seed; `iidfilter` changes the filter per image. See the
`{blur,randfilter,iidfilter}*_itn_*` figures.
"""
from __future__ import annotations

import hashlib
from abc import abstractmethod
from typing import ClassVar

import numpy as np

from veil.errors import VeilError
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
    per_image = np.broadcast_to(kernels, (len(images), size, size))
    out = np.zeros_like(images)
    for start in range(0, len(images), CHUNK):
        padded = np.pad(images[start:start + CHUNK], [(0, 0), (0, 0), (half, half), (half, half)], mode="reflect")
        weights, acc = per_image[start:start + len(padded)], out[start:start + len(padded)]
        for dy in range(size):
            for dx in range(size):
                acc += weights[:, dy, dx, None, None, None] * padded[:, :, dy:dy + 32, dx:dx + 32]
    return out


class FilterScheme(Scheme):
    """A filter perturbation of a kernel size and a seed (`kernel` None is the default size); no key, no inverse.
    Outputs are float32 images in the input's layout."""

    allowed_kernels: ClassVar[tuple[int, ...]] = (3, 5, 7, 9, 11)
    default_kernel: ClassVar[int] = 5
    options = ("kernel", "seed")
    SHOWN = Scheme.SHOWN + ("default_kernel", "allowed_kernels")

    def __init__(self, kernel: int | None = None, seed: int = 0):
        self.kernel, self.seed = self.check(kernel, seed)

    @classmethod
    def check(cls, kernel: int | None, seed: int) -> tuple[int, int]:
        """The kernel size (the default for None) and seed, checked."""
        kernel = cls.default_kernel if kernel is None else int(kernel)
        if kernel not in cls.allowed_kernels:
            raise VeilError(f"{cls.method} takes kernel sizes {', '.join(map(str, cls.allowed_kernels))}, got {kernel}")
        return kernel, int(seed)

    @property
    def config(self) -> dict:
        return {"kernel": self.kernel, "seed": self.seed}

    @abstractmethod
    def kernels(self, images: np.ndarray) -> np.ndarray:
        """The kernel (K, K) for every image, or one kernel per image (N, K, K)."""

    def transform(self, X) -> np.ndarray:
        """Images, either layout, uint8 or float -> filtered float32 images of the same shape."""
        pixels, channels_last = float_images(X)
        return in_layout(filter_images(pixels, self.kernels(pixels)), channels_last)

    @property
    def fingerprint(self) -> str:
        kernel = self.kernels(np.zeros((1, 3, 32, 32), np.float32))
        return f"{self.method}:k{self.kernel}:" + hashlib.sha256(kernel.tobytes()).hexdigest()[:32]


@register_scheme("blur")
class Blur(FilterScheme):
    """A K x K Gaussian blur (OpenCV's sigma rule); no key, no inverse."""

    def kernels(self, images: np.ndarray) -> np.ndarray:
        return gaussian_kernel(self.kernel)


@register_scheme("randfilter")
class RandomFilter(FilterScheme):
    """One K x K filter of N(0, 1) weights drawn from `seed`, for every image."""

    def kernels(self, images: np.ndarray) -> np.ndarray:
        return np.random.default_rng(self.seed).standard_normal((self.kernel, self.kernel)).astype(np.float32)


@register_scheme("iidfilter")
class IIDFilter(FilterScheme):
    """A new random filter per image, drawn from the seed and a digest of the batch, so masking a training set and
    a test set separately does not reuse filters. The fingerprint names only the kernel size and seed: a model
    trained on such data is meant for any data filtered the same way."""

    shard_unit = None  # the filters derive from a digest of all the images masked at once

    def kernels(self, images: np.ndarray) -> np.ndarray:
        batch_digest = int.from_bytes(hashlib.sha256(np.ascontiguousarray(images).tobytes()).digest()[:8], "big")
        rng = np.random.default_rng([self.seed, batch_digest])
        return rng.standard_normal((len(images), self.kernel, self.kernel)).astype(np.float32)

    @property
    def fingerprint(self) -> str:
        return f"{self.method}:k{self.kernel}:seed{self.seed}"
