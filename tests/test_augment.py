"""RandAugment, random erasing, crops and flips, and degradations (`veil.classifiers.augment`): shape, range,
determinism, magnitude 0."""
from __future__ import annotations

import pytest
import torch

from veil.classifiers.augment import OPS, _blur, _grey, crop_flip, degrade, rand_augment, random_erasing

PHOTOMETRIC = ("solarize", "color", "posterize", "contrast", "brightness", "sharpness")
GEOMETRIC = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")


def _batch(n: int = 8) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("sign", (1.0, -1.0))
def test_each_op_keeps_shape_and_range(name, sign):
    x = _batch()
    out = OPS[name](x, torch.linspace(0, 1, len(x)), torch.full((len(x),), sign))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1 + 1e-6


@pytest.mark.parametrize("name", PHOTOMETRIC + GEOMETRIC)
def test_magnitude_zero_is_near_identity(name):
    x = _batch()
    out = OPS[name](x, torch.zeros(len(x)), torch.ones(len(x)))
    assert (out - x).abs().max() < 1 / 255 + 1e-6  # posterize rounds to 8 bits


def test_strong_ops_change_images():
    x = _batch() * 0.5 + 0.25  # low contrast, so autocontrast and equalize have something to do
    for name in PHOTOMETRIC + GEOMETRIC + ("autocontrast", "equalize"):
        assert (OPS[name](x, torch.ones(len(x)), torch.ones(len(x))) - x).abs().max() > 0.01, name


def test_rand_augment_and_erasing_are_deterministic_under_a_fixed_generator():
    x = _batch(64)

    def augmented(seed):
        generator = torch.Generator().manual_seed(seed)
        return random_erasing(rand_augment(x, 2, 9, generator), 0.25, generator)

    first = augmented(0)
    assert torch.equal(first, augmented(0)) and not torch.equal(first, augmented(1))
    assert first.shape == x.shape and first.min() >= 0 and first.max() <= 1
    assert torch.equal(rand_augment(x, 0, 9, torch.Generator()), x)


def test_erasing_fills_one_rectangle():
    x = torch.full((16, 3, 32, 32), 2.0)  # outside [0, 1], so the noise is told apart
    out = random_erasing(x, 1.0, torch.Generator().manual_seed(0))
    for image in out:
        erased = (image != 2.0).all(0)
        rows, cols = erased.any(1).nonzero().squeeze(1), erased.any(0).nonzero().squeeze(1)
        assert len(rows) and erased[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all()
        assert erased.sum() == len(rows) * len(cols)
        assert image[:, erased].min() >= 0 and image[:, erased].max() <= 1
    assert torch.equal(random_erasing(x, 0.0, torch.Generator()), x)


def test_crop_flip_moves_pixels_without_changing_them():
    x = _batch(64)
    out = crop_flip(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and not torch.equal(out, x)
    centre = out[:, :, 4:28, 4:28]  # inside the padding every pixel is one of its image's own
    assert all(torch.isin(c, image).all() for c, image in zip(centre, x))


def test_degrade_blurs_greys_or_adds_noise_to_the_share_it_is_given():
    x = _batch(400)
    assert torch.equal(degrade(x, 0.0, torch.Generator().manual_seed(0)), x)
    out = degrade(x, 0.5, torch.Generator().manual_seed(0))
    changed = (out - x).flatten(1).abs().amax(1) > 1e-6
    assert 0.4 < changed.float().mean() < 0.6 and out.min() >= 0 and out.max() <= 1
    grey = _grey(x, torch.zeros(len(x)), None)
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    flat = torch.full((2, 3, 32, 32), 0.3)
    assert torch.allclose(_blur(flat, torch.tensor([0.0, 1.0]), None), flat)  # a blur keeps a flat image
    assert _blur(x[:4], torch.ones(4), None).std() < x[:4].std() / 2  # and smooths noise
