"""veil's classifiers as scikit-learn estimators: `check_estimator` on each exported classifier, the contract
checks that need no data on the image classifiers (scikit-learn's data checks feed 2-D arrays, which those refuse
by their tags), string labels, clone and cross-validation, and a quiet log when `veil train` writes to a file.

`python tests/test_estimator_classifiers.py` prints the passed/failed/expected-failure counts per class."""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.utils import estimator_checks as sk

from veil.classifiers import (AdaBoost, CNNClassifier, ConvMixerClassifier, DescramblerCNNClassifier, NNClassifier,
                              RandomForest, ViTClassifier, load_classifier)

#: small settings, so that the checks' many fits stay fast (the MLP still has to learn sklearn's blobs)
VECTOR_CLASSIFIERS = {NNClassifier: {"hidden": (16, 16), "epochs": 8, "batch_size": 16, "lr": 1e-2},
                      RandomForest: {"n_estimators": 10}, AdaBoost: {"n_estimators": 10}}
IMAGE_CLASSIFIERS = [CNNClassifier, ConvMixerClassifier, ViTClassifier, DescramblerCNNClassifier]
#: scikit-learn's checks that need no data: the API part that image classifiers can run
NO_DATA_CHECKS = [sk.check_estimator_cloneable, sk.check_estimator_repr, sk.check_no_attributes_set_in_init,
                  sk.check_parameters_default_constructible, sk.check_get_params_invariance, sk.check_set_params,
                  sk.check_do_not_raise_errors_in_init_or_set_params, sk.check_mixin_order, sk.check_valid_tag_types,
                  sk.check_estimator_tags_renamed]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks train fastest on one thread (and the checks fit dozens of them)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def check_counts(estimator) -> collections.Counter:
    """Statuses of scikit-learn's checks on `estimator` (passed, failed, xfail, skipped); failures are printed."""
    statuses = collections.Counter()

    def record(estimator, check_name, exception, status, expected_to_fail, expected_to_fail_reason):
        statuses[status] += 1
        if status == "failed":
            print(f"{type(estimator).__name__}: {check_name} failed: {exception!r}"[:500])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if type(estimator) in VECTOR_CLASSIFIERS:
            sk.check_estimator(estimator, expected_failed_checks=estimator.expected_failed_checks, on_fail=None,
                               on_skip=None, callback=record)
        else:
            for check in NO_DATA_CHECKS:
                try:
                    check(type(estimator).__name__, estimator)
                    record(estimator, check.__name__, None, "passed", False, "")
                except Exception as exc:  # noqa: BLE001 - a failed check, reported
                    record(estimator, check.__name__, exc, "failed", False, "")
    return statuses


def all_estimators():
    return [cls(**params) for cls, params in VECTOR_CLASSIFIERS.items()] + [cls() for cls in IMAGE_CLASSIFIERS]


@pytest.mark.parametrize("estimator", all_estimators(), ids=lambda e: type(e).__name__)
def test_scikit_learn_checks_pass(estimator):
    statuses = check_counts(estimator)
    assert statuses["failed"] == 0 and statuses["passed"] > 0, statuses


def _blobs(n=90, d=6):
    """Three separable classes with string labels."""
    codes = np.arange(n) % 3
    X = np.random.default_rng(0).normal(size=(n, d)).astype(np.float32) + 3 * np.eye(3, d, dtype=np.float32)[codes]
    return X, np.array(["cat", "dog", "emu"])[codes]


def test_string_labels_survive_save_and_load(tmp_path):
    X, y = _blobs()
    model = NNClassifier(hidden=(16, 16), epochs=4, batch_size=16).fit(X, y)
    assert list(model.classes_) == ["cat", "dog", "emu"] and isinstance(model.score(X, y), float)
    model.save(tmp_path / "m")
    again = load_classifier(tmp_path / "m")
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    assert json.loads((tmp_path / "m" / "model.json").read_text())["extra"]["classes"] == ["cat", "dog", "emu"]
    held = NNClassifier(hidden=(16, 16), epochs=2, batch_size=16).fit(X[:60], y[:60], validation=(X[60:], y[60:]))
    assert held.history_[-1]["val_accuracy"] > 0.5


def test_image_classifier_clones_and_cross_validates():
    rng = np.random.default_rng(0)
    X = rng.random((48, 32, 32, 3), dtype=np.float32) * 0.5  # channels last, as Pillow gives them
    y = np.array(["dark", "light"])[np.arange(48) % 2]
    X[y == "light", :16] += 0.5
    model = CNNClassifier(widths=(4, 8), epochs=2, batch_size=16)
    twin = clone(model).set_params(epochs=3)
    assert twin.epochs == 3 and model.epochs == 2 and twin.widths == (4, 8)
    scores = cross_val_score(model, X, y, cv=2, n_jobs=2)  # the workers get pickled estimators
    assert scores.shape == (2,) and all(0.0 <= s <= 1.0 for s in scores)


def test_redirected_nn_training_log_is_small(trained_masker, tmp_path):
    """One plain line per epoch when stderr is a file, no progress-bar frames (they made 1.2 MB for one run)."""
    masker_dir, _ = trained_masker
    from veil.cli import main

    assert main(["mask", "--masker", str(masker_dir), "--data", "digits", "--out", str(tmp_path / "m.npz")]) == 0
    env = {k: v for k, v in os.environ.items() if k != "VEIL_NO_PROGRESS"} | {"OMP_NUM_THREADS": "1"}
    command = "import sys; from veil.cli import main; sys.exit(main())"
    log = tmp_path / "train.log"
    with open(log, "wb") as out:
        subprocess.run([sys.executable, "-c", command, "train", "--masked", str(tmp_path / "m.npz"), "--model", "nn",
                        "--epochs", "4", "--params", '{"batch_size": 32}', "--out", str(tmp_path / "nn")],
                       stdout=out, stderr=subprocess.STDOUT, env=env, check=True, timeout=300)
    text = log.read_text()
    epochs = json.loads((tmp_path / "nn" / "training_log.json").read_text())["epochs"]
    assert log.stat().st_size < 5000, text
    assert "\r" not in text and sum(line.startswith("epoch ") for line in text.splitlines()) == len(epochs), text


if __name__ == "__main__":
    torch.set_num_threads(1)
    for estimator in all_estimators():
        counts = check_counts(estimator)
        print(f"{type(estimator).__name__:26} passed {counts['passed']:3}  failed {counts['failed']:2}  "
              f"expected failures {counts['xfail']:2}  skipped {counts['skipped']:2}")
