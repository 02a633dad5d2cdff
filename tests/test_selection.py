"""No selection on reported test data: every protocol fits (and early-stops, and chooses hyperparameters) on data
that holds no test sample. Each classifier's fit and predict are recorded; a sample that reaches both is a leak."""
from __future__ import annotations

import numpy as np
import pytest

from veil.classifiers import classifier_class
from veil.classifiers.base import MaskedClassifier
from veil.data import ImageSet, stratified_split
from veil.experiments.lis2021 import protocol as paper
from veil.experiments.lis2021.values import TEST_SHARE
from veil.experiments.manolakos.tradeoff import BUDGETS, Experiment


@pytest.fixture
def seen(monkeypatch):
    """{"fit": rows a classifier learned or early-stopped on, "scored": rows it predicted}, as bytes per sample."""
    record = {"fit": set(), "scored": set()}
    fit, predict = MaskedClassifier.fit, MaskedClassifier.predict

    def recording_fit(self, X, y, *args, **kwargs):
        record["fit"] |= _rows(X)
        if kwargs.get("validation") is not None:
            record["fit"] |= _rows(kwargs["validation"][0])
        return fit(self, X, y, *args, **kwargs)

    def recording_predict(self, X):
        record["scored"] |= _rows(X)
        return predict(self, X)

    monkeypatch.setattr(MaskedClassifier, "fit", recording_fit)
    monkeypatch.setattr(MaskedClassifier, "predict", recording_predict)
    return record


def _rows(X) -> set[bytes]:
    X = np.asarray(X, np.float32)
    return {row.tobytes() for row in X.reshape(len(X), -1)}


def _vectors(n: int = 240, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Distinct random vectors, so that equal rows mean the same sample."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 404)).astype(np.float32), np.arange(n) % classes


def test_the_recorder_sees_a_leak(seen):
    """The check itself: a model fitted on every sample and scored on some of them is caught."""
    X, y = _vectors()
    classifier_class("rf")(n_estimators=2).fit(X, y).predict(X[:10])
    assert seen["fit"] & seen["scored"]


def test_table_protocols_score_only_unseen_samples(seen):
    X, y = _vectors()
    paper.score_methods(X, y, seed=0, params=paper.method_params(1, (8, 4)))
    test = _rows(X[stratified_split(y, TEST_SHARE, 0)[1]])
    assert seen["scored"] == test
    assert not seen["fit"] & test


def test_width_choice_never_sees_table2_test_part(seen):
    X, y = _vectors()
    choice = paper.choose_width(X, y, seed=0, nn_epochs=1, widths=((8, 4), (16, 8)))
    test = _rows(X[stratified_split(y, TEST_SHARE, 0)[1]])
    assert seen["scored"] and seen["fit"]
    assert not (seen["fit"] | seen["scored"]) & test
    assert choice["picked"] in ([8, 4], [16, 8]) and choice["n_fit"] + choice["n_val"] == len(y) - len(test)


def test_tradeoff_runs_score_only_unseen_images(seen, tmp_path):
    rng = np.random.default_rng(1)
    images = ImageSet(rng.random((300, 3, 32, 32), dtype=np.float32), np.arange(300) % 3, ["a", "b", "c"], "random")
    train_idx, test_idx = stratified_split(images.labels, 0.2, 0)
    train, test = images.subset(train_idx), images.subset(test_idx)
    experiment = Experiment(train, test, BUDGETS["quick"], 0, tmp_path, 1, tmp_path / "work")
    experiment.scramble()
    assert seen["scored"] and seen["fit"]
    assert not seen["fit"] & seen["scored"]
