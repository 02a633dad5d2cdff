"""No selection on reported test data: every protocol fits (and early-stops, and chooses hyperparameters) on data
that holds no test sample. Each classifier's fit and predict are recorded; a sample that reaches both is a leak."""
from __future__ import annotations

import json

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


class Pixels:
    """A stand-in for masker instance 0: the pixels as vectors (what is checked here is which digits reach which
    model, not the masking)."""

    method = fingerprint = "pixels"
    exact_uint8 = False

    def transform(self, images):
        return images.reshape(len(images), -1)

    def masked_meta(self, data):
        return {}

    def get_params(self):
        return {}


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory):
    """An MNIST folder of 100 training and 100 test digits, random pixels so that no two digits are alike."""
    from conftest import write_idx

    root = tmp_path_factory.mktemp("tiny-mnist")
    rng = np.random.default_rng(3)
    for prefix in ("train", "t10k"):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (100, 28, 28)))
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", np.arange(100) % 10)
    return root


@pytest.mark.parametrize("split", sorted(paper.MNIST_SPLITS))
def test_table2_and_its_width_choice_never_fit_on_test_digits(seen, tiny_mnist, tmp_path, monkeypatch, split):
    """The official split trains on the training digits and scores on the test digits; the quick budget's 8:2 split
    of the test digits scores on its 2. Either way the width is chosen on the training digits alone, and each Table 2
    model is scored on every test digit and fitted on none."""
    from dataclasses import replace

    setup = replace(paper.SETUPS["full" if split == "official" else "quick"], nn_epochs=1, mnist_images=None)
    assert setup.mnist_split == split
    ctx = paper.PaperContext(tmp_path, setup, 0, None, str(tiny_mnist), None, tmp_path / "work")
    monkeypatch.setattr(ctx, "masker", lambda index: Pixels())
    train, test = (_rows(part.data) for part in ctx.masked_mnist())
    assert train and test and not train & test
    choice = ctx.width_choice()
    assert seen["fit"] and seen["scored"] and (seen["fit"] | seen["scored"]) <= train
    assert choice["n_fit"] + choice["n_val"] == len(train)
    seen["fit"].clear(), seen["scored"].clear()
    paper.run_table2(ctx)
    assert seen["scored"] == test and seen["fit"] <= train
    config = json.loads((tmp_path / "table2.json").read_text())["config"]
    assert (config["split"], config["n_train"], config["n_test"]) == (split, len(train), len(test))
    assert (len(train), len(test)) == ((100, 100) if split == "official" else (80, 20))


def test_tradeoff_runs_score_only_unseen_images(seen, tmp_path):
    rng = np.random.default_rng(1)
    images = ImageSet(rng.random((300, 3, 32, 32), dtype=np.float32), np.arange(300) % 3, ["a", "b", "c"], "random")
    train_idx, test_idx = stratified_split(images.labels, 0.2, 0)
    train, test = images.subset(train_idx), images.subset(test_idx)
    experiment = Experiment(train, test, BUDGETS["quick"], 0, tmp_path, 1, tmp_path / "work")
    experiment.scramble()
    assert seen["scored"] and seen["fit"]
    assert not seen["fit"] & seen["scored"]


def test_the_width_choice_is_made_once_for_parts_run_by_separate_calls(tiny_mnist, tmp_path, monkeypatch):
    """A second run on the same work folder (a later `--parts`) reads the choice the first one made; another seed
    chooses again. Without the kept choice, each part of a reproduction spread over sessions would pay for it again."""
    from dataclasses import replace

    setup = replace(paper.SETUPS["quick"], nn_epochs=1, mnist_images=None)
    calls = []
    real = paper.choose_width
    monkeypatch.setattr(paper, "choose_width", lambda *args: calls.append(args[2]) or real(*args))

    def choice(seed: int) -> dict:
        ctx = paper.PaperContext(tmp_path / f"out{len(calls)}", setup, seed, None, str(tiny_mnist), None,
                                 tmp_path / "work")
        monkeypatch.setattr(ctx, "masker", lambda index: Pixels())
        return ctx.width_choice()

    first = choice(0)
    assert choice(0) == first and calls == [0]
    choice(1)
    assert calls == [0, 1]
