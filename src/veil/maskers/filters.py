"""The estimators of the schemes with no key (`PublicMasker`; `FilterMasker`, the blur's) and of the random filters
(`KeyedFilterMasker`); the filters, and what they protect, are `veil.schemes.filters`, and `veil.maskers.faces`
makes each scheme's estimator class from these."""
from __future__ import annotations

from veil.errors import VeilError
from veil.maskers.base import SchemeMasker, build_from_config
from veil.maskers.files import read_manifest, write_manifest
from veil.maskers.keyed import SecretMasker


class PublicMasker(SchemeMasker):
    """A scheme with no secret and no options as an estimator; saved, it is its manifest alone."""

    def save(self, directory) -> None:
        write_manifest(directory, self.method, self.config, [], fingerprint=self.fingerprint, secret_files=[])

    @classmethod
    def load(cls, directory, opened: dict | None = None) -> "PublicMasker":
        manifest = read_manifest(directory, opened=opened)
        if manifest["method"] != cls.method:
            raise VeilError(f"holds a {manifest['method']!r} masker, not {cls.method!r}", directory)
        return build_from_config(cls, manifest["config"], directory)


class FilterMasker(PublicMasker):
    """A filter with no secret (the blur) as an estimator. `kernel` None is the default size; `fit` (which needs no
    data, and happens on first use when not called) checks it and builds the filter (`scheme_`)."""

    def __init__(self, kernel: int | None = None):
        self.kernel = kernel


class KeyedFilterMasker(SecretMasker):
    """A random filter as an estimator: parameters `secret` (bytes, or a `veil.keys.Secret`; kept as a Secret, never
    shown) and `kernel` (None: the default size). `fit` (which needs no data, and happens on first use when not
    called) checks both and derives the filter (`scheme_`)."""

    def __init__(self, secret=None, kernel: int | None = None):
        self.secret = secret
        self.kernel = kernel

