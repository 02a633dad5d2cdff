"""Subset helpers: k random classes, stratified train/test splits and subsamples (seeded), and `--limit`'s first
images of each class (`limit_indices`)."""
from __future__ import annotations

import numpy as np

from veil.data.imageset import ImageSet
from veil.errors import VeilError


def random_classes(class_names: list[str], k: int, seed: int) -> list[str]:
    """k distinct class names drawn with a seeded generator (sorted by draw order)."""
    if not 1 <= k <= len(class_names):
        raise VeilError(f"cannot draw {k} classes from {len(class_names)}")
    rng = np.random.default_rng(seed)
    return [class_names[i] for i in rng.choice(len(class_names), size=k, replace=False)]


def stratified_split(labels: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) with class proportions kept on both sides."""
    from sklearn.model_selection import train_test_split  # here: loading data must not import scikit-learn

    index = np.arange(len(labels))
    _check_classes(labels)
    train, test = train_test_split(index, test_size=test_size, random_state=seed, stratify=labels)
    return np.sort(train), np.sort(test)


def stratified_subsample(images: ImageSet, n: int, seed: int) -> ImageSet:
    """A stratified draw of n of the images (all of them when there are no more than n)."""
    if n >= len(images):
        return images
    return images.subset(stratified_split(images.labels, n / len(images), seed)[1])


def _check_classes(labels: np.ndarray) -> None:
    values, counts = np.unique(labels, return_counts=True)
    if len(values) < 2:
        raise VeilError(f"need at least two classes, got {len(values)}")
    if counts.min() < 2:
        raise VeilError(f"class {values[counts.argmin()]} has a single image; a stratified split needs two per class")


def limit_indices(n: int, total: int, labels: np.ndarray | None = None) -> np.ndarray:
    """The positions among `total` samples that `--limit N` keeps, in ascending order: N samples spread over the
    classes (`labels`) in proportion to their counts (largest remainders), the first ones of each class in the
    source's order; without labels, the first N. Not simply the first N: an archive listed class by class
    (CIFAR-10's) would give its first classes only, and a quick run on them would say nothing of the others."""
    if labels is None or n >= total:
        return np.arange(min(n, total))
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n / total
    take = np.floor(quota).astype(int)
    take[np.argsort(take - quota, kind="stable")[:n - take.sum()]] += 1
    keep = np.zeros(total, bool)
    for label, count in zip(classes, take):
        keep[np.flatnonzero(labels == label)[:count]] = True
    return np.flatnonzero(keep)
