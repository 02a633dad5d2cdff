"""The keyed AAE (method `aae-keyed`): a trained AAE whose latent is turned by a secret orthogonal map and then
permuted, both derived from a key by HKDF, so that the network can be shared and the key alone is secret.

Masking: v = P(Q z), where z is the base AAE's latent, Q a uniformly random orthogonal matrix (the Q of a QR
factorisation of a matrix of N(0, 1) numbers from `veil.keys.normals`, signs fixed so that R's diagonal is positive:
Haar-distributed) and P a permutation of the coordinates (`veil.keys.permutations`); each from its own HKDF step
key. With the key and the base network's decoder, the owner inverts: z = Q^T P^T v.

Threat model and what the owner keeps secret:
- the key alone (`--key-file`/`--key-env`, as for EtC); the base AAE (encoder and decoder) is public, recorded by
  its folder and fingerprint in the masked set's configuration;
- an orthogonal map keeps every distance, so the map is all that stands between an attacker and the base decoder:
  the class statistics that travel with a labelled masked set (each class's latent mean and covariance) constrain
  it, and the `key-procrustes` attack (`veil.attacks.key_procrustes`) tries to recover it from them and the
  attacker's own encodings of public images. `veil report frontier` reports whether it succeeds; this module
  claims nothing beyond that measurement.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from veil.errors import VeilError
from veil.keys import hkdf, key_fingerprint, normals, permutations, secret_bytes
from veil.maskers.aae_numpy import public_recipe
from veil.maskers.base import register_masker
from veil.maskers.files import read_manifest
from veil.maskers.keyed import SecretMasker


@register_masker("aae-keyed")
class KeyedAAEMasker(SecretMasker):
    """Parameters: `secret` (bytes or a `veil.keys.Secret`, kept wrapped as every keyed masker keeps it: never
    shown) and `base` (the folder of a trained AAE masker, the shared network). `fit` loads the base network and
    derives the key's map (`matrix_`); no data. A `SecretMasker` with no NumPy scheme underneath: every step of the
    scheme face is its own."""

    keyed = True
    fits_on_data = True  # a trained network underneath: loaded from its folder, never built from options alone
    invertible = True
    output = "vectors"
    structure = "latent"
    shard_unit = None  # the torch AAE masks (see `veil.maskers.aae.AAEMasker.shard_unit`)

    def __init__(self, secret=None, base=None):
        self.secret = secret
        self.base = base

    def _validate(self) -> None:
        if self.secret is None or self.base is None:
            raise VeilError("the keyed AAE needs its secret and the base AAE masker folder (base)")
        secret_bytes(self.secret)
        if not (Path(self.base) / "manifest.json").is_file():
            raise VeilError("not a masker folder (no manifest.json)", self.base)

    def _derive(self) -> None:
        from veil.maskers.aae import AAEMasker

        self.network_ = AAEMasker.load(self.base)
        self.matrix_ = key_matrix(secret_bytes(self.secret), self.network_.latent_dim)

    def transform(self, X) -> np.ndarray:
        masker = self._fitted()
        return (masker.network_.transform(X).astype(np.float64) @ masker.matrix_).astype(np.float32)

    def inverse_transform(self, X) -> np.ndarray:
        masker = self._fitted()
        return masker.network_.inverse_transform((np.asarray(X, np.float64) @ masker.matrix_.T).astype(np.float32))

    @property
    def config(self) -> dict:
        """The shared network's folder (public by design); never the key."""
        return {"base": str(self.base)}

    def masked_meta(self, masked: np.ndarray) -> dict:
        """The configuration, the shared network's fingerprint and its recipe (public by design)."""
        network = self._fitted().network_
        return {"config": self.config, "base_fingerprint": network.fingerprint,
                "recipe": public_recipe(network.recorded_config)}

    @property
    def fingerprint(self) -> str:
        base = self._fitted().network_.fingerprint
        return "aae-keyed:" + key_fingerprint(secret_bytes(self.secret), f"aae-keyed:{base}:")

    @classmethod
    def load(cls, directory, secret=None, opened: dict | None = None) -> "KeyedAAEMasker":
        """The keyed AAE over the AAE masker in `directory` (the shared network), with `secret`."""
        if secret is None:
            raise VeilError("the keyed AAE masks with its key: give --key-file or --key-env", directory)
        read_manifest(directory, opened=opened)
        return cls(secret, str(directory)).fit()

    @classmethod
    def load_public(cls, directory, opened: dict | None = None) -> "KeyedAAEMasker":
        raise VeilError("a keyed AAE masks with its key: use --method aae-keyed with --masker DIR and --key-file",
                        directory)


def key_matrix(secret: bytes, dim: int) -> np.ndarray:
    """The key's map, one (dim, dim) orthogonal matrix: a Haar-random rotation Q, then a permutation of its output
    coordinates (v = z @ Q[:, order]), each from its own HKDF step key."""
    gaussian = normals(hkdf(secret, "aae-keyed:rotation"), dim * dim).reshape(dim, dim)
    q, r = np.linalg.qr(gaussian)
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
    order = permutations(hkdf(secret, "aae-keyed:permutation"), 1, dim)[0]
    return q[:, order]
