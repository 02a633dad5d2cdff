"""Paper 004's perturbations: the unkeyed Gaussian blur, and the keyed random filters (one for every image, or one
per image)."""
from __future__ import annotations

import numpy as np
import pytest

from veil.errors import VeilError
from veil.maskers.base import masker_class
from veil.schemes.filters import gaussian_kernel


def images(n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3, 32, 32), dtype=np.float32)


@pytest.mark.parametrize("size", [3, 5, 7])
def test_gaussian_kernel_uses_the_papers_sigma(size):
    kernel = gaussian_kernel(size)
    sigma = 0.3 * ((size - 1) / 2 - 1) + 0.8
    centre = size // 2
    assert kernel.sum() == pytest.approx(1.0, abs=1e-6)
    assert kernel[centre, centre + 1] / kernel[centre, centre] == pytest.approx(np.exp(-1 / (2 * sigma ** 2)), rel=1e-5)


def test_blur_matches_a_direct_reflect_101_correlation():
    from scipy.ndimage import correlate

    x = images(2)
    out = masker_class("blur")(kernel=5).transform(x)
    reference = correlate(x[1, 2], gaussian_kernel(5), mode="mirror")
    assert np.abs(out[1, 2] - reference).max() < 1e-5
    flat = np.full((1, 3, 32, 32), 0.3, np.float32)
    assert np.allclose(masker_class("blur")(kernel=7).transform(flat), 0.3, atol=1e-6)


KEY, OTHER_KEY = b"filter-test-secret-0123456789abc", b"another-filter-secret-0123456789"


def test_random_filter_is_keyed_and_shared_by_all_images():
    x = np.repeat(images(1), 2, axis=0)
    a, b = masker_class("randfilter")(KEY, kernel=3), masker_class("randfilter")(OTHER_KEY, kernel=3)
    out = a.transform(x)
    assert np.array_equal(out[0], out[1])
    assert np.array_equal(out, masker_class("randfilter")(KEY, kernel=3).transform(x))
    assert not np.allclose(out, b.transform(x))
    assert a.fingerprint != b.fingerprint and a.config == {"kernel": 3}
    assert KEY.hex() not in a.fingerprint and "Secret(<redacted>)" in repr(a)


def test_random_filter_is_the_same_on_every_machine():
    """SHAKE-256 and Box-Muller, no NumPy generator: this key's filter is pinned."""
    from veil.schemes.filters import RandomFilter

    weights = RandomFilter(b"pinned-key-for-the-test-0123456789", kernel=3).kernels(None)
    np.testing.assert_allclose(weights, [[0.6655967, -1.2063997, -1.4111025], [1.6753813, -1.7137738, -0.8273842],
                                         [0.5763013, -1.3810538, 0.4066968]], rtol=1e-6)


def test_iid_filter_draws_a_filter_per_image_from_the_image_alone():
    x = np.concatenate([images(1), images(1), images(3, seed=1)])
    masker = masker_class("iidfilter")(KEY, kernel=5)
    out = masker.transform(x)
    assert out.shape == x.shape and out.dtype == np.float32
    assert np.array_equal(out[0], out[1]) and not np.allclose(out[2], out[3])
    assert np.array_equal(out[2:4], masker.transform(x[2:4])), "a shard or batch gives the bytes of the whole"
    assert masker.shard_unit == 1
    assert not np.allclose(out, masker_class("iidfilter")(OTHER_KEY, kernel=5).transform(x))


@pytest.mark.parametrize("method", ["randfilter", "iidfilter"])
def test_random_filters_need_a_secret(method):
    with pytest.raises(VeilError, match="needs a secret"):
        masker_class(method)(kernel=3).fit()
    assert masker_class(method).keyed and not masker_class("blur").keyed


def test_filters_refuse_bad_sizes_and_have_no_inverse(tmp_path):
    with pytest.raises(VeilError, match="kernel sizes"):
        masker_class("blur")(kernel=4).fit()
    masker = masker_class("randfilter")(KEY, kernel=7)
    with pytest.raises(VeilError, match="no inverse"):
        masker.inverse_transform(images(1))
    masker.save(tmp_path / "m")
    assert KEY not in (tmp_path / "m" / "manifest.json").read_bytes()
    assert masker_class("randfilter").load(tmp_path / "m", secret=KEY).fingerprint == masker.fingerprint
    with pytest.raises(VeilError, match="wrong key"):
        masker_class("randfilter").load(tmp_path / "m", secret=OTHER_KEY)
