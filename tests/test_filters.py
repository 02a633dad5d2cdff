"""Paper 004's unkeyed perturbations: Gaussian blur, one random filter, a random filter per image."""
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


def test_random_filter_is_seeded_and_shared_by_all_images():
    x = np.repeat(images(1), 2, axis=0)
    a, b = masker_class("randfilter")(kernel=3, seed=1), masker_class("randfilter")(kernel=3, seed=2)
    out = a.transform(x)
    assert np.array_equal(out[0], out[1])
    assert np.array_equal(out, masker_class("randfilter")(kernel=3, seed=1).transform(x))
    assert not np.allclose(out, b.transform(x))
    assert a.fingerprint != b.fingerprint


def test_iid_filter_draws_a_new_filter_per_image():
    x = np.repeat(images(1), 2, axis=0)
    masker = masker_class("iidfilter")(kernel=5, seed=0)
    out = masker.transform(x)
    assert out.shape == x.shape and out.dtype == np.float32
    assert not np.allclose(out[0], out[1])
    assert np.array_equal(out, masker.transform(x))


def test_filters_refuse_bad_sizes_and_have_no_inverse(tmp_path):
    with pytest.raises(VeilError, match="kernel sizes"):
        masker_class("blur")(kernel=4).fit()
    masker = masker_class("randfilter")(kernel=7, seed=3)
    with pytest.raises(VeilError, match="no inverse"):
        masker.inverse_transform(images(1))
    masker.save(tmp_path / "m")
    assert masker_class("randfilter").load(tmp_path / "m").fingerprint == masker.fingerprint
