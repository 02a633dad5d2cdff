"""The filter perturbations of paper 004 (blur, randfilter, iidfilter) as scikit-learn estimators; the filters, and
what they protect, are `veil.schemes.filters`."""
from __future__ import annotations

from veil.errors import VeilError
from veil.maskers.base import SchemeMasker, build_from_config
from veil.maskers.files import read_manifest, write_manifest
from veil.schemes.filters import Blur, IIDFilter, RandomFilter


class FilterMasker(SchemeMasker):
    """A filter perturbation (a kernel size and a seed) as an estimator. `kernel` None is the default size; `fit`
    (which needs no data, and happens on first use when not called) checks both and builds the filter (`scheme_`)."""

    structure = "filter"

    def __init__(self, kernel: int | None = None, seed: int = 0):
        self.kernel, self.seed = kernel, seed

    def save(self, directory) -> None:
        write_manifest(directory, self.method, self.config, [], fingerprint=self.fingerprint, secret_files=[])

    @classmethod
    def load(cls, directory, opened: dict | None = None) -> "FilterMasker":
        manifest = read_manifest(directory, opened=opened)
        if manifest["method"] != cls.method:
            raise VeilError(f"holds a {manifest['method']!r} masker, not {cls.method!r}", directory)
        return build_from_config(cls, manifest["config"], directory)


BlurMasker, RandomFilterMasker, IIDFilterMasker = (FilterMasker.face(scheme, __name__)
                                                   for scheme in (Blur, RandomFilter, IIDFilter))
