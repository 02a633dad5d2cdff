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


@pytest.mark.parametrize("name", sorted(TINY))
def test_models_train_at_another_size_on_uint8_and_refuse_other_sizes(name, tmp_path):
    """48x40 uint8 images, channels last: each model trains on them as they are and refuses 32x32 images, naming
    both shapes; the float form of the same pixels predicts the same."""
    X, y = two_class_images(32)
    pixels = (np.kron(X, np.ones((1, 1, 2, 2), np.float32))[:, :, :48, :40] * 255).astype(np.uint8)
    pixels = np.ascontiguousarray(pixels.transpose(0, 2, 3, 1))
    model = classifier_class(name)(epochs=1, batch_size=16, **TINY[name]).fit(pixels, y)
    model.save(tmp_path / "model")
    loaded = load_classifier(tmp_path / "model")
    assert np.allclose(loaded.predict_proba(pixels), model.predict_proba(pixels / np.float32(255)), atol=1e-5)
    with pytest.raises(VeilError, match=r"trained on images of shape \(48, 40, 3\); these have shape \(32, 32, 3\)"):
        loaded.predict(pixels[:, :32, :32])


def test_a_patch_that_does_not_divide_the_size_is_refused():
    X, y = two_class_images(16)
    with pytest.raises(VeilError, match="patch 16 does not divide the image size 24x24"):
        classifier_class("vit")(epochs=1, patch=16, dim=8, depth=1, heads=2).fit(X[:, :, :24, :24], y)
