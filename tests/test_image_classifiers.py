"""Image classifiers (CNN, ConvMixer, ViT, descrambler-CNN) on tiny synthetic images: fit, save/load, refusals."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from veil.classifiers import classifier_class, load_classifier
from veil.errors import VeilError
from veil.models import build_model
from veil.models.descrambler import BlockFullyConnected

TINY = {"cnn": {"widths": (4, 8)}, "convmixer": {"dim": 8, "depth": 1, "kernel": 3, "patch": 4},
        "vit": {"patch": 8, "dim": 8, "depth": 1, "heads": 2}, "descrambler-cnn": {"block": 8, "widths": (4, 8)}}


def two_class_images(n: int = 64):
    rng = np.random.default_rng(0)
    X = rng.random((n, 3, 32, 32), dtype=np.float32) * 0.5
    y = np.arange(n) % 2
    X[y == 1, :, :16] += 0.5
    return X, y


@pytest.mark.parametrize("name", sorted(TINY))
def test_fit_save_load_predicts_the_same(name, tmp_path):
    X, y = two_class_images()
    model = classifier_class(name)(epochs=2, batch_size=16, mixup=0.2, cutmix=0.2, **TINY[name])
    model.fit(X, y, class_names=["low", "high"], fingerprint="etc:b16:abc", work_dir=tmp_path / "run")
    assert len(model.history_) == 2 and "val_accuracy" in model.history_[-1]
    model.save(tmp_path / "model")
    loaded = load_classifier(tmp_path / "model")
    assert loaded.get_params() == model.get_params()
    assert np.allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-6)
    with pytest.raises(VeilError, match="another masker"):
        loaded.check_input(X, fingerprint="etc:b16:other")


def test_image_models_refuse_vectors_and_unknown_parameters():
    with pytest.raises(VeilError, match="classifies images"):
        classifier_class("cnn")(epochs=1).fit(np.zeros((8, 404), np.float32), np.arange(8) % 2)
    with pytest.raises(TypeError, match="unknown convmixer parameter"):
        classifier_class("convmixer")(depht=3)


def test_block_fully_connected_starts_as_identity_and_is_per_block():
    layer = BlockFullyConnected(8)
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(layer(x), x)
    with torch.no_grad():
        layer.weight[0] = 0  # silence the first (top-left) block only
    out = layer(x)
    assert (out[:, :, :8, :8] == 0).all() and torch.equal(out[:, :, 8:, :], x[:, :, 8:, :])


@pytest.mark.parametrize("name,config", [("convmixer", {}), ("vit", {"patch": 4}), ("cnn", {})])
def test_default_architectures_give_logits(name, config):
    model = build_model(name, n_classes=10, **config)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_augmented_training_runs_and_negative_augmentation_is_refused(tmp_path):
    X, y = two_class_images(32)
    model = classifier_class("convmixer")(epochs=1, batch_size=16, randaugment=2, randaugment_magnitude=9,
                                          erasing=0.25, **TINY["convmixer"])
    assert len(model.fit(X, y).history_) == 1
    for bad in ({"randaugment": -1}, {"randaugment_magnitude": -1.0}, {"erasing": -0.1}, {"randaugment": 1.5}):
        with pytest.raises(VeilError):
            classifier_class("cnn")(epochs=1, **bad).fit(X, y)
