"""What an attack's reconstructions reveal, measured against the victim's plain images (which the attack never saw).

Per image: MSE, PSNR (10 log10(1 / MSE), capped for exact reconstructions) and SSIM (scikit-image), summarised as
distributions (median and quartiles, as in paper 003's Fig 8). Semantic leakage: the accuracy, on the reconstructions, of a classifier trained on plain public images; if it
recognises them, privacy is gone even at a low SSIM. LPIPS is not measured: it needs pretrained network weights that
cannot be downloaded here.
"""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from veil.metrics import per_image_mse

#: PSNR of an exact reconstruction is infinite; it is reported as this cap
PSNR_CAP = 100.0
#: a value counts as restored exactly when it is within half an 8-bit level
EXACT = 0.5 / 255


def per_image(victim: np.ndarray, recon: np.ndarray) -> dict[str, np.ndarray]:
    """MSE, PSNR and SSIM of every image (both (N, 3, 32, 32) in [0, 1]; reconstructions are clipped to it)."""
    victim = np.asarray(victim, np.float64)
    recon = np.clip(np.asarray(recon, np.float64), 0.0, 1.0)
    ssim = np.array([structural_similarity(a, b, channel_axis=0, data_range=1.0) for a, b in zip(victim, recon)])
    mse = per_image_mse(victim, recon)
    with np.errstate(divide="ignore"):
        psnr = np.where(mse > 0, 10 * np.log10(1.0 / np.maximum(mse, 1e-300)), PSNR_CAP)
    return {"mse": mse, "psnr": np.minimum(psnr, PSNR_CAP), "ssim": ssim}


def summary(values: dict[str, np.ndarray]) -> dict[str, float]:
    """`ssim_median`, `ssim_q1`, `ssim_q3`, `ssim_mean`, likewise for psnr and mse."""
    figures = {}
    for name, array in values.items():
        q1, median, q3 = np.percentile(array, [25, 50, 75])
        figures.update({f"{name}_median": float(median), f"{name}_q1": float(q1), f"{name}_q3": float(q3),
                        f"{name}_mean": float(np.mean(array))})
    return figures


def blocks_correct(victim: np.ndarray, recon: np.ndarray, block: int) -> float:
    """Share of (image, block) pairs whose B x B block is restored exactly (every value within half a level)."""
    n, channels, side = len(victim), 3, victim.shape[-1]
    per_side = side // block
    error = np.abs(np.asarray(victim, np.float32) - np.clip(np.asarray(recon, np.float32), 0, 1))
    blocks = error.reshape(n, channels, per_side, block, per_side, block).max(axis=(1, 3, 5))
    return float((blocks < EXACT).mean())


def median_interval(values: np.ndarray, seed: int = 0, draws: int = 1000) -> tuple[float, float]:
    """95% bootstrap (percentile) interval of the median."""
    values = np.asarray(values)
    rng = np.random.default_rng(seed)
    medians = np.median(values[rng.integers(0, len(values), (draws, len(values)))], axis=1)
    return float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))
