"""Classifiers over masked data, in the manner of scikit-learn estimators, and their safe persistence.

A saved model directory holds `model.json` (kind, configuration, class names, the masker fingerprint it was
trained for, sha256 of the weight file) and one weight file that loads without pickle.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

from veil.errors import VeilError
from veil.manifest import open_manifest, verify_files, write_manifest
from veil.metrics import classification_figures
from veil.registry import CLASSIFIERS

MODEL_MANIFEST = "model.json"
register_classifier = CLASSIFIERS.register
classifier_class = CLASSIFIERS.get


def check_training_data(X, y) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    if len(X) == 0:
        raise VeilError("no training data (empty set)")
    if len(X) != len(y):
        raise VeilError(f"{len(X)} samples but {len(y)} labels")
    if not np.isfinite(X).all():
        raise VeilError("training data contain NaN or infinite values")
    if y.dtype.kind not in "iu" or (len(y) and y.min() < 0):
        raise VeilError("labels must be non-negative integers")
    if len(np.unique(y)) < 2:
        raise VeilError(f"training data hold a single class ({int(y[0])}); a classifier needs at least two")
    return X, y.astype(np.int64)


class MaskedClassifier(ABC):
    """fit(X, y) / predict / predict_proba / score / save / load."""

    kind: ClassVar[str] = ""
    weight_file: ClassVar[str] = ""
    #: trained in epochs by an Ignite engine: takes `epochs`, and checkpoints to a work folder it can resume from
    trains_with_engine: ClassVar[bool] = False

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.class_names: list[str] = []
        self.fingerprint = ""
        self.input_shape: tuple[int, ...] = ()

    def params(self) -> dict:
        """The constructor parameters (saved in the manifest, used to rebuild the estimator)."""
        return {"seed": self.seed}

    def fit(self, X, y, class_names=None, fingerprint: str = "", **kwargs) -> "MaskedClassifier":
        X, y = check_training_data(X, y)
        n_classes = int(y.max()) + 1
        self.class_names = list(class_names) if class_names else [str(i) for i in range(n_classes)]
        if len(self.class_names) < n_classes:
            raise VeilError(f"labels go up to {n_classes - 1} but only {len(self.class_names)} class names")
        self.fingerprint = fingerprint
        self.input_shape = tuple(X.shape[1:])
        self._fit(X, y, **kwargs)
        return self

    @abstractmethod
    def _fit(self, X, y, **kwargs):
        """Implemented by each estimator."""

    def check_input(self, X, fingerprint: str | None = None, where=None) -> np.ndarray:
        """Refuse data masked by another masker/key, or of the wrong shape, before predicting."""
        if fingerprint is not None and self.fingerprint and fingerprint != self.fingerprint:
            raise VeilError(f"masked with another masker ({fingerprint[:20]}...) than the model was trained on "
                            f"({self.fingerprint[:20]}...)", where)
        X = np.asarray(X, dtype=np.float32)
        if tuple(X.shape[1:]) != self.input_shape:
            raise VeilError(f"data have shape {tuple(X.shape[1:])} per sample, the model expects {self.input_shape}", where)
        if not np.isfinite(X).all():
            raise VeilError("data contain NaN or infinite values", where)
        return X

    def predict(self, X) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)

    @abstractmethod
    def predict_proba(self, X) -> np.ndarray:
        """Implemented by each estimator."""

    def score(self, X, y) -> dict:
        return classification_figures(y, self.predict(X))

    # ------------------------------------------------------------------ persistence

    def save(self, directory) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._save_weights(directory / self.weight_file)
        write_manifest(directory / MODEL_MANIFEST, "veil-model/1", {
            "kind": self.kind, "params": self.params(), "class_names": self.class_names,
            "fingerprint": self.fingerprint, "input_shape": list(self.input_shape), "extra": self._extra()},
            [self.weight_file])

    def _extra(self) -> dict:
        return {}

    @abstractmethod
    def _save_weights(self, path: Path) -> None:
        """Implemented by each estimator."""

    @abstractmethod
    def _load_weights(self, path: Path, extra: dict) -> None:
        """Implemented by each estimator."""


def load_classifier(directory) -> MaskedClassifier:
    directory = Path(directory)
    manifest = _read_model_manifest(directory)
    cls = classifier_class(manifest["kind"])
    try:
        model = cls(**manifest["params"])
    except (TypeError, ValueError) as exc:
        raise VeilError(f"invalid model parameters ({exc})", directory / MODEL_MANIFEST) from None
    model.class_names = list(manifest["class_names"])
    model.fingerprint = manifest["fingerprint"]
    model.input_shape = tuple(manifest["input_shape"])
    model._load_weights(directory / cls.weight_file, manifest.get("extra", {}))
    return model


def _read_model_manifest(directory: Path) -> dict:
    """model.json, read once and verified, with each field of the type that loading relies on."""
    kinds = {"kind": str, "params": dict, "class_names": list, "fingerprint": str, "input_shape": list}
    manifest = open_manifest(directory, MODEL_MANIFEST, kinds, "model", "train")
    path = directory / MODEL_MANIFEST
    if not all(isinstance(name, str) for name in manifest["class_names"]):
        raise VeilError("model manifest 'class_names' must be strings", path)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in manifest["input_shape"]):
        raise VeilError("model manifest 'input_shape' must be positive integers", path)
    if not isinstance(manifest.get("extra", {}), dict):
        raise VeilError("model manifest 'extra' is not a JSON object", path)
    verify_files(directory, manifest)
    return manifest
