"""RandAugment and random erasing (`veil.classifiers.augment`): shape, range, determinism, magnitude 0."""
from __future__ import annotations

import pytest
import torch

from veil.classifiers.augment import OPS, rand_augment, random_erasing

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
