"""Semantic leakage: a classifier trained on plain public images (the judge), applied to an attack's reconstructions.
If it recognises them, the attack has recovered what the images show, whatever their SSIM.

The judge is paper 004's baseline CNN, widened and trained longer (`Budget.semantic_widths`, `semantic_epochs`), with
random crops and flips and, on a share `Budget.semantic_degrade` of its training images, a blur, greyscale or noise
(`veil.classifiers.augment.degrade`): reconstructions are often blurred, grey or noisy, and a judge that never saw
such images would take the degradation for the content and understate the leakage. Its accuracy on the plain victim
images is reported beside every semantic figure (`semantic_accuracy_plain`). It is trained once per (public images,
budget, seed) and cached in the user cache folder (`VEIL_CACHE_DIR`); it holds nothing secret."""
from __future__ import annotations

import hashlib

import numpy as np

from veil.attacks.base import Budget
from veil.classifiers import classifier_class, load_classifier
from veil.data import ImageSet, cache_dir, stratified_split
from veil.errors import VeilError


def judge_params(budget: Budget, seed: int) -> dict:
    """The judge's hyperparameters under `budget`."""
    return {"epochs": budget.semantic_epochs, "batch_size": 128, "seed": seed, "widths": tuple(budget.semantic_widths),
            "degrade": budget.semantic_degrade, "crop_flip": budget.semantic_crop_flip}


def public_classifier(public: ImageSet, budget: Budget, seed: int = 0, progress: bool = False):
    """The judge trained on (a stratified subset of) the labelled public images; cached."""
    labels = public.require_labels()
    chosen = np.arange(len(public))
    if budget.semantic_train < len(public):
        chosen = stratified_split(labels, budget.semantic_train / len(public), seed)[1]
    train = public.subset(chosen)
    params = judge_params(budget, seed)
    digest = hashlib.sha256(train.images.tobytes())
    digest.update(repr((sorted(params.items()), list(train.class_names))).encode())
    folder = cache_dir() / "semantic" / digest.hexdigest()[:24]
    if (folder / "model.json").exists():
        return load_classifier(folder)
    model = classifier_class("cnn")(**params)
    model.fit(train.images, train.labels, class_names=train.class_names, progress=progress)
    model.save(folder)
    return model


def semantic_accuracy(classifier, images: np.ndarray, labels: np.ndarray, class_names: list[str]) -> float:
    """Accuracy of the public classifier on `images` (reconstructions or plain), labels named as in `class_names`."""
    if list(class_names) != list(classifier.class_names_):
        raise VeilError(f"the victim's classes {list(class_names)} differ from the public images' "
                        f"{list(classifier.class_names_)}; semantic leakage needs the same classes")
    return float((classifier.predict(np.clip(images, 0, 1)) == labels).mean())
