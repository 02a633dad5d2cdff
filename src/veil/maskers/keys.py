"""Secrets for the keyed schemes: reading them, deriving per-step keys, and turning keys into random choices.

secret (a key file or an environment variable, never a command-line value)
  -> HKDF-SHA256 (RFC 5869) with info "<method>/<config>/<step>" -> one 32-byte key per encryption step
  -> SHAKE-256 of that key -> a byte stream -> permutations (argsort of 64-bit words) and choices (words mod n).

Only standard primitives (hashlib, hmac) are used, and nothing depends on NumPy's random generators, so a key gives
the same encryption on every machine and NumPy version. The fingerprint is another HKDF output: it identifies the
(method, configuration, secret) triple without revealing the secret.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

import numpy as np

from veil.errors import VeilError
from veil.io import claim_output, make_private

SALT = b"veil-keyed-schemes/1"
MIN_SECRET_BYTES = 8


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


def read_secret(key_file=None, key_env: str | None = None, insecure_permissions: bool = False) -> bytes:
    """The secret from exactly one of a key file and an environment variable, as bytes (trailing newline dropped).

    A key file that group or others may read is refused, as ssh refuses such a private key, unless
    `insecure_permissions`."""
    if (key_file is None) == (key_env is None):
        raise VeilError("give the secret with exactly one of --key-file FILE and --key-env VARIABLE")
    if key_file is not None:
        path = Path(key_file)
        try:
            secret, where = path.read_bytes().rstrip(b"\r\n"), path
        except FileNotFoundError:
            raise VeilError("key file not found (create one with `veil keygen --out FILE`)", path) from None
        except OSError as exc:
            raise VeilError(f"cannot read key file ({exc.strerror or exc})", path) from None
    else:
        if key_env not in os.environ:
            raise VeilError(f"environment variable {key_env} is not set")
        secret, where = os.environ[key_env].encode(), f"${key_env}"
    if len(secret) < MIN_SECRET_BYTES:
        raise VeilError(f"the secret is shorter than {MIN_SECRET_BYTES} bytes; use `veil keygen` for a strong one",
                        where)
    if key_file is not None and not insecure_permissions:
        refuse_exposed_key(Path(key_file))
    return secret


def refuse_exposed_key(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise VeilError(f"key file is readable by group or others (mode {mode:04o}); run `chmod 600 {path}` "
                        "(or pass --insecure-key-permissions)", path)


def write_new_key(path, force: bool = False) -> Path:
    """Write a fresh random secret (32 bytes, hex) to a new file readable by its owner only (mode 0600); `force`
    replaces an existing key (everything encrypted with it can then no longer be decrypted)."""
    path = Path(path)
    with claim_output(path, force) as tmp:
        make_private(tmp).write_text(secrets.token_hex(32) + "\n")
    return path


def experiment_secret(seed: int) -> bytes:
    """A reproducible stand-in secret for experiments and benchmarks (never for real data)."""
    return f"veil-experiment-key-seed-{int(seed)}".encode()
