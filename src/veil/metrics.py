"""Utility metrics (accuracy, macro precision/recall) and privacy metrics (reconstruction MSE, SSIM, PSNR,
latent conformity)."""
from __future__ import annotations

import functools
import math

import numpy as np


def classification_figures(y_true, y_pred) -> dict:
    """accuracy, macro precision and macro recall (the paper's three metrics), and the sample count n."""
    from sklearn.metrics import accuracy_score, precision_score, recall_score  # not needed to mask

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, average="macro", zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, average="macro", zero_division=0)),
        "n": int(len(y_true)),
    }


def per_image_mse(images: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    diff = np.asarray(images, np.float64) - np.asarray(reconstructions, np.float64)
    return (diff ** 2).reshape(len(diff), -1).mean(axis=1)


def reconstruction_mse(images: np.ndarray, reconstructions: np.ndarray) -> float:
    return float(per_image_mse(images, reconstructions).mean())


def ssim_psnr(images: np.ndarray, reconstructions: np.ndarray) -> dict:
    """Mean SSIM and PSNR (scikit-image) between images and their reconstructions, both (N, 3, H, W) in [0, 1]."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    ssim, psnr = [], []
    for a, b in zip(np.asarray(images, np.float64), np.clip(np.asarray(reconstructions, np.float64), 0, 1)):
        ssim.append(structural_similarity(a, b, channel_axis=0, data_range=1.0))
        # identical images (an exact scheme) have infinite PSNR, capped below; scikit-image would warn on the /0
        psnr.append(100.0 if np.array_equal(a, b) else peak_signal_noise_ratio(a, b, data_range=1.0))
    return {"ssim": float(np.mean(ssim)), "psnr": float(np.mean(np.minimum(psnr, 100.0)))}


def ks_statistics(samples: np.ndarray) -> np.ndarray:
    """Per-column Kolmogorov-Smirnov statistic of `samples` (N, D) against N(0, 1), vectorised.

    `veil mask` records it for every AAE-masked set, so it avoids SciPy, whose import alone took longer than the
    statistic: the normal CDF is interpolated linearly in a table of `math.erf` values on a uniform grid (step 1e-3,
    error below 1e-7, far under the statistic's own resolution of 1/N), indexed directly rather than searched, and
    columns are sorted as contiguous rows."""
    samples = np.asarray(samples, np.float32)  # the vectors are float32: sorting wider costs twice
    n = len(samples)
    above, below = np.arange(1, n + 1, dtype=np.float32) / n, np.arange(0, n, dtype=np.float32) / n
    # a few columns at a time: small temporaries are reused, where whole-matrix ones cost a new process more in
    # page faults than the arithmetic
    return np.concatenate([_ks_rows(np.sort(samples[:, start:start + KS_COLUMNS].T, axis=1), above, below)
                           for start in range(0, samples.shape[1], KS_COLUMNS)]).astype(np.float64)


KS_COLUMNS = 16


def _ks_rows(x: np.ndarray, above: np.ndarray, below: np.ndarray) -> np.ndarray:
    cdf = _normal_cdf(x)
    return np.maximum((above - cdf).max(axis=1), (cdf - below).max(axis=1))


CDF_LIMIT, CDF_STEP = 9.0, 1e-3


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    """The standard normal CDF of float32 `x`, interpolated in `_normal_cdf_table` (0 and 1 beyond +-9)."""
    table = _normal_cdf_table()
    position = (np.clip(x, -CDF_LIMIT, CDF_LIMIT) + np.float32(CDF_LIMIT)) * np.float32(1 / CDF_STEP)
    index = np.minimum(position.astype(np.int32), len(table) - 2)
    fraction = position - index
    low = table[index]
    return low + fraction * (table[index + 1] - low)


@functools.cache
def _normal_cdf_table() -> np.ndarray:
    grid = np.linspace(-CDF_LIMIT, CDF_LIMIT, int(round(2 * CDF_LIMIT / CDF_STEP)) + 1)
    return np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in grid], dtype=np.float32)


def latent_conformity(gauss: np.ndarray, cat: np.ndarray) -> dict:
    """How well the masked form follows its priors: Gaussian part vs N(0,1), categorical part vs one-hot."""
    means, stds = gauss.mean(axis=0), gauss.std(axis=0)
    winners = cat.argmax(axis=1)
    return {
        "gauss_mean_abs": float(np.abs(means).mean()),
        "gauss_std_mean": float(stds.mean()),
        "gauss_ks": float(ks_statistics(gauss).mean()),
        "cat_mean_max_prob": float(cat.max(axis=1).mean()),
        "cat_used": int(len(np.unique(winners))),
    }


# ---------------------------------------------------------------- 95% intervals

Z95 = 1.959964


def proportion_interval(successes: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (an accuracy over n test images)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + Z95 * Z95 / (2 * n)) / (1 + Z95 * Z95 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95 * Z95 / (4 * n * n)) / (1 + Z95 * Z95 / n)
    return float(centre - half), float(centre + half)


def accuracy_interval(accuracy: float, n: int) -> tuple[float, float]:
    """The Wilson interval of an accuracy recorded as a fraction of n test images."""
    return proportion_interval(int(round(accuracy * n)), n)


def t_interval(values, bounds: tuple[float, float] = (-math.inf, math.inf)) -> tuple[float, float]:
    """95% Student-t interval of the mean of independent values (draws, seeds); the mean itself for one value. With
    `bounds`, the range the quantity can take, the interval is cut to it: few seeds give a wide symmetric interval
    that would otherwise claim, say, a negative share."""
    from scipy.stats import t  # not needed to mask

    values = np.asarray(values, np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, mean
    half = float(t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return max(mean - half, bounds[0]), min(mean + half, bounds[1])


def t_interval_from_summary(mean: float, std: float, n: int) -> tuple[float, float]:
    """95% t interval of a mean given as mean and (sample) std over n independent values, as a paper reports it."""
    from scipy.stats import t

    half = float(t.ppf(0.975, n - 1) * std / math.sqrt(n))
    return mean - half, mean + half


def accuracy_se(accuracy: float, n: int) -> float:
    """The binomial standard error of an accuracy over n test images."""
    return math.sqrt(max(accuracy * (1 - accuracy), 0.0) / n)


def slope_interval(x, y) -> tuple[float, float, float]:
    """Least-squares slope of y on x and its 95% t interval (n - 2 degrees of freedom)."""
    from scipy.stats import t

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    dx = x - x.mean()
    slope = float((dx * (y - y.mean())).sum() / (dx * dx).sum())
    residual = y - y.mean() - slope * dx
    se = math.sqrt((residual ** 2).sum() / (len(x) - 2) / (dx * dx).sum())
    half = float(t.ppf(0.975, len(x) - 2) * se)
    return slope, slope - half, slope + half
