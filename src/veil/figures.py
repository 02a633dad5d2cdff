"""The figure primitives every layer may draw with (PNG, matplotlib Agg): saving atomically, image grids, the
Gaussian part of a masked vector shown as a square. The figures themselves live with what they show
(`veil.attacks.grid`, `veil.experiments.plots`)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from veil.io.write import atomic_path  # noqa: E402


def save_figure(fig, path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def hwc(image: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(image).transpose(1, 2, 0), 0, 1)


def gaussian_square(gauss: np.ndarray) -> np.ndarray:
    """The Gaussian part padded with zeros to the next square (384 -> 400) and shown as a 20x20 image."""
    side = int(np.ceil(np.sqrt(gauss.shape[-1])))
    padded = np.zeros(side * side, dtype=np.float32)
    padded[:gauss.shape[-1]] = gauss
    return padded.reshape(side, side)


def image_rows(path, rows: list[tuple[str, list[np.ndarray]]], title: str = "", fontsize: int = 12) -> None:
    """A grid with one labelled row per list of pictures: (3, H, W) images in [0, 1], or 2-D arrays (grey)."""
    n = max(len(pictures) for _, pictures in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.3 * n, 1.4 * len(rows)), squeeze=False)
    for row, (label, pictures) in enumerate(rows):
        for i, picture in enumerate(pictures):
            axes[row, i].imshow(hwc(picture) if picture.ndim == 3 else picture, cmap=None if picture.ndim == 3
                                else "gray")
        axes[row, 0].set_ylabel(label)
    for ax in axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=fontsize)
    save_figure(fig, path)
