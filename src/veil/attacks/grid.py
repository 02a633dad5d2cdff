"""The picture of an attack: victim images, their masked form and the reconstructions, one row each."""
from __future__ import annotations

import numpy as np

from veil.figures import gaussian_square, image_rows


def attack_grid(path, victim: np.ndarray, masked: np.ndarray, recon: np.ndarray, title: str = "") -> None:
    """Rows: the victim's images, their masked form (stretched to [0, 1]; vectors shown as Fig 1's square), the
    attack's reconstruction."""
    shown = [(m - m.min()) / max(float(m.max() - m.min()), 1e-9) if m.ndim == 3 else gaussian_square(m)
             for m in masked]
    image_rows(path, [("victim", list(victim)), ("masked", shown), ("attack", list(recon))], title, fontsize=9)
