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
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from veil.errors import VeilError
from veil.maskers.base import (Masker, build_from_config, float_images, in_layout, read_manifest,
                               register_masker, write_manifest)

CHUNK = 4096


def gaussian_kernel(size: int) -> np.ndarray:
    """OpenCV's getGaussianKernel(size, 0) as a 2-D (size, size) kernel summing to 1."""
    sigma = 0.3 * ((size - 1) / 2 - 1) + 0.8
    offsets = np.arange(size) - (size - 1) / 2
    line = np.exp(-offsets ** 2 / (2 * sigma ** 2))
    line /= line.sum()
    return np.outer(line, line).astype(np.float32)


def filter_images(images: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Correlate each image's channels with its kernel: `kernels` is (K, K) for all images or (N, K, K), one each."""
    import torch  # here, so that building a filter masker does not import torch
    import torch.nn.functional as F

    size = kernels.shape[-1]
    out = np.empty_like(images)
    for start in range(0, len(images), CHUNK):
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + CHUNK]))
        n = len(x)
        k = torch.from_numpy(np.array(np.broadcast_to(kernels, (len(images), size, size))[start:start + n]))
        # every (image, channel) pair is its own group, so one grouped convolution filters the whole chunk
        weight = k.repeat_interleave(3, dim=0)[:, None]
        padded = F.pad(x.reshape(1, n * 3, 32, 32), [size // 2] * 4, mode="reflect")
        out[start:start + n] = F.conv2d(padded, weight, groups=n * 3).reshape(n, 3, 32, 32).numpy()
    return out


class FilterMasker(Masker, ABC):
    """Shared configuration, persistence and fingerprint of the filter perturbations (a kernel size and a seed).

    `kernel` None is the default size; `fit` (which needs no data, and happens on first use when not called) checks
    both and sets `kernel_` and `seed_`."""

    allowed_kernels: ClassVar[tuple[int, ...]] = (3, 5, 7, 9, 11)
    default_kernel: ClassVar[int] = 5
    options = ("kernel", "seed")

    def __init__(self, kernel: int | None = None, seed: int = 0):
        self.kernel, self.seed = kernel, seed

    def _resolved(self) -> tuple[int, int]:
        kernel = self.default_kernel if self.kernel is None else int(self.kernel)
        if kernel not in self.allowed_kernels:
            raise VeilError(f"{self.method} takes kernel sizes {', '.join(map(str, self.allowed_kernels))}, got {kernel}")
        return kernel, int(self.seed)

    def _validate(self) -> None:
        self._resolved()

    def _derive(self) -> None:
        self.kernel_, self.seed_ = self._resolved()

    @property
    def config(self) -> dict:
        fitted = self._fitted()
        return {"kernel": fitted.kernel_, "seed": fitted.seed_}

    @abstractmethod
    def kernels(self, images: np.ndarray) -> np.ndarray:
        """The kernel (K, K) for every image, or one kernel per image (N, K, K)."""

    def transform(self, X) -> np.ndarray:
        """Images, either layout, uint8 or float -> filtered float32 images of the same shape."""
        pixels, channels_last = float_images(X)
        return in_layout(filter_images(pixels, self._fitted().kernels(pixels)), channels_last)

    @property
    def fingerprint(self) -> str:
        kernel = self._fitted().kernels(np.zeros((1, 3, 32, 32), np.float32))
        return f"{self.method}:k{self.kernel_}:" + hashlib.sha256(kernel.tobytes()).hexdigest()[:32]

    def save(self, directory) -> None:
        write_manifest(directory, self.method, self.config, [], fingerprint=self.fingerprint, secret_files=[])

    @classmethod
    def load(cls, directory, opened: dict | None = None) -> "FilterMasker":
        manifest = read_manifest(directory, opened=opened)
        if manifest["method"] != cls.method:
            raise VeilError(f"holds a {manifest['method']!r} masker, not {cls.method!r}", directory)
        return build_from_config(cls, manifest["config"], directory)


@register_masker("blur")
class BlurMasker(FilterMasker):
    """A K x K Gaussian blur (OpenCV's sigma rule); no key, no inverse."""

    def kernels(self, images: np.ndarray) -> np.ndarray:
        return gaussian_kernel(self.kernel_)


@register_masker("randfilter")
class RandomFilterMasker(FilterMasker):
    """One K x K filter of N(0, 1) weights drawn from `seed`, for every image."""

    def kernels(self, images: np.ndarray) -> np.ndarray:
        return np.random.default_rng(self.seed_).standard_normal((self.kernel_, self.kernel_)).astype(np.float32)


@register_masker("iidfilter")
class IIDFilterMasker(FilterMasker):
    """A new random filter per image, drawn from the seed and a digest of the batch, so masking a training set and
    a test set separately does not reuse filters. The fingerprint names only the kernel size and seed: a model
    trained on such data is meant for any data filtered the same way."""

    def kernels(self, images: np.ndarray) -> np.ndarray:
        batch_digest = int.from_bytes(hashlib.sha256(np.ascontiguousarray(images).tobytes()).digest()[:8], "big")
        rng = np.random.default_rng([self.seed_, batch_digest])
        return rng.standard_normal((len(images), self.kernel_, self.kernel_)).astype(np.float32)

    @property
    def fingerprint(self) -> str:
        fitted = self._fitted()
        return f"{self.method}:k{fitted.kernel_}:seed{fitted.seed_}"
