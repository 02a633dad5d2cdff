"""Keyed, exactly invertible block-wise encryptions of 8-bit images (EtC, LE, ELE, PE, block scrambling).

Every one of these schemes moves values around (blocks, pixels inside blocks, colour channels) and inverts some of
them (negative-positive, p xor 255). Composed, that is one permutation P of the H*W*3 values of an image and one
xor mask: `encrypted = image.flat[P] ^ mask`. Each scheme builds its (P, mask) from the key for each image size it
meets, by applying its steps to an image of value *positions* (`BlockLayout`), with vectorised NumPy block
operations; encrypting a batch is then a single gather and xor over the whole batch, and so is decrypting (with the
inverse permutation). uint8 in, uint8 out, exact. Any size works whose height and width the block divides.
"""
from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from veil.errors import VeilError
from veil.keys import Secret, choices, hkdf, key_fingerprint, permutations, secret_bytes
from veil.schemes.base import Scheme, image_array, image_size

CHANNELS = 3
#: the size whose key derivation names no size (HKDF info "<method>/block=<B>/<step>"): every key masks 32x32
#: images as it did before other sizes existed; another size adds "size=<H>x<W>/" to the info
HOME_SIZE = (32, 32)
#: the six orders of three colour channels
CHANNEL_ORDERS = np.array([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])


def to_blocks(image: np.ndarray, block: int) -> np.ndarray:
    """(H, W, 3) -> (blocks, block, block, 3), blocks in raster order."""
    rows, cols = image.shape[0] // block, image.shape[1] // block
    return image.reshape(rows, block, cols, block, CHANNELS).swapaxes(1, 2).reshape(-1, block, block, CHANNELS)


def from_blocks(blocks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The inverse of `to_blocks`, for images of `size` (H, W)."""
    block = blocks.shape[1]
    rows, cols = size[0] // block, size[1] // block
    return blocks.reshape(rows, cols, block, block, CHANNELS).swapaxes(1, 2).reshape(size[0], size[1], CHANNELS)


def check_block(method: str, block: int, size: tuple[int, int]) -> None:
    """A block size must divide the image's height and width."""
    if size[0] % block or size[1] % block:
        raise VeilError(f"{method} block {block} does not divide the image size {size[0]}x{size[1]}; give --size "
                        f"with multiples of {block} (or another --block)")


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
    """Where each encrypted value comes from (`index`) and whether it is inverted (`mask`), block by block, for
    images of `size` (H, W)."""

    def __init__(self, block: int, size: tuple[int, int]):
        self.block, self.size = block, size
        self.index = to_blocks(np.arange(size[0] * size[1] * CHANNELS).reshape(*size, CHANNELS), block)
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
        return from_blocks(self.index, self.size).reshape(-1), from_blocks(self.mask, self.size).reshape(-1)


def _hwc_to_chw_positions(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """For each channels-first position, its channels-last position; and the reverse."""
    chw_to_hwc = np.arange(size[0] * size[1] * CHANNELS).reshape(*size, CHANNELS).transpose(2, 0, 1).reshape(-1)
    return chw_to_hwc, np.argsort(chw_to_hwc)


class KeyedScheme(Scheme):
    """A keyed permutation-and-xor scheme, built from a secret (bytes or a `veil.keys.Secret`) or an
    explicit key table (see `key_table`), and a block size (None: the scheme's default). Subclasses set the block
    sizes they allow and build the layout. The cipher of each image size is derived on first use (`size` fixes one
    size and refuses others; a key table is for one size, 32x32 unless `size` says otherwise), so the secret is
    kept, wrapped in a `Secret` that no repr shows, beside what it gives (key tables, permutations and xor masks,
    all as secret), the block size and the fingerprint. The fingerprint names the method, block and key, not the
    size: a masked set records its image shape beside it."""

    keyed = True
    invertible = True
    exact_uint8 = True
    options = ("block",)
    default_block: ClassVar[int] = 16
    allowed_blocks: ClassVar[tuple[int, ...]] = (16,)
    SHOWN = Scheme.SHOWN + ("default_block", "allowed_blocks", "structure", "puzzle")
    structure = "blocks"

    def __init__(self, secret=None, block: int | None = None, table=None, size=None):
        self.block = self.check(secret, block, table)
        #: the one image size (H, W) this scheme was built for, or None: any size the block divides
        self.size = self._given_size = None if size is None else _size_pair(size)
        self._source, self._fingerprint = self._draws(secret, table, self.block)
        self._tables: dict[tuple, dict] = {}  # by size; as secret as the ciphers, which they determine
        self._ciphers: dict[tuple, dict] = {}  # by size, then layout: channels_last -> (encrypt, decrypt)
        if table is not None and self.size is None:
            self.size = HOME_SIZE  # a key table is drawn for one size
        if self.size is not None:
            self._cipher(self.size)  # built (and a table checked) now, not on first use

    def _cipher(self, size: tuple[int, int]) -> dict:
        """The (perm, mask) pairs for images of `size`, derived on first use: one key, one table per size."""
        if size not in self._ciphers:
            if self.size is not None and size != self.size:
                raise VeilError(f"this {self.method} key is built for {self.size[0]}x{self.size[1]} images, got "
                                f"{size[0]}x{size[1]}")
            check_block(self.method, self.block, size)
            draws = _RecordingDraws(self._source.at(size))
            layout = BlockLayout(self.block, size)
            self._build(layout, draws)
            draws.finish()
            perm, mask = layout.flat()
            chw_to_hwc, hwc_to_chw = _hwc_to_chw_positions(size)
            self._tables[size] = draws.table
            self._ciphers[size] = {True: _cipher_and_inverse(perm, mask),
                                   False: _cipher_and_inverse(hwc_to_chw[perm[chw_to_hwc]], mask[chw_to_hwc])}
        return self._ciphers[size]

    @classmethod
    def check(cls, secret, block: int | None, table, size=None) -> int:
        """The block size (the default for None), checked, and that exactly one of `secret` and `table` is given."""
        block = cls.default_block if block is None else int(block)
        if block not in cls.allowed_blocks:
            raise VeilError(f"{cls.method} takes block sizes {', '.join(map(str, cls.allowed_blocks))}, got {block}")
        if (secret is None) == (table is None):
            raise VeilError(f"a {cls.method} masker needs a secret or a key table (exactly one of the two)")
        return block

    @classmethod
    def key_table(cls, secret, block: int | None = None, size=HOME_SIZE) -> dict[str, np.ndarray]:
        """The key table that `secret` gives for images of `size` (H, W): every step's random choices, by step
        name (e.g. EtC's K1 to K4); another size gives another table.

        Permutation steps are arrays of shape (rows, size) (one row per block, or a single row shared by all
        blocks), each row a permutation of range(size); choice steps are flat arrays of integers in range(options).
        `cls(table=key_table(secret, block, size), block=block, size=size)` encrypts exactly as `cls(secret, block)`
        does images of that size.
        """
        size = _size_pair(size)
        return cls(secret, block, size=size)._tables[size]

    @classmethod
    def _draws(cls, secret, table, block: int) -> tuple["_Draws", str]:
        """Where the steps' choices come from (the secret or the table), and the fingerprint that goes with it."""
        if table is not None:
            draws = _TableDraws(cls.method, Secret(table).reveal())
            return draws, f"{cls.method}:b{block}:table:" + draws.digest()
        secret = secret_bytes(secret, f"a {cls.method} secret")
        prefix = f"{cls.method}/block={block}/"
        return _SecretDraws(Secret(secret), prefix), f"{cls.method}:b{block}:" + key_fingerprint(secret, prefix)

    @abstractmethod
    def _build(self, layout: BlockLayout, draws: "_Draws") -> None:
        """Apply the scheme's steps to `layout`, taking each step's random choices from `draws` by step name."""

    @property
    def config(self) -> dict:
        """The block size, and the image size where the scheme was built for one."""
        return {"block": self.block} if self._given_size is None else {"block": self.block, "size": list(self.size)}

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    # ------------------------------------------------------------------ uint8 images, channels last

    def encrypt(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) -> encrypted uint8 (N, H, W, 3)."""
        pixels = _check_uint8(pixels)
        return _gather_xor(pixels, *self._cipher(tuple(pixels.shape[1:3]))[True][0])

    def decrypt(self, pixels: np.ndarray) -> np.ndarray:
        """The exact inverse of `encrypt` (with another key, the result is just another scrambled image)."""
        pixels = _check_uint8(pixels)
        return _gather_xor(pixels, *self._cipher(tuple(pixels.shape[1:3]))[True][1])

    # ------------------------------------------------------------------ either layout, uint8 or float

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
        out = _gather_xor(pixels, *self._cipher(image_size(array.shape))[channels_last][inverse])
        return out if array.dtype == np.uint8 else out / np.float32(255)


def _size_pair(size) -> tuple[int, int]:
    """N or (H, W) -> (H, W)."""
    pair = (size, size) if np.isscalar(size) else tuple(size)
    if len(pair) != 2 or min(int(d) for d in pair) < 1:
        raise VeilError(f"an image size is N or (H, W), got {size!r}")
    return int(pair[0]), int(pair[1])


def _check_uint8(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[3] != CHANNELS:
        raise VeilError(f"keyed schemes take uint8 images (N, H, W, 3), got {pixels.dtype} {pixels.shape}")
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

    def at(self, size: tuple[int, int]) -> "_Draws":
        """The source of the choices for images of `size` (a key table is for one size: itself)."""
        return self


class _SecretDraws(_Draws):
    """Choices derived from a secret (kept as a `Secret`, never shown, to derive the choices of each size met):
    one HKDF key per step, info "<method>/block=<B>/<step>" at HOME_SIZE and "<method>/block=<B>/size=<H>x<W>/<step>"
    at any other size, so that two sizes' tables are unrelated; see `veil.keys`."""

    def __init__(self, secret: Secret, prefix: str):
        self._secret, self._prefix = secret, prefix

    def at(self, size: tuple[int, int]) -> "_Draws":
        return self if size == HOME_SIZE else _SecretDraws(self._secret, f"{self._prefix}size={size[0]}x{size[1]}/")

    def _key(self, step: str) -> bytes:
        return hkdf(self._secret.reveal(), self._prefix + step)

    def permutations(self, step: str, rows: int, size: int) -> np.ndarray:
        return permutations(self._key(step), rows, size)

    def choices(self, step: str, count: int, options: int) -> np.ndarray:
        return choices(self._key(step), count, options)


class _RecordingDraws(_Draws):
    """Passes another source's choices through and keeps them, by step name (`KeyedScheme.key_table`)."""

    def __init__(self, source: _Draws):
        self._source, self.table = source, {}

    def permutations(self, step: str, rows: int, size: int) -> np.ndarray:
        self.table[step] = self._source.permutations(step, rows, size)
        return self.table[step]

    def choices(self, step: str, count: int, options: int) -> np.ndarray:
        self.table[step] = self._source.choices(step, count, options)
        return self.table[step]

    def finish(self) -> None:
        self._source.finish()


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
