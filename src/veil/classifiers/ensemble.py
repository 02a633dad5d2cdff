"""Random Forest and AdaBoost over masked vectors (scikit-learn, 100 estimators, defaults otherwise), saved with
skops: a format that rebuilds only allow-listed scikit-learn types and never runs pickle."""
from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
from sklearn.ensemble import AdaBoostClassifier, RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

from veil.classifiers.base import MaskedClassifier, register_classifier
from veil.errors import VeilError, VeilValueError
from veil.io.write import atomic_path
from veil.threads import chosen_threads

#: the only type outside skops' own allow-list that these models contain
TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]


class SklearnClassifier(MaskedClassifier):
    """A scikit-learn ensemble over masked vectors (flattened), wrapped for veil's manifest and safe persistence."""

    weight_file = "model.skops"

    def __init__(self, n_estimators: int = 100, seed: int = 0, n_jobs: int | None = None, max_depth: int | None = None):
        self.n_estimators = n_estimators
        self.seed = seed
        self.n_jobs = n_jobs
        self.max_depth = max_depth

    def _check_params(self) -> None:
        if self.n_estimators < 1:
            raise VeilValueError(f"n_estimators must be at least 1, got {self.n_estimators}")
        if self.max_depth is not None and self.max_depth < 1:
            raise VeilValueError(f"max_depth must be at least 1, got {self.max_depth}")

    @abstractmethod
    def _make(self):
        """The scikit-learn estimator this class wraps."""

    def _fit(self, X, codes):
        self.estimator_ = self._make().fit(X.reshape(len(X), -1), codes)

    def _predict_proba(self, X) -> np.ndarray:
        proba = self.estimator_.predict_proba(X.reshape(len(X), -1))
        full = np.zeros((len(X), len(self.classes_)), dtype=np.float64)
        full[:, self.estimator_.classes_] = proba
        return full

    def _save_weights(self, path: Path) -> None:
        import skops.io as sio  # here, not at the top: skops alone takes about 2 s to import

        with atomic_path(path) as tmp:
            sio.dump(self.estimator_, str(tmp))

    def _load_weights(self, path: Path, extra: dict) -> None:
        import skops.io as sio

        try:
            untrusted = sio.get_untrusted_types(file=str(path))
            unexpected = sorted(set(untrusted) - set(TRUSTED_TYPES))
            if unexpected:
                raise VeilError(f"refused: the model file contains untrusted types {', '.join(unexpected)}", path)
            self.estimator_ = sio.load(str(path), trusted=untrusted)
        except VeilError:
            raise
        except Exception as exc:  # a damaged zip or a foreign file
            raise VeilError(f"not a valid skops model ({type(exc).__name__}: {exc})", path) from None


@register_classifier("rf")
class RandomForest(SklearnClassifier):
    """The paper's Random Forest is scikit-learn's defaults with 100 trees; those defaults were the same in 2021
    (0.24: 100 trees, sqrt features, unlimited depth), so they are ours. Its MNIST table (accuracy 0.672 with macro
    precision 0.920: a few classes absorb the errors) looks like a much weaker forest: the presets `depth4` and
    `depth8` are shallow forests to test that reading (Table 2 of `veil reproduce` scores both)."""

    presets: ClassVar[dict[str, dict]] = {"depth4": {"max_depth": 4}, "depth8": {"max_depth": 8}}

    def _make(self):
        """Trees in parallel on every idle core unless `n_jobs` says otherwise (see `veil.threads`)."""
        return RandomForestClassifier(n_estimators=self.n_estimators, max_depth=self.max_depth, random_state=self.seed,
                                      n_jobs=chosen_threads() if self.n_jobs is None else self.n_jobs)


@register_classifier("adaboost")
class AdaBoost(SklearnClassifier):
    """SAMME AdaBoost; the base learner is a decision stump (scikit-learn's default, the paper's setting) unless
    `max_depth` asks for deeper trees. Runs on one core: each round needs the weights of the last, and scikit-learn's
    tree search has no parallel option."""

    def _make(self):
        return AdaBoostClassifier(DecisionTreeClassifier(max_depth=self.max_depth or 1), n_estimators=self.n_estimators,
                                  random_state=self.seed)
