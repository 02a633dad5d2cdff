"""Black-and-white 32x32 test patterns for the matched-pair test (eqs 1-4).

`test_patterns` is the paper's set P as far as its text describes it ("black and white patterns", Fig 9 and S1-S3
Figs; the S1 File itself is not available): 50 coarse shapes, filled and outlined circles, squares, triangles,
bars, block letters, halves, quadrants and ramps, no stroke narrower than 4 pixels, so that a 404-number latent can
carry each one and the pair test measures the pairing, not the latent's resolution.

`stress_patterns` is a harder, labelled stress set (P_stress): stripes and rings down to 2 pixels and small letters,
detail a 404-number latent cannot carry. Both are far from any training image, a strict test of whether a decoder
reproduces what an encoder saw or merely paints a plausible natural image.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from veil.data.imageset import ImageSet

#: the side of every pattern: the paper's (and the AAE's) 32x32
SIZE = 32


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


def _drawn(*shapes) -> np.ndarray:
    """A white-on-black plane with PIL shapes drawn on it: each ("ellipse" | "rectangle" | "polygon", xy)."""
    canvas = Image.new("L", (SIZE, SIZE), 0)
    draw = ImageDraw.Draw(canvas)
    for kind, xy in shapes:
        getattr(draw, kind)(xy, fill=255)
    return np.asarray(canvas, np.float32) / 255.0


def _coarse_shapes() -> list[np.ndarray]:
    """40 shapes, every stroke at least 4 pixels wide."""
    y, x = _grid()
    r = np.hypot(x - 15.5, y - 15.5)
    circles = [_drawn(("ellipse", (16 - d, 16 - d, 15 + d, 15 + d))) for d in (6, 10, 14)]
    circles += [_drawn(("ellipse", (cx - 6, cy - 6, cx + 5, cy + 5))) for cx in (9, 22) for cy in (9, 22)]
    rings = [((r < outer) & (r >= outer - 5)).astype(np.float32) for outer in (9, 14)]
    squares = [_drawn(("rectangle", (16 - d, 16 - d, 15 + d, 15 + d))) for d in (4, 8, 12)]
    squares += [_drawn(("rectangle", (cx, cy, cx + 11, cy + 11))) for cx in (2, 18) for cy in (2, 18)]
    frame = [_drawn(("rectangle", (4, 4, 27, 27))) - _drawn(("rectangle", (9, 9, 22, 22)))]
    triangles = [_drawn(("polygon", points)) for points in ([(16, 3), (29, 28), (2, 28)], [(16, 28), (29, 3), (2, 3)],
                                                            [(3, 16), (28, 2), (28, 29)], [(28, 16), (3, 2), (3, 29)])]
    diamond = [_drawn(("polygon", [(16, 2), (29, 16), (16, 29), (2, 16)]))]
    halves = [(x < 16).astype(np.float32), (y < 16).astype(np.float32), (x > y).astype(np.float32)]
    checks = [((x // s) + (y // s)) % 2 for s in (8, 16)]
    bars = [(x // 8) % 2, (y // 8) % 2, ((x + y) // 11) % 2]
    cross = [((np.abs(x - 15.5) < 3) | (np.abs(y - 15.5) < 3)).astype(np.float32),
             ((np.abs(x - y) < 4) | (np.abs(x + y - 31) < 4)).astype(np.float32)]
    letters = [_drawn(*(("rectangle", box) for box in boxes)) for boxes in (
        [(6, 4, 11, 27), (6, 22, 25, 27)],  # L
        [(4, 4, 27, 9), (13, 4, 18, 27)],  # T
        [(5, 4, 10, 27), (21, 4, 26, 27), (5, 13, 26, 18)],  # H
        [(5, 4, 10, 27), (21, 4, 26, 27), (5, 22, 26, 27)],  # U
        [(6, 4, 11, 27), (6, 4, 25, 9), (6, 13, 22, 18), (6, 22, 25, 27)])]  # E
    ramps = [x / (SIZE - 1), y / (SIZE - 1), np.clip(1 - r / 22, 0, 1)]
    return (circles + rings + squares + frame + triangles + diamond + halves + checks + bars + cross + letters
            + ramps)


def _as_set(planes: list[np.ndarray], source: str) -> ImageSet:
    """Planes as gray RGB images in [0, 1]."""
    images = np.repeat(np.clip(np.stack(planes), 0, 1).astype(np.float32)[:, None], 3, axis=1)
    return ImageSet(images, None, [], source)


def test_patterns() -> ImageSet:
    """The set P: 50 coarse black-and-white patterns (40 shapes and the inverses of every fourth)."""
    planes = _coarse_shapes()
    return _as_set(planes + [1.0 - p for p in planes[::4]], "test patterns")


def stress_patterns() -> ImageSet:
    """The stress set P_stress: fine stripes, checks, rings, crosses, small letters and ramps, each white-on-black,
    and the inverses of every other one (the set P was before it was made coarse enough for the latent)."""
    planes = _stripes() + _checks() + _circles() + _crosses() + _letters() + _gradients()
    return _as_set(planes + [1.0 - p for p in planes[::2]], "stress patterns")
