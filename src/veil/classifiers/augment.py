"""RandAugment and random erasing in plain torch (torchvision and timm are not dependencies), on a training batch
(N, 3, H, W) in [0, 1] before standardisation, as paper 003 trained ConvMixer with timm's `rand-m9-mstd0.5-inc1`
and random erasing 0.25.

RandAugment: `ops` rounds, each giving every image one op drawn uniformly from `OPS` (timm's "increasing" set, with
identity in place of timm's per-op 50% skip, and without invert and solarize-add) at a magnitude drawn per image
from N(magnitude, 0.5^2), clipped to [0, 10]; a signed op (rotate, shear, translate, colour factors) takes a random
sign. Magnitude 0 leaves every op but autocontrast and equalize as the identity. Geometric ops fill with grey (0.5).
Images are grouped by op, so a round costs one call per op. Every draw comes from the `generator` passed in.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_MAGNITUDE = 10.0
MAGNITUDE_STD = 0.5
GRAY = torch.tensor([0.299, 0.587, 0.114])  # ITU-R 601 luma, as PIL's "L" conversion
SMOOTH = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13  # PIL's SMOOTH filter


def _blend(x: torch.Tensor, base: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """base + factor * (x - base), clipped: PIL's ImageEnhance with a per-image factor."""
    return (base + factor.view(-1, 1, 1, 1) * (x - base)).clamp(0, 1)


def _factor(level: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    return 1 + 0.9 * level * sign


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (x * GRAY.to(x).view(1, 3, 1, 1)).sum(1, keepdim=True)


def identity(x, level, sign):
    return x


def autocontrast(x, level, sign):
    low, high = x.amin((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
    flat = high <= low
    return torch.where(flat, x, (x - low) / torch.where(flat, 1, high - low))


def equalize(x, level, sign):
    """Histogram equalisation of each channel over 256 levels; a constant channel stays as it is."""
    q = (x.clamp(0, 1) * 255).round().long().flatten(2)
    cdf = torch.zeros(*q.shape[:2], 256, device=x.device).scatter_add_(2, q, torch.ones_like(q, dtype=x.dtype)).cumsum(2)
    lowest = cdf.gather(2, q.amin(2, keepdim=True))
    spread = cdf[..., -1:] - lowest
    equalized = ((cdf.gather(2, q) - lowest) / spread.clamp_min(1)).view_as(x)
    return torch.where((spread > 0).view(*x.shape[:2], 1, 1), equalized, x)


def solarize(x, level, sign):
    return torch.where(x > (1 - level).view(-1, 1, 1, 1), 1 - x, x)


def posterize(x, level, sign):
    """Keep 8 - 4 * level bits (torchvision's range: 8 bits at magnitude 0, 4 at 10)."""
    step = (2.0 ** torch.round(4 * level)).view(-1, 1, 1, 1)
    return torch.floor(torch.round(x * 255) / step) * step / 255


def color(x, level, sign):
    return _blend(x, _gray(x), _factor(level, sign))


def contrast(x, level, sign):
    return _blend(x, _gray(x).mean((1, 2, 3), keepdim=True), _factor(level, sign))


def brightness(x, level, sign):
    return _blend(x, torch.zeros_like(x), _factor(level, sign))


def sharpness(x, level, sign):
    """Blend with PIL's smoothed image, whose border pixels are the original ones."""
    smooth = x.clone()
    kernel = SMOOTH.to(x).expand(x.shape[1], 1, 3, 3)
    smooth[..., 1:-1, 1:-1] = F.conv2d(x, kernel, groups=x.shape[1])
    return _blend(x, smooth, _factor(level, sign))


def _warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Sample x at the affine map `theta` (N, 2, 3) of each output position, grey outside the image."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x - 0.5, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 0.5


def _affine(level: torch.Tensor, entries: dict) -> torch.Tensor:
    """Identity matrices (N, 2, 3) with `entries` {(row, col): values} added."""
    theta = torch.eye(2, 3, device=level.device).repeat(len(level), 1, 1)
    for (row, col), values in entries.items():
        theta[:, row, col] += values
    return theta


def rotate(x, level, sign):
    angle = sign * level * math.radians(30)
    cos, sin = torch.cos(angle) - 1, torch.sin(angle)
    return _warp(x, _affine(level, {(0, 0): cos, (0, 1): -sin, (1, 0): sin, (1, 1): cos}))


def shear_x(x, level, sign):
    return _warp(x, _affine(level, {(0, 1): sign * level * 0.3}))


def shear_y(x, level, sign):
    return _warp(x, _affine(level, {(1, 0): sign * level * 0.3}))


def translate_x(x, level, sign):
    return _warp(x, _affine(level, {(0, 2): 2 * sign * level * 0.45}))  # up to 45% of the width


def translate_y(x, level, sign):
    return _warp(x, _affine(level, {(1, 2): 2 * sign * level * 0.45}))


OPS = {op.__name__: op for op in (identity, autocontrast, equalize, rotate, solarize, color, posterize, contrast,
                                   brightness, sharpness, shear_x, shear_y, translate_x, translate_y)}


def rand_augment(x: torch.Tensor, ops: int, magnitude: float, generator: torch.Generator,
                 std: float = MAGNITUDE_STD) -> torch.Tensor:
    for _ in range(ops):
        x = _augment_round(x, magnitude, std, generator)
    return x


def _augment_round(x, magnitude, std, generator):
    n = len(x)
    choice = torch.randint(len(OPS), (n,), generator=generator)
    level = ((magnitude + std * torch.randn(n, generator=generator)).clamp(0, MAX_MAGNITUDE) / MAX_MAGNITUDE).to(x)
    sign = (torch.randint(2, (n,), generator=generator) * 2 - 1).to(x)
    out = x.clone()
    for index, op in enumerate(OPS.values()):
        chosen = (choice == index).nonzero().squeeze(1).to(x.device)
        if len(chosen):
            out[chosen] = op(x[chosen], level[chosen], sign[chosen])
    return out


def random_erasing(x: torch.Tensor, probability: float, generator: torch.Generator, area=(0.02, 1 / 3),
                   aspect=(0.3, 1 / 0.3)) -> torch.Tensor:
    """With `probability` per image, one rectangle (a share `area` of the image, height / width in `aspect`,
    log-uniform) filled with uniform noise in [0, 1] (timm's per-pixel mode, before standardisation)."""
    if probability <= 0:
        return x
    n, _, height, width = x.shape
    share = torch.empty(n).uniform_(*area, generator=generator) * height * width
    ratio = torch.exp(torch.empty(n).uniform_(math.log(aspect[0]), math.log(aspect[1]), generator=generator))
    box_h = torch.sqrt(share * ratio).round().clamp(1, height)
    box_w = torch.sqrt(share / ratio).round().clamp(1, width)
    top = (torch.rand(n, generator=generator) * (height - box_h + 1)).floor()
    left = (torch.rand(n, generator=generator) * (width - box_w + 1)).floor()
    erased = torch.rand(n, generator=generator) < probability
    rows, cols = torch.arange(height), torch.arange(width)
    inside = (((rows >= top[:, None]) & (rows < (top + box_h)[:, None]))[:, :, None]
              & ((cols >= left[:, None]) & (cols < (left + box_w)[:, None]))[:, None, :] & erased[:, None, None])
    noise = torch.rand(x.shape, generator=generator).to(x)
    return torch.where(inside[:, None].to(x.device), noise, x)


def crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """The usual CIFAR augmentation, for plain images only (it does not commute with the block encryptions): a
    random H x W crop of each image reflect-padded by `pad`, mirrored left-right with probability 1/2."""
    n, channels, height, width = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    rows = torch.arange(height)[None] + torch.randint(2 * pad + 1, (n, 1), generator=generator)
    cols = torch.arange(width)[None] + torch.randint(2 * pad + 1, (n, 1), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    index = (torch.arange(n)[:, None, None, None], torch.arange(channels)[None, :, None, None],
             rows[:, None, :, None], cols[:, None, None, :])
    return padded[tuple(i.to(x.device) for i in index)]


#: what `degrade` may do to an image: the ways an attack's reconstructions typically fall short of the original
DEGRADATIONS = ("blur", "grey", "noise")
BLUR_SIGMA = (0.5, 2.0)
NOISE_STD = (0.02, 0.15)


def degrade(x: torch.Tensor, probability: float, generator: torch.Generator) -> torch.Tensor:
    """With `probability` per image, one of `DEGRADATIONS` drawn uniformly: a Gaussian blur (sigma uniform in
    `BLUR_SIGMA`), greyscale (the luma in every channel) or additive Gaussian noise (std uniform in `NOISE_STD`),
    clipped to [0, 1]. A semantic judge trained so does not take a blurred, grey or noisy reconstruction for another
    class."""
    n = len(x)
    kind = torch.where(torch.rand(n, generator=generator) < probability,
                       torch.randint(len(DEGRADATIONS), (n,), generator=generator), -1)
    strength = torch.rand(n, generator=generator).to(x)
    out = x.clone()
    for index, name in enumerate(DEGRADATIONS):
        chosen = (kind == index).nonzero().squeeze(1).to(x.device)
        if len(chosen):
            out[chosen] = _DEGRADE[name](x[chosen], strength[chosen], generator)
    return out


def _blur(x: torch.Tensor, strength: torch.Tensor, generator) -> torch.Tensor:
    """A separable 7-tap Gaussian blur per image (reflect-padded), sigma from `strength` in [0, 1]."""
    sigma = BLUR_SIGMA[0] + strength * (BLUR_SIGMA[1] - BLUR_SIGMA[0])
    taps = torch.arange(-3, 4, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-taps[None] ** 2 / (2 * sigma[:, None] ** 2))
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(x.shape[1], 0)  # one per (image, channel)
    flat = F.pad(x.reshape(1, -1, *x.shape[2:]), (3, 3, 3, 3), mode="reflect")
    flat = F.conv2d(flat, kernel[:, None, :, None], groups=flat.shape[1])
    return F.conv2d(flat, kernel[:, None, None, :], groups=flat.shape[1]).view_as(x)


def _grey(x: torch.Tensor, strength: torch.Tensor, generator) -> torch.Tensor:
    return _gray(x).expand_as(x).clone()


def _noise(x: torch.Tensor, strength: torch.Tensor, generator) -> torch.Tensor:
    std = NOISE_STD[0] + strength * (NOISE_STD[1] - NOISE_STD[0])
    return (x + std.view(-1, 1, 1, 1) * torch.randn(x.shape, generator=generator).to(x)).clamp(0, 1)


_DEGRADE = {"blur": _blur, "grey": _grey, "noise": _noise}
