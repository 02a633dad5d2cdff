"""Figures (PNG, matplotlib Agg): the paper's Fig 1, training curves, and the encoder/decoder pair grid."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from veil.figures import gaussian_square, hwc, image_rows, save_figure  # noqa: E402


def masked_examples(path, originals: np.ndarray, gauss: np.ndarray, decoded: np.ndarray, title: str = "") -> None:
    """Fig 1: originals (top), Gaussian part as a square image (middle), decoder output (bottom)."""
    image_rows(path, [("original", list(originals)), ("masked\n(Gaussian)", [gaussian_square(g) for g in gauss]),
                      ("decoded", list(decoded))], title)


def curves(path, rows: list[dict], keys: list[str], ylabel: str, title: str, logy: bool = False) -> None:
    """Per-epoch curves from a training log (one line per key)."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    epochs = [row["epoch"] for row in rows]
    for key in keys:
        ax.plot(epochs, [row[key] for row in rows], marker="o", ms=3, label=key)
    ax.set_xlabel("epoch"), ax.set_ylabel(ylabel), ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def pair_grid(path, original: np.ndarray, grid: np.ndarray, title: str) -> None:
    """Figs 8-9: dec_i(enc_j(x)) for every (encoder j, decoder i); the original in the corner."""
    n = grid.shape[0]
    fig, axes = plt.subplots(n + 1, n + 1, figsize=(1.3 * (n + 1), 1.3 * (n + 1)))
    for ax in axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
        ax.axis("off")
    axes[0, 0].imshow(hwc(original)), axes[0, 0].set_title("x", fontsize=8)
    for j in range(n):
        axes[0, j + 1].text(0.5, 0.3, f"dec {j}", ha="center", fontsize=8)
        axes[j + 1, 0].text(0.5, 0.5, f"enc {j}", ha="center", fontsize=8)
        for i in range(n):
            axes[j + 1, i + 1].imshow(hwc(grid[j, i]))
    fig.suptitle(title)
    save_figure(fig, path)


def tradeoff(path, series: dict[str, tuple[list, list, list]], xlabel: str, ylabel: str, title: str) -> None:
    """`series`: label -> (x values, y values, (low, high) 95% interval of each y), drawn as error bars."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for label, (xs, ys, intervals) in series.items():
        below = [y - low for y, (low, _) in zip(ys, intervals)]
        above = [high - y for y, (_, high) in zip(ys, intervals)]
        ax.errorbar(xs, ys, yerr=[below, above], marker="o", capsize=3, label=label)
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel), ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def scheme_examples(path, rows: dict[str, np.ndarray], pad: int = 2) -> None:
    """One row per masking scheme (images (N, 3, H, W)) in a single mosaic; unbounded outputs (random filters) are
    min-max scaled per image."""
    names = list(rows)
    n, _, height, width = next(iter(rows.values())).shape
    mosaic = np.ones((len(names) * (height + pad), n * (width + pad), 3), dtype=np.float32)
    for r, name in enumerate(names):
        for i, image in enumerate(rows[name]):
            low, high = float(image.min()), float(image.max())
            scaled = image if low >= 0 and high <= 1 else (image - low) / max(high - low, 1e-8)
            top, left = r * (height + pad), i * (width + pad)
            mosaic[top:top + height, left:left + width] = hwc(scaled)
    fig, ax = plt.subplots(figsize=(0.9 * n + 1.2, 0.9 * len(names)))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_yticks([r * (height + pad) + height / 2 for r in range(len(names))], names, fontsize=8)
    ax.set_xticks([])
    save_figure(fig, path)


def frontier(path, points: dict[str, tuple[float, float]], front: list[str], xlabel: str, ylabel: str,
             title: str, reference: dict[str, tuple[float, float]] | None = None,
             goal: tuple[float, float] | None = None, lower_bounds: frozenset[str] = frozenset()) -> None:
    """One labelled point per scheme (x: leakage, y: utility kept); the schemes of `front` joined by a line.
    `reference`: other schemes drawn as grey crosses (not on the front); `goal`: (largest x, least y), the corner
    of the goal region, drawn as dashed lines; `lower_bounds`: points whose leakage is a lower bound (a run did not
    saturate), drawn hollow and labelled with ≥, as the tables label them."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for name, (x, y) in points.items():
        color = "C3" if name in front else "C0"
        bound = name in lower_bounds
        ax.scatter([x], [y], s=18, edgecolors=color, facecolors="none" if bound else color)
        ax.annotate(f"{name} (≥)" if bound else name, (x, y), fontsize=7, xytext=(3, 2), textcoords="offset points")
    for name, (x, y) in (reference or {}).items():
        ax.scatter([x], [y], s=18, marker="x", color="0.5")
        ax.annotate(name, (x, y), fontsize=6, color="0.4", xytext=(3, -8), textcoords="offset points")
    if goal:
        ax.axvline(goal[0], color="C2", ls="--", lw=0.8, label="goal")
        ax.axhline(goal[1], color="C2", ls="--", lw=0.8)
    if front:
        ax.plot(*zip(*sorted(points[name] for name in front)), color="C3", lw=1, label="Pareto front")
    bounded = lower_bounds & points.keys()
    if bounded:
        ax.scatter([], [], s=18, edgecolors="0.3", facecolors="none", label="(≥) leakage is a lower bound")
    if front or goal or bounded:
        ax.legend(fontsize=8)
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel), ax.set_title(title, fontsize=10)
    xs = [x for x, _ in [*points.values(), *(reference or {}).values()]]
    ax.set_xlim(min(-0.05, min(xs) - 0.05), max(1.05, max(xs) + 0.1))  # the normalised semantic part may pass 1
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def box_stats(path, boxes: list[tuple[str, dict]], ylabel: str, title: str) -> None:
    """Box plots drawn from precomputed statistics (q1, med, q3, whislo, whishi, mean), as paper 003's Fig 8."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.32 * len(boxes)), 4.4))
    ax.bxp([{**stats, "label": label, "fliers": []} for label, stats in boxes], showmeans=True, showfliers=False)
    ax.set_ylabel(ylabel), ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    ax.grid(alpha=0.3, axis="y")
    save_figure(fig, path)
