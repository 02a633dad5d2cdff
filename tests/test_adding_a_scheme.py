"""Adding a scheme takes one module and one registry line (docs/adding-a-scheme.md): a toy scheme added that way masks
through the path `veil mask` takes, gets its estimator, and has its declared capabilities honoured."""
import numpy as np
import pytest

from veil.data import ImageSet
from veil.errors import VeilError
from veil.maskers.faces import face_of
from veil.maskers.masking import masking_function, masks_pixels
from veil.registry import MASKERS, SCHEMES
from veil.schemes.base import Scheme, image_array, register_scheme
from veil.workflows import mask

METHOD = "negative"


class Negative(Scheme):
    """The photographic negative: every value v becomes 255 - v (1 - v for floats). No key, no option, exact."""

    invertible = True
    exact_uint8 = True

    def transform(self, X) -> np.ndarray:
        array, _ = image_array(X)
        return 255 - array if array.dtype == np.uint8 else 1 - array

    inverse_transform = transform

    @property
    def fingerprint(self) -> str:
        return "negative"


@pytest.fixture
def negative(monkeypatch):
    """The registry line (`veil.registry`: the scheme's name -> its module), declared for this test only."""
    monkeypatch.setitem(SCHEMES.modules, METHOD, __name__)
    monkeypatch.setitem(MASKERS.modules, METHOD, "veil.maskers.faces")
    for registry in (SCHEMES, MASKERS):
        monkeypatch.setattr(registry, "entries", dict(registry.entries))
    return register_scheme(METHOD)(Negative)


def pixels(n: int = 6) -> ImageSet:
    images = np.random.default_rng(0).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    return ImageSet(images, np.arange(n) % 2, ["a", "b"], "toy")


def test_veil_mask_masks_with_a_new_scheme(negative, tmp_path):
    data = pixels()
    masked = mask(data, tmp_path / "negative.npz", method=METHOD, nproc=2)
    assert (masked.method, masked.fingerprint) == (METHOD, "negative")
    assert np.array_equal(masked.data, 255 - data.images)
    assert masked.meta["storage"] == "uint8"  # exact_uint8 is honoured: stored as 8-bit pixels
    assert masks_pixels(METHOD)


def test_a_new_scheme_takes_only_what_it_declares(negative):
    with pytest.raises(VeilError, match="takes no options, not --block"):
        masking_function(METHOD, block=4)
    with pytest.raises(VeilError, match="has no key"):
        masking_function(METHOD, secret=b"a secret of sixteen bytes")
    with pytest.raises(VeilError, match="for a trained masker"):
        masking_function(METHOD, masker_dir="somewhere")


def test_a_new_scheme_gets_its_estimator(negative, tmp_path):
    estimator = face_of(negative)
    assert MASKERS.get(METHOD) is estimator and estimator.__name__ == "NegativeMasker"
    assert all(getattr(estimator, name) == getattr(negative, name) for name in Scheme.SHOWN)
    images = pixels().images
    assert np.array_equal(estimator().inverse_transform(estimator().transform(images)), images)
    estimator().save(tmp_path / "m")
    assert estimator.load(tmp_path / "m").fingerprint == "negative"
