import json

import numpy as np
import pytest
import torch

from veil.classifiers import classifier_class, load_classifier
from veil.errors import VeilError


def _blobs(n=120, d=12, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    X = rng.normal(size=(n, d)).astype(np.float32) + 3 * np.eye(k, d)[y]
    return X, y


@pytest.mark.parametrize("kind,params", [("nn", {"epochs": 5, "batch_size": 8}), ("rf", {"n_estimators": 20}),
                                         ("adaboost", {"n_estimators": 20})])
def test_fit_save_load_predict(kind, params, tmp_path):
    X, y = _blobs()
    model = classifier_class(kind)(seed=0, **params).fit(X, y, class_names=["a", "b", "c"], fingerprint="aae:abc")
    assert model.score(X, y) > 0.8 and model.evaluate(X, y)["accuracy"] == model.score(X, y)
    model.save(tmp_path / kind)
    again = load_classifier(tmp_path / kind)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    assert again.class_names_ == ["a", "b", "c"] and again.fingerprint_ == "aae:abc"
    with pytest.raises(VeilError, match="another masker"):
        again.check_input(X, "aae:other")
    with pytest.raises(VeilError, match="shape"):
        again.check_input(X[:, :5])


@pytest.mark.parametrize("kind", ["nn", "rf", "adaboost"])
def test_single_class_is_refused(kind):
    X, _ = _blobs()
    with pytest.raises(VeilError, match="single class"):
        classifier_class(kind)().fit(X, np.zeros(len(X), dtype=int))


def test_nn_picks_best_epoch_and_logs_curves():
    X, y = _blobs()
    model = classifier_class("nn")(epochs=4, batch_size=8).fit(X, y)
    assert 1 <= model.best_epoch_ <= 4
    assert {"train_accuracy", "val_accuracy", "train_loss", "val_loss"} <= set(model.history_[0])


def test_nn_trains_in_bf16_and_records_it(tmp_path):
    """`--bf16`: the forward passes under bfloat16 autocast (on this CPU too); the weights stay float32, and the
    option is saved with the model's parameters."""
    X, y = _blobs()
    model = classifier_class("nn")(epochs=3, batch_size=8, bf16=True).fit(X, y)
    assert model.score(X, y) > 0.8
    model.save(tmp_path / "nn")
    assert json.loads((tmp_path / "nn" / "model.json").read_text())["params"]["bf16"] is True
    assert all(p.dtype == torch.float32 for p in load_classifier(tmp_path / "nn").module_.parameters())
