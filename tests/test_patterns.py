"""The pair test's pattern sets: P coarse enough for a 404-number latent, P_stress the finer, labelled stress set."""
from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_closing, binary_opening

from veil.data import patterns


def _lost_to_a_3x3_opening(plane: np.ndarray) -> float:
    """Share of pixels a 3x3 opening (white strokes) or closing (black gaps) changes: strokes under 3 pixels vanish.
    The plane is extended by its edge pixels first, so that a shape touching the border is not cut there."""
    white = np.pad(plane > 0.5, 2, mode="edge")
    square = np.ones((3, 3), bool)
    changed = (binary_opening(white, square) != white) | (binary_closing(white, square) != white)
    return float(changed[2:-2, 2:-2].mean())


def _binary(images: np.ndarray) -> list[np.ndarray]:
    return [image[0] for image in images if np.isin(image, (0.0, 1.0)).all()]


def test_pattern_set_p_has_about_50_distinct_coarse_patterns():
    images = patterns.test_patterns().images
    assert 45 <= len(images) <= 55 and images.shape[1:] == (3, 32, 32)
    assert len({image.tobytes() for image in images}) == len(images)
    assert max(_lost_to_a_3x3_opening(plane) for plane in _binary(images)) < 0.1


def test_stress_set_keeps_the_fine_patterns():
    assert max(_lost_to_a_3x3_opening(plane) for plane in _binary(patterns.stress_patterns().images)) > 0.4
