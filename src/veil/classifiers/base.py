"""Classifiers over masked data, in the manner of scikit-learn estimators, and their safe persistence.

A saved model directory holds `model.json` (kind, configuration, class names, the masker fingerprint it was
trained for, sha256 of the weight file) and one weight file that loads without pickle.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from veil.errors import VeilError, VeilValueError
from veil.manifest import open_manifest, verify_files, write_manifest
from veil.metrics import classification_figures
from veil.registry import CLASSIFIERS

MODEL_MANIFEST = "model.json"
register_classifier = CLASSIFIERS.register
classifier_class = CLASSIFIERS.get


class MaskedClassifier(ClassifierMixin, BaseEstimator, ABC):
    """A scikit-learn classifier over masked data, with veil's safe persistence (`save`, `load_classifier`).

    Labels may be of any type (`classes_` holds them). `veil train` passes integer labels with the set's
    `class_names` and the masker `fingerprint` to `fit`; the model then refuses data masked by another masker
    (`check_input`). `score` is accuracy; `evaluate` gives accuracy, macro precision and recall.
    """

    kind: ClassVar[str] = ""
    weight_file: ClassVar[str] = ""
    #: trained in epochs through `veil.training.fit_engine`: `fit` takes work_dir, resume and progress
    trains_with_engine: ClassVar[bool] = False
    #: parameters that `save` leaves out of the manifest (choices of the machine, not of the model)
    unsaved_params: ClassVar[tuple[str, ...]] = ()
    #: scikit-learn checks this class fails on purpose, with the reason: `check_estimator(...,
    #: expected_failed_checks=cls.expected_failed_checks)`
    expected_failed_checks: ClassVar[dict[str, str]] = {}
    #: named recipes, each a dict of parameters (`veil train --preset NAME`; see `preset_params`)
    presets: ClassVar[dict[str, dict]] = {}
    #: input dtypes kept as they come rather than converted to float32 (an image model takes uint8 pixels, scaling
    #: each batch itself)
    kept_dtypes: ClassVar[tuple[type, ...]] = ()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y, class_names=None, fingerprint: str = "", **kwargs) -> "MaskedClassifier":
        """`class_names`: y are indices into these names (as in a MaskedSet); otherwise y are the labels."""
        self._check_params()
        X, y = self._validated(X, y, reset=True)
        self.classes_, codes, self.class_names_ = encode_labels(y, class_names)
        self.fingerprint_ = fingerprint
        self.input_shape_ = tuple(X.shape[1:])
        self._fit(X, codes, **kwargs)
        return self

    def _check_params(self) -> None:
        """Refuse bad hyperparameters (raise VeilValueError); called first by `fit`."""

    @abstractmethod
    def _fit(self, X: np.ndarray, codes: np.ndarray, **kwargs) -> None:
        """Train on float32 samples and class indices 0..len(classes_)-1."""

    def _validated(self, X, y="no_validation", reset: bool = False):
        """X as float32, or in one of `kept_dtypes` (and (X, y) when y is given), after scikit-learn's checks;
        failures as VeilValueError."""
        dtype = getattr(X, "dtype", None)
        try:
            out = validate_data(self, X, y, reset=reset, dtype=dtype if dtype in self.kept_dtypes else np.float32,
                                allow_nd=True)
            if reset:
                check_classification_targets(out[1])
        except ValueError as exc:
            raise VeilValueError(str(exc)) from None
        if not reset:
            self._check_shape(out)
        return out

    def _check_shape(self, X: np.ndarray, where=None) -> None:
        if tuple(X.shape[1:]) != self.input_shape_:
            raise VeilValueError(f"data have shape {tuple(X.shape[1:])} per sample, the model expects "
                                 f"{self.input_shape_}", where)

    # ------------------------------------------------------------------ prediction

    def check_input(self, X, fingerprint: str | None = None, where=None) -> np.ndarray:
        """Refuse data masked by another masker/key, or of the wrong shape, before predicting."""
        check_is_fitted(self)
        if fingerprint is not None and self.fingerprint_ and fingerprint != self.fingerprint_:
            raise VeilError(f"masked with another masker ({fingerprint[:20]}...) than the model was trained on "
                            f"({self.fingerprint_[:20]}...)", where)
        self._check_shape(np.asarray(X), where)
        try:
            return self._validated(X)
        except VeilError as exc:
            raise VeilError(str(exc), where) from None

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def predict_proba(self, X, check_input: bool = True) -> np.ndarray:
        """Probabilities of each class of `classes_`, one row per sample. `check_input=False` (as scikit-learn's
        trees have it) skips the input checks, for samples the caller has checked already: float32 (or a kept
        dtype), of the model's shape, finite; `veil serve` checks each request so, before requests share a call."""
        check_is_fitted(self)
        return self._predict_proba(self._validated(X) if check_input else X)

    @abstractmethod
    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities for validated float32 samples."""

    def evaluate(self, X, y) -> dict:
        """Accuracy, macro precision, macro recall and n (`score` is the accuracy alone)."""
        return classification_figures(y, self.predict(X))

    # ------------------------------------------------------------------ persistence

    def save(self, directory) -> None:
        check_is_fitted(self)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._save_weights(directory / self.weight_file)
        params = {k: v for k, v in self.get_params().items() if k not in self.unsaved_params}
        write_manifest(directory / MODEL_MANIFEST, "veil-model/1", {
            "kind": self.kind, "params": params, "class_names": self.class_names_,
            "fingerprint": self.fingerprint_, "input_shape": list(self.input_shape_), "extra": self._extra()},
            [self.weight_file])

    def _extra(self) -> dict:
        """Manifest entries beyond the common ones: the labels, when they are not the indices of the class names."""
        if self.classes_.dtype.kind in "iu" and np.array_equal(self.classes_, np.arange(len(self.classes_))):
            return {}
        return {"classes": self.classes_.tolist()}

    def _restore(self, manifest: dict) -> None:
        """The learned state the manifest holds (the weights come next)."""
        self.class_names_ = list(manifest["class_names"])
        extra = manifest.get("extra", {})
        self.classes_ = np.asarray(extra["classes"]) if "classes" in extra else np.arange(len(self.class_names_))
        self.fingerprint_ = manifest["fingerprint"]
        self.input_shape_ = tuple(manifest["input_shape"])
        self.n_features_in_ = self.input_shape_[0]

    @abstractmethod
    def _save_weights(self, path: Path) -> None:
        """Implemented by each estimator."""

    @abstractmethod
    def _load_weights(self, path: Path, extra: dict) -> None:
        """Implemented by each estimator."""


def encode_labels(y: np.ndarray, class_names=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(classes_, class index of each sample, class names); at least two classes must be present."""
    if class_names:
        if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= len(class_names):
            raise VeilValueError(f"labels must be integers in 0..{len(class_names) - 1} (indices of the "
                                 f"{len(class_names)} class names)")
        classes, codes, names = np.arange(len(class_names)), y.astype(np.int64), [str(n) for n in class_names]
    else:
        classes, codes = np.unique(y, return_inverse=True)
        names = [str(c) for c in classes]
    present = np.unique(codes)
    if len(present) < 2:
        raise VeilValueError(f"training data hold a single class ({names[present[0]]}); a classifier needs more than "
                             "one class")
    return classes, codes.astype(np.int64), names


def preset_params(kind: str, preset: str) -> dict:
    """The parameters of a classifier kind's named recipe, e.g. `preset_params("nn", "paper")`."""
    presets = classifier_class(kind).presets
    if preset not in presets:
        raise VeilValueError(f"{kind} has no preset {preset!r} (presets: {', '.join(presets) or 'none'})")
    return dict(presets[preset])


def load_classifier(directory) -> MaskedClassifier:
    directory = Path(directory)
    manifest = _read_model_manifest(directory)
    cls = classifier_class(manifest["kind"])
    try:
        model = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in manifest["params"].items()})
    except (TypeError, ValueError) as exc:
        raise VeilError(f"invalid model parameters ({exc})", directory / MODEL_MANIFEST) from None
    model._restore(manifest)
    model._load_weights(directory / cls.weight_file, manifest.get("extra", {}))
    return model


def _read_model_manifest(directory: Path) -> dict:
    """model.json, read once and verified, with each field of the type that loading relies on."""
    kinds = {"kind": str, "params": dict, "class_names": list, "fingerprint": str, "input_shape": list}
    manifest = open_manifest(directory, MODEL_MANIFEST, kinds, "model", "train")
    path = directory / MODEL_MANIFEST
    if not all(isinstance(name, str) for name in manifest["class_names"]):
        raise VeilError("model manifest 'class_names' must be strings", path)
    if not manifest["input_shape"] or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                              for d in manifest["input_shape"]):
        raise VeilError("model manifest 'input_shape' must be positive integers", path)
    extra = manifest.get("extra", {})
    if not isinstance(extra, dict):
        raise VeilError("model manifest 'extra' is not a JSON object", path)
    if "classes" in extra and not (isinstance(extra["classes"], list)
                                   and len(extra["classes"]) == len(manifest["class_names"])):
        raise VeilError("model manifest 'extra.classes' must list one label per class name", path)
    verify_files(directory, manifest)
    return manifest
