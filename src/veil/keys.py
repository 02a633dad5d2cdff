"""Key material for the keyed schemes: a `Secret` that no printing shows, per-use keys derived from it, and random
choices drawn from those keys.

secret (a key file or an environment variable, never a command-line value; see `veil.keyfiles`)
  -> HKDF-SHA256 (RFC 5869) with info "<method>/<config>/<use>" -> one 32-byte key per use (an encryption step, a
     filter)
  -> SHAKE-256 of that key -> a byte stream -> permutations (argsort of 64-bit words), choices (words mod n) and
     normal numbers (Box-Muller).

Only standard primitives (hashlib, hmac) are used, and nothing depends on NumPy's random generators, so a key gives
the same masking on every machine and NumPy version. The fingerprint is another HKDF output: it identifies the
(method, configuration, secret) triple without revealing the secret. This module sits below the schemes and the
maskers alike, and imports nothing of veil's but its errors.
"""
from __future__ import annotations

import hashlib
import hmac

import numpy as np

from veil.errors import VeilError

SALT = b"veil-keyed-schemes/1"
#: the shortest secret read from a key file or variable: a fingerprint is public, and with it anyone can test
#: guesses of a short secret offline (`veil keygen` writes 32 random bytes as 64 hex characters)
MIN_SECRET_BYTES = 16


class Secret:
    """Key material that printing never shows: `repr`, `str` and f-strings give `Secret(<redacted>)`.

    A keyed masker holds its key in one of these, so the key can be an estimator parameter (cloned, grid-searched,
    pickled for worker processes) while `repr(masker)`, `get_params()` output, logs and error messages stay free of
    it. `reveal()` is the one way to the value (a secret's bytes, or a key table). Two secrets are equal when their
    values are, compared in constant time.
    """

    __slots__ = ("_value",)

    def __init__(self, value):
        self._value = value.reveal() if isinstance(value, Secret) else value

    def reveal(self):
        return self._value

    def __repr__(self) -> str:
        return "Secret(<redacted>)"

    __str__ = __repr__

    def __reduce__(self):
        return Secret, (self._value,)

    def _digest(self) -> bytes:
        value = self._value
        if isinstance(value, (bytes, bytearray)):
            return hashlib.sha256(value).digest()
        try:  # a key table: step name -> integer array
            canonical = sorted((str(step), np.asarray(choices).tolist()) for step, choices in dict(value).items())
        except (TypeError, ValueError):
            return hashlib.sha256(repr(id(value)).encode()).digest()
        return hashlib.sha256(repr(canonical).encode()).digest()

    def __eq__(self, other) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._digest(), other._digest())

    def __hash__(self) -> int:
        return hash(self._digest())


def as_secret(value) -> Secret | None:
    """`value` wrapped in a `Secret` (a Secret or None is returned as it is)."""
    return value if value is None or isinstance(value, Secret) else Secret(value)


class SecretParameter:
    """A descriptor for an estimator parameter that holds key material: whatever is assigned (by `__init__`,
    `set_params` or `clone`) is kept as a `Secret`, so no path stores a printable key."""

    def __set_name__(self, owner, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, obj, owner=None):
        return self if obj is None else obj.__dict__.get(self.slot)

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.slot] = as_secret(value)


def secret_bytes(secret, what: str = "the secret") -> bytes:
    """The bytes of a Secret (or of plain bytes), refusing other types without ever showing the value."""
    value = secret.reveal() if isinstance(secret, Secret) else secret
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, (bytes, bytearray)):
        raise VeilError(f"{what} must be bytes, got a {type(value).__name__}")
    return bytes(value)


def hkdf(secret: bytes, info: str | bytes, length: int = 32, salt: bytes = SALT) -> bytes:
    """HKDF-SHA256 (RFC 5869): extract with `salt` (veil's fixed salt by default), expand with `info`."""
    prk = hmac.new(salt, secret, hashlib.sha256).digest()
    info = info.encode() if isinstance(info, str) else info
    blocks, previous = [], b""
    for counter in range(1, -(-length // 32) + 1):
        previous = hmac.new(prk, previous + info + bytes([counter]), hashlib.sha256).digest()
        blocks.append(previous)
    return b"".join(blocks)[:length]


def _words(step_key: bytes, count: int) -> np.ndarray:
    """`count` uniform 64-bit words from the step key's SHAKE-256 stream."""
    return np.frombuffer(hashlib.shake_256(step_key).digest(8 * count), dtype=">u8").astype(np.uint64)


def permutations(step_key: bytes, rows: int, size: int) -> np.ndarray:
    """`rows` independent uniform permutations of range(size), shape (rows, size)."""
    return np.argsort(_words(step_key, rows * size).reshape(rows, size), axis=1, kind="stable")


def choices(step_key: bytes, count: int, options: int) -> np.ndarray:
    """`count` uniform integers in range(options) (bias below 2**-58 for the small option counts used here)."""
    return (_words(step_key, count) % np.uint64(options)).astype(np.int64)


def normals(step_key: bytes, count: int) -> np.ndarray:
    """`count` independent N(0, 1) numbers (float64) from the step key's SHAKE-256 stream, by Box-Muller: each pair
    of 64-bit words gives two uniforms (53 bits each; the first in (0, 1], so its logarithm is finite) and so two
    normals. No NumPy generator is involved, so a key gives the same numbers on every machine."""
    pairs = -(-count // 2)
    bits = (_words(step_key, 2 * pairs) >> np.uint64(11)).astype(np.float64).reshape(2, pairs) * 2.0 ** -53
    radius, angle = np.sqrt(-2 * np.log1p(-bits[0])), 2 * np.pi * bits[1]
    return np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])[:count]


def key_fingerprint(secret: bytes, prefix: str) -> str:
    """The public identifier of a (method, configuration, secret) triple: an HKDF output (info `prefix` +
    "fingerprint"), from which the secret cannot be recovered, nor, at MIN_SECRET_BYTES random bytes, guessed."""
    return hkdf(secret, prefix + "fingerprint", 16).hex()
