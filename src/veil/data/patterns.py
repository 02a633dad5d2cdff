"""Black-and-white 32x32 test patterns (the paper's set P): stripes, checks, circles, crosses, letters, gradients.

These are far from any training image, which makes them a strict test of whether a decoder reproduces what an
encoder saw or merely paints a plausible natural image. The paper's own set (its S1 File) is not available; the
finest structures here are 2 pixels wide, since a 404-number latent cannot carry single-pixel detail.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from veil.data.imageset import SIZE, ImageSet


def _grid():
    return np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)


def _stripes() -> list[np.ndarray]:
    y, x = _grid()
    out = []
    for width in (2, 4, 8):
        out += [(x // width) % 2, (y // width) % 2, ((x + y) // (width * 1.5)) % 2]
    return out


def _checks() -> list[np.ndarray]:
    y, x = _grid()
    return [((x // s) + (y // s)) % 2 for s in (4, 8, 16)]


def _circles() -> list[np.ndarray]:
    y, x = _grid()
    r = np.hypot(x - 15.5, y - 15.5)
    return [(r < radius).astype(np.float32) for radius in (5, 9, 13)] + [((r // w) % 2) for w in (3, 5)]


def _crosses() -> list[np.ndarray]:
    y, x = _grid()
    out = []
    for width in (2, 4, 6):
        half = width / 2
        plus = (np.abs(x - 15.5) < half) | (np.abs(y - 15.5) < half)
        diagonal = (np.abs(x - y) < half) | (np.abs(x + y - 31) < half)
        out += [plus.astype(np.float32), diagonal.astype(np.float32)]
    return out


def _letters() -> list[np.ndarray]:
    font = ImageFont.load_default()
    out = []
    for letter in "AEKMRSWXZ":
        canvas = Image.new("L", (SIZE // 2, SIZE // 2), 0)
        ImageDraw.Draw(canvas).text((3, 1), letter, fill=255, font=font)
        out.append(np.asarray(canvas.resize((SIZE, SIZE), Image.Resampling.NEAREST), np.float32) / 255.0)
    return out


def _gradients() -> list[np.ndarray]:
    y, x = _grid()
    ramp = x / (SIZE - 1)
    return [ramp, y / (SIZE - 1), (x + y) / (2 * SIZE - 2), np.round(ramp * 4) / 4]


def test_patterns() -> ImageSet:
    """About 50 patterns, each white-on-black and its inverse, as RGB images."""
    planes = _stripes() + _checks() + _circles() + _crosses() + _letters() + _gradients()
    planes = [np.clip(p, 0, 1).astype(np.float32) for p in planes]
    planes += [1.0 - p for p in planes[::2]]
    images = np.repeat(np.stack(planes)[:, None], 3, axis=1)
    return ImageSet(images, None, [], "test patterns")
