"""Keyed, exactly invertible block-wise encryptions of 8-bit images (EtC, LE, ELE, PE, block scrambling).

Every one of these schemes moves values around (blocks, pixels inside blocks, colour channels) and inverts some of
them (negative-positive, p xor 255). Composed, that is one permutation P of the 32*32*3 values of an image and one
xor mask: `encrypted = image.flat[P] ^ mask`. Each scheme builds its (P, mask) once from the key, by applying its
steps to an image of value *positions* (`BlockLayout`), with vectorised NumPy block operations; encrypting a batch is
then a single gather and xor over the whole batch, and so is decrypting (with the inverse permutation). uint8 in,
uint8 out, exact.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

from veil.errors import VeilError
from veil.maskers.base import Masker, as_images, build_from_config, read_manifest, write_manifest
from veil.maskers.keys import hkdf

SIDE, CHANNELS = 32, 3
VALUES = SIDE * SIDE * CHANNELS
#: the six orders of three colour channels
CHANNEL_ORDERS = np.array([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])


def to_blocks(image: np.ndarray, block: int) -> np.ndarray:
    """(32, 32, 3) -> (blocks, block, block, 3), blocks in raster order."""
    per_side = SIDE // block
    return image.reshape(per_side, block, per_side, block, CHANNELS).swapaxes(1, 2).reshape(-1, block, block, CHANNELS)


def from_blocks(blocks: np.ndarray) -> np.ndarray:
    """The inverse of `to_blocks`."""
    block = blocks.shape[1]
    per_side = SIDE // block
    return blocks.reshape(per_side, per_side, block, block, CHANNELS).swapaxes(1, 2).reshape(SIDE, SIDE, CHANNELS)


def permute_blocks(blocks: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Output block j is input block order[j]."""
    return blocks[order]


def rotate_flip_blocks(blocks: np.ndarray, ops: np.ndarray) -> np.ndarray:
    """Per block one of 8 operations: rotation by 90 * (op % 4) degrees, then a horizontal flip when op >= 4."""
    rotations = np.stack([np.rot90(blocks, k, axes=(1, 2)) for k in range(4)])
    variants = np.concatenate([rotations, rotations[:, :, :, ::-1]])
    return variants[ops, np.arange(len(blocks))]


def shuffle_channels(blocks: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """Per block one of the six colour-channel orders (`orders` indexes CHANNEL_ORDERS)."""
    return np.take_along_axis(blocks, CHANNEL_ORDERS[orders][:, None, None, :], axis=3)


def shuffle_values(blocks: np.ndarray, orders: np.ndarray, unit: int = 1) -> np.ndarray:
    """Shuffle the values inside each block, in groups of `unit` (1: every value; 3: whole RGB pixels).

    `orders` is one permutation shared by all blocks, shape (size,), or one per block, shape (blocks, size).
    """
    flat = blocks.reshape(len(blocks), -1, unit)
    orders = np.broadcast_to(orders, flat.shape[:2])
    return np.take_along_axis(flat, orders[:, :, None], axis=1).reshape(blocks.shape)


class BlockLayout:
    """Where each encrypted value comes from (`index`) and whether it is inverted (`mask`), block by block."""

    def __init__(self, block: int):
        self.block = block
        self.index = to_blocks(np.arange(VALUES).reshape(SIDE, SIDE, CHANNELS), block)
        self.mask = np.zeros(self.index.shape, dtype=np.uint8)

    @property
    def n_blocks(self) -> int:
        return len(self.index)

    @property
    def block_values(self) -> int:
        return self.block * self.block * CHANNELS

    def move(self, rearrange, *args) -> None:
        """Apply a rearrangement (`permute_blocks`, `rotate_flip_blocks`, ...) to positions and inversions alike."""
        self.index, self.mask = rearrange(self.index, *args), rearrange(self.mask, *args)

    def invert(self, flags: np.ndarray) -> None:
        """Negative-positive transform where `flags` (broadcast to the blocks' shape) is 1: p -> p xor 255."""
        self.mask = self.mask ^ np.broadcast_to(np.asarray(flags, dtype=np.uint8) * np.uint8(255), self.mask.shape)

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        return from_blocks(self.index).reshape(-1), from_blocks(self.mask).reshape(-1)


def _hwc_to_chw_positions() -> tuple[np.ndarray, np.ndarray]:
    """For each channels-first position, its channels-last position; and the reverse."""
    chw_to_hwc = np.arange(VALUES).reshape(SIDE, SIDE, CHANNELS).transpose(2, 0, 1).reshape(-1)
    return chw_to_hwc, np.argsort(chw_to_hwc)


class KeyedMasker(Masker, ABC):
    """A keyed permutation-and-xor scheme. Subclasses set the block sizes they allow and build the layout."""

    default_block: ClassVar[int] = 16
    allowed_blocks: ClassVar[tuple[int, ...]] = (16,)
    #: the masked form is 8-bit pixels: masked sets store it as uint8
    exact_uint8: ClassVar[bool] = True

    def __init__(self, secret: bytes, block: int | None = None):
        block = self.default_block if block is None else int(block)
        if block not in self.allowed_blocks:
            raise VeilError(f"{self.method} takes block sizes {', '.join(map(str, self.allowed_blocks))}, got {block}")
        self.block = block
        prefix = f"{self.method}/block={block}/"
        # the secret is used here only: the object keeps the derived permutation, mask and fingerprint
        self._fingerprint = f"{self.method}:b{block}:" + hkdf(secret, prefix + "fingerprint", 16).hex()
        layout = BlockLayout(block)
        self._build(layout, lambda step: hkdf(secret, prefix + step))
        perm, mask = layout.flat()
        chw_to_hwc, hwc_to_chw = _hwc_to_chw_positions()
        self._encrypt_hwc, self._decrypt_hwc = _cipher_and_inverse(perm, mask)
        self._encrypt_chw, self._decrypt_chw = _cipher_and_inverse(hwc_to_chw[perm[chw_to_hwc]], mask[chw_to_hwc])

    @abstractmethod
    def _build(self, layout: BlockLayout, step_key) -> None:
        """Apply the scheme's steps to `layout`, drawing each step's randomness from `step_key(step name)`."""

    @property
    def config(self) -> dict:
        return {"block": self.block}

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    # ------------------------------------------------------------------ uint8 images, channels last

    def encrypt(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (N, 32, 32, 3) -> encrypted uint8 (N, 32, 32, 3)."""
        return _gather_xor(_check_uint8(pixels), *self._encrypt_hwc)

    def decrypt(self, pixels: np.ndarray) -> np.ndarray:
        """The exact inverse of `encrypt` (with another key, the result is just another scrambled image)."""
        return _gather_xor(_check_uint8(pixels), *self._decrypt_hwc)

    # ------------------------------------------------------------------ the Masker interface: float, channels first

    def transform(self, images) -> np.ndarray:
        """Images (N, 3, 32, 32) in [0, 1] -> encrypted images, same shape, values k/255 (exact 8-bit pixels)."""
        return _gather_xor(_quantise(as_images(images)), *self._encrypt_chw) / np.float32(255)

    def inverse_transform(self, masked: np.ndarray) -> np.ndarray:
        return _gather_xor(_quantise(as_images(masked)), *self._decrypt_chw) / np.float32(255)

    # ------------------------------------------------------------------ persistence: configuration and fingerprint only

    def save(self, directory) -> None:
        """A manifest naming the method, block size and key fingerprint; the secret is never written."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_manifest(directory, self.method, self.config, [], fingerprint=self.fingerprint, secret_files=[],
                       saved_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @classmethod
    def load_public(cls, directory) -> "KeyedMasker":
        """A keyed scheme has no public part: masking needs the secret itself."""
        raise VeilError(f"a {cls.method} masker masks with its secret: use --method {cls.method} with --key-file "
                        "or --key-env", directory)

    @classmethod
    def load(cls, directory, secret: bytes | None = None) -> "KeyedMasker":
        """Rebuild from a saved manifest and the secret; a secret that does not match the fingerprint is refused."""
        manifest = read_manifest(directory)
        if manifest["method"] != cls.method:
            raise VeilError(f"holds a {manifest['method']!r} masker, not {cls.method!r}", directory)
        if secret is None:
            raise VeilError(f"a {cls.method} masker needs its secret (--key-file or --key-env)", directory)
        masker = build_from_config(cls, manifest["config"], directory, secret)
        if manifest.get("fingerprint") != masker.fingerprint:
            raise VeilError("the key does not match this masker's fingerprint (wrong key)", directory)
        return masker


def _check_uint8(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[1:] != (SIDE, SIDE, CHANNELS):
        raise VeilError(f"keyed schemes take uint8 images (N, 32, 32, 3), got {pixels.dtype} {pixels.shape}")
    return pixels


def _quantise(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(images * np.float32(255)), 0, 255).astype(np.uint8)


def _cipher_and_inverse(perm: np.ndarray, mask: np.ndarray) -> tuple[tuple, tuple]:
    """(perm, mask) of `encrypted = x[perm] ^ mask`, and of its inverse `x = encrypted[inverse] ^ mask[inverse]`."""
    inverse = np.argsort(perm)
    return (perm, mask), (inverse, mask[inverse])


def _gather_xor(pixels: np.ndarray, perm: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = np.take(pixels.reshape(len(pixels), -1), perm, axis=1)
    np.bitwise_xor(out, mask, out=out)
    return out.reshape(pixels.shape)
