"""A run's accuracy as the baselines' JSONs (`veil reproduce tradeoff`) keep it, and the comparison of two runs, for
the claims of papers 003 and 004 and the tradeoff report.

With several seeds (the JSON's `seeds`), a difference or ratio of two runs is paired by seed: the mean of the
per-seed differences or ratios, with its 95% t interval over seeds (n - 1 degrees of freedom). With one seed,
accuracies are over the test images (Wilson intervals), and a difference or ratio of two runs takes its interval
from their binomial errors as if independent: the runs are scored on the same images, which correlates them, so the
interval errs wide. A difference whose interval holds 0 (a ratio's, 1) is "no difference", neither a win nor a loss.
"""
from __future__ import annotations

import math
import operator
from typing import NamedTuple

import numpy as np

from veil.metrics import Z95, accuracy_interval, accuracy_se, t_interval


class Accuracy(NamedTuple):
    """A run's accuracy (the mean over seeds), its binomial standard error over the test images, and its value per
    seed ({} with one seed)."""
    value: float
    se: float
    seeds: dict


def accuracy(doc: dict, name: str) -> Accuracy:
    figures, seeds = doc["figures"], doc["config"]["seeds"]
    value = figures[f"{name}_accuracy"]
    per_seed = {seed: figures[f"{name}_accuracy_seed{seed}"] for seed in seeds} if len(seeds) > 1 else {}
    return Accuracy(value, accuracy_se(value, doc["config"]["n_test"]), per_seed)


def figure_interval(doc: dict, name: str) -> tuple[float, float]:
    """The 95% interval of an accuracy figure: over seeds when the JSON has several, else Wilson's over its test
    images."""
    figures = doc["figures"]
    if f"{name}_lo" in figures:
        return figures[f"{name}_lo"], figures[f"{name}_hi"]
    return accuracy_interval(figures[name], doc["config"]["n_test"])


def _paired(a: Accuracy, b: Accuracy, combine) -> tuple[float, tuple[float, float]] | None:
    """The mean of `combine` of a and b seed by seed and its t interval, when both have the same seeds."""
    if not a.seeds or a.seeds.keys() != b.seeds.keys():
        return None
    values = [combine(a.seeds[seed], b.seeds[seed]) for seed in a.seeds]
    return float(np.mean(values)), t_interval(values)


def ratio(a: Accuracy, b: Accuracy) -> tuple[float, tuple[float, float]]:
    paired = _paired(a, b, operator.truediv)
    if paired:
        return paired
    value = a.value / b.value
    half = Z95 * math.hypot(a.se, value * b.se) / b.value  # delta method, finite at a = 0
    return value, (value - half, value + half)


def difference(a: Accuracy, b: Accuracy) -> tuple[float, tuple[float, float]]:
    paired = _paired(a, b, operator.sub)
    if paired:
        return paired
    value, half = a.value - b.value, Z95 * math.hypot(a.se, b.se)
    return value, (value - half, value + half)


def mean_accuracy(doc: dict, names: list[str]) -> Accuracy:
    """The mean of several runs' accuracies, its standard error, and its value per seed."""
    runs = [accuracy(doc, name) for name in names]
    seeds = {seed: float(np.mean([run.seeds[seed] for run in runs])) for seed in runs[0].seeds}
    return Accuracy(float(np.mean([run.value for run in runs])), math.sqrt(sum(run.se ** 2 for run in runs)) / len(runs),
                    seeds)
