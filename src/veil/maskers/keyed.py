"""The keyed schemes (EtC, LE, ELE, PE, block scrambling; the random filters build on `SecretMasker` too) as
scikit-learn estimators: the key is a parameter that no repr shows, and a saved masker holds its configuration and
key fingerprint, never the key. The encryption itself is `veil.schemes.keyed`."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from veil.errors import VeilError
from veil.keys import SecretParameter
from veil.maskers.base import SchemeMasker, build_from_config
from veil.maskers.files import read_manifest, write_manifest
from veil.schemes.keyed import HOME_SIZE


class SecretMasker(SchemeMasker):
    """A scheme built from a secret, as an estimator: the `secret` parameter is kept wrapped in a `Secret` however
    it is set, so that no repr, log or error message shows it. Saved, it is its configuration and key fingerprint
    only; loading needs the secret again, and masking always does (there is no public part)."""

    secret = SecretParameter()

    def save(self, directory) -> None:
        """A manifest naming the method, configuration and key fingerprint; the secret is never written."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_manifest(directory, self.method, self.config, [], fingerprint=self.fingerprint, secret_files=[],
                       saved_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @classmethod
    def load_public(cls, directory, opened: dict | None = None) -> "SecretMasker":
        """A keyed scheme has no public part: masking needs the secret itself."""
        raise VeilError(f"a {cls.method} masker masks with its secret: use --method {cls.method} with --key-file "
                        "or --key-env", directory)

    @classmethod
    def load(cls, directory, secret: bytes | None = None, opened: dict | None = None) -> "SecretMasker":
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


class KeyedMasker(SecretMasker):
    """A keyed permutation-and-xor scheme (`scheme`, a `veil.schemes.keyed.KeyedScheme`).

    Parameters: `secret` (bytes, or a `veil.keys.Secret`), `block` (None: the scheme's default), `table`
    (an explicit key table instead of a secret, see `from_table`) and `size` (None: any image size the block
    divides, each with its own table; (H, W): that size only, others refused). Give exactly one of `secret` and
    `table`. Both are kept wrapped in a `Secret` however they are set (the one change made to an argument), so that
    no repr, log or error message shows them; `clone` and `set_params` pass a Secret on unchanged. `fit` builds the cipher
    (`scheme_`); it needs no data and happens on first use when not called.
    """

    table = SecretParameter()

    def __init__(self, secret=None, block: int | None = None, table=None, size=None):
        self.secret = secret
        self.block = block
        self.table = table
        self.size = size

    @classmethod
    def key_table(cls, secret, block: int | None = None, size=HOME_SIZE) -> dict[str, np.ndarray]:
        """The key table that `secret` gives for images of `size`, by step name (see `KeyedScheme.key_table`)."""
        return cls.scheme.key_table(secret, block, size)

    @classmethod
    def from_table(cls, table, block: int | None = None, size=None) -> "KeyedMasker":
        """A masker from an explicit key table instead of a secret (for tests, analysis and worked examples).

        `table` maps each step name to its choices, in the form `key_table` returns (any array shape with the right
        number of entries is accepted). Missing or unknown steps, wrong sizes, out-of-range choices and rows that
        are not permutations are refused with a VeilError. Such a masker has no secret: its fingerprint
        ("<method>:b<block>:table:<hash>") is a hash of the table, and `load` with a secret never matches it.
        A table is drawn for one image size: `size` (None: 32x32). Equivalent to
        `cls(table=table, block=block, size=size).fit()`.
        """
        return cls(block=block, table=table, size=size).fit()

    def encrypt(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) -> encrypted uint8 (N, H, W, 3)."""
        return self._fitted().scheme_.encrypt(pixels)

    def decrypt(self, pixels: np.ndarray) -> np.ndarray:
        """The exact inverse of `encrypt` (with another key, the result is just another scrambled image)."""
        return self._fitted().scheme_.decrypt(pixels)
