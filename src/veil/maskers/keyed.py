"""Keyed, exactly invertible block-wise encryptions of 8-bit images (EtC, LE, ELE, PE, block scrambling).

Every one of these schemes moves values around (blocks, pixels inside blocks, colour channels) and inverts some of
them (negative-positive, p xor 255). Composed, that is one permutation P of the 32*32*3 values of an image and one
xor mask: `encrypted = image.flat[P] ^ mask`. Each scheme builds its (P, mask) once from the key, by applying its
steps to an image of value *positions* (`BlockLayout`), with vectorised NumPy block operations; encrypting a batch is
then a single gather and xor over the whole batch, and so is decrypting (with the inverse permutation). uint8 in,
uint8 out, exact.
"""
from __future__ import annotations

import hashlib
import json
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

from veil.errors import VeilError
from veil.maskers.base import Masker, build_from_config, image_array, read_manifest, write_manifest
from veil.maskers.keys import SecretParameter, choices, hkdf, permutations, secret_bytes

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
    """A keyed permutation-and-xor scheme. Subclasses set the block sizes they allow and build the layout.

    Parameters: `secret` (bytes, or a `veil.maskers.keys.Secret`), `block` (None: the scheme's default) and `table`
    (an explicit key table instead of a secret, see `from_table`). Give exactly one of `secret` and `table`. Both are
    kept wrapped in a `Secret` however they are set (the one change made to an argument), so that no repr, log or
    error message shows them; `clone` and `set_params` pass a Secret on unchanged. `fit` derives the cipher (`block_`,
    `ciphers_`, `fingerprint_`); it needs no data and happens on first use when not called.
    """

    keyed = True
    invertible = True
    exact_uint8 = True
    default_block: ClassVar[int] = 16
    allowed_blocks: ClassVar[tuple[int, ...]] = (16,)
    secret = SecretParameter()
    table = SecretParameter()
    options = ("block",)

    def __init__(self, secret=None, block: int | None = None, table=None):
        self.secret = secret
        self.block = block
        self.table = table

    @classmethod
    def key_table(cls, secret, block: int | None = None) -> dict[str, np.ndarray]:
        """The key table that `secret` gives: every step's random choices, by step name (e.g. EtC's K1 to K4).

        Permutation steps are arrays of shape (rows, size) (one row per block, or a single row shared by all
        blocks), each row a permutation of range(size); choice steps are flat arrays of integers in range(options).
        `from_table(key_table(secret, block), block)` encrypts exactly as `cls(secret, block)` does.
        """
        masker = cls(secret, block)
        block = masker._check_block()
        draws = _RecordingDraws(masker._draws(block)[0])
        masker._build(BlockLayout(block), draws)
        return draws.table

    @classmethod
    def from_table(cls, table, block: int | None = None) -> "KeyedMasker":
        """A masker from an explicit key table instead of a secret (for tests, analysis and worked examples).

        `table` maps each step name to its choices, in the form `key_table` returns (any array shape with the right
        number of entries is accepted). Missing or unknown steps, wrong sizes, out-of-range choices and rows that
        are not permutations are refused with a VeilError. Such a masker has no secret: its fingerprint
        ("<method>:b<block>:table:<hash>") is a hash of the table, and `load` with a secret never matches it.
        Equivalent to `cls(table=table, block=block).fit()`.
        """
        return cls(block=block, table=table).fit()

    def _check_block(self) -> int:
        block = self.default_block if self.block is None else int(self.block)
        if block not in self.allowed_blocks:
            raise VeilError(f"{self.method} takes block sizes {', '.join(map(str, self.allowed_blocks))}, got {block}")
        return block

    def _validate(self) -> None:
        self._check_block()
        if (self.secret is None) == (self.table is None):
            raise VeilError(f"a {self.method} masker needs a secret or a key table (exactly one of the two)")

    def _draws(self, block: int) -> tuple["_Draws", str]:
        """Where the steps' choices come from (the secret or the table), and the fingerprint that goes with it."""
        if self.table is not None:
            draws = _TableDraws(self.method, self.table.reveal())
            return draws, f"{self.method}:b{block}:table:" + draws.digest()
        secret = secret_bytes(self.secret, f"a {self.method} secret")
        prefix = f"{self.method}/block={block}/"
        return _SecretDraws(secret, prefix), f"{self.method}:b{block}:" + hkdf(secret, prefix + "fingerprint", 16).hex()

    def _derive(self) -> None:
        """One permutation and xor mask for each image layout, and their inverses (the secret is not kept apart
        from its parameter)."""
        block = self._check_block()
        draws, self.fingerprint_ = self._draws(block)
        layout = BlockLayout(block)
        self._build(layout, draws)
        draws.finish()
        perm, mask = layout.flat()
        chw_to_hwc, hwc_to_chw = _hwc_to_chw_positions()
        self.block_ = block
        # by layout: channels_last -> ((encrypt perm, mask), (decrypt perm, mask))
        self.ciphers_ = {True: _cipher_and_inverse(perm, mask),
                         False: _cipher_and_inverse(hwc_to_chw[perm[chw_to_hwc]], mask[chw_to_hwc])}

    @abstractmethod
    def _build(self, layout: BlockLayout, draws: "_Draws") -> None:
        """Apply the scheme's steps to `layout`, taking each step's random choices from `draws` by step name."""

    @property
    def config(self) -> dict:
        return {"block": self._fitted().block_}

    @property
    def fingerprint(self) -> str:
        return self._fitted().fingerprint_

    # ------------------------------------------------------------------ uint8 images, channels last

    def encrypt(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (N, 32, 32, 3) -> encrypted uint8 (N, 32, 32, 3)."""
        return _gather_xor(_check_uint8(pixels), *self._fitted().ciphers_[True][0])

    def decrypt(self, pixels: np.ndarray) -> np.ndarray:
        """The exact inverse of `encrypt` (with another key, the result is just another scrambled image)."""
        return _gather_xor(_check_uint8(pixels), *self._fitted().ciphers_[True][1])

    # ------------------------------------------------------------------ the transformer interface: either layout

    def transform(self, X) -> np.ndarray:
        """Images, either layout -> encrypted images of the same shape: uint8 for uint8 input, otherwise float32
        values k/255 (exact 8-bit pixels; float input is first rounded to 8 bits)."""
        return self._apply(X, inverse=False)

    def inverse_transform(self, X) -> np.ndarray:
        """The exact inverse of `transform` (same shapes and types)."""
        return self._apply(X, inverse=True)

    def _apply(self, images, inverse: bool) -> np.ndarray:
        array, channels_last = image_array(images)
        pixels = array if array.dtype == np.uint8 else _quantise(array)
        out = _gather_xor(pixels, *self._fitted().ciphers_[channels_last][inverse])
        return out if array.dtype == np.uint8 else out / np.float32(255)

    # ------------------------------------------------------------------ persistence: configuration and fingerprint only

    def save(self, directory) -> None:
        """A manifest naming the method, block size and key fingerprint; the secret is never written."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_manifest(directory, self.method, self.config, [], fingerprint=self.fingerprint, secret_files=[],
                       saved_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @classmethod
    def load_public(cls, directory, opened: dict | None = None) -> "KeyedMasker":
        """A keyed scheme has no public part: masking needs the secret itself."""
        raise VeilError(f"a {cls.method} masker masks with its secret: use --method {cls.method} with --key-file "
                        "or --key-env", directory)

    @classmethod
    def load(cls, directory, secret: bytes | None = None, opened: dict | None = None) -> "KeyedMasker":
        """Rebuild from a saved manifest and the secret; a secret that does not match the fingerprint is refused."""
        manifest = read_manifest(directory, opened=opened)
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


class _Draws(ABC):
    """Where a scheme's `_build` takes its random choices from, step by step."""

    @abstractmethod
    def permutations(self, step: str, rows: int, size: int) -> np.ndarray:
        """`rows` permutations of range(size), shape (rows, size)."""

    @abstractmethod
    def choices(self, step: str, count: int, options: int) -> np.ndarray:
        """`count` integers in range(options), shape (count,)."""

    def finish(self) -> None:
        """Called once the scheme has taken all its choices."""


class _SecretDraws(_Draws):
    """Choices derived from a secret: one HKDF key per step (info "<method>/block=<B>/<step>"), see `veil.maskers.keys`."""

    def __init__(self, secret: bytes, prefix: str):
        self._secret, self._prefix = secret, prefix

    def permutations(self, step: str, rows: int, size: int) -> np.ndarray:
        return permutations(hkdf(self._secret, self._prefix + step), rows, size)

    def choices(self, step: str, count: int, options: int) -> np.ndarray:
        return choices(hkdf(self._secret, self._prefix + step), count, options)


class _RecordingDraws(_Draws):
    """Passes another source's choices through and keeps them, by step name (for `KeyedMasker.key_table`)."""

    def __init__(self, source: _Draws):
        self._source, self.table = source, {}

    def permutations(self, step: str, rows: int, size: int) -> np.ndarray:
        self.table[step] = self._source.permutations(step, rows, size)
        return self.table[step]

    def choices(self, step: str, count: int, options: int) -> np.ndarray:
        self.table[step] = self._source.choices(step, count, options)
        return self.table[step]


class _TableDraws(_Draws):
    """Choices read from an explicit key table, each checked against what the step asks for."""

    def __init__(self, method: str, table):
        self._method = method
        try:
            self._table = {str(step): np.asarray(value) for step, value in dict(table).items()}
        except (TypeError, ValueError) as exc:
            raise VeilError(f"a {method} key table maps step names to integer arrays ({exc})") from None
        self._used: set[str] = set()

    def digest(self) -> str:
        canonical = json.dumps({step: value.tolist() for step, value in sorted(self._table.items())})
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]

    def _take(self, step: str, count: int) -> np.ndarray:
        if step not in self._table:
            raise VeilError(f"the {self._method} key table has no step {step!r}")
        value = self._table[step]
        if value.size != count or not np.issubdtype(value.dtype, np.integer):
            raise VeilError(f"{self._method} key table step {step!r} needs {count} integers, "
                            f"got {value.size} of {value.dtype}")
        self._used.add(step)
        return value.reshape(-1).astype(np.int64)

    def permutations(self, step: str, rows: int, size: int) -> np.ndarray:
        value = self._take(step, rows * size).reshape(rows, size)
        if not (np.sort(value, axis=1) == np.arange(size)).all():
            raise VeilError(f"{self._method} key table step {step!r}: every row must be a permutation of "
                            f"range({size})")
        return value

    def choices(self, step: str, count: int, options: int) -> np.ndarray:
        value = self._take(step, count)
        if value.min() < 0 or value.max() >= options:
            raise VeilError(f"{self._method} key table step {step!r} takes integers in range({options})")
        return value

    def finish(self) -> None:
        """Every step of the table must have been used."""
        unknown = sorted(set(self._table) - self._used)
        if unknown:
            raise VeilError(f"the {self._method} key table has unknown steps: {', '.join(map(repr, unknown))}")
