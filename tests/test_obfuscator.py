"""The privacy-trained obfuscator on scikit-learn's digits (owner, public and victim thirds): with λ = 0 a fresh
decoder trained through the encoder on public images (ITN, threat b) reconstructs the victims well; with a large λ
it does measurably worse; the task survives both. Then the masker's estimator contract: labels required, save and
load, the secret encoder file."""
from __future__ import annotations

import json
import os
import stat
from dataclasses import replace

import numpy as np
import pytest

from veil.attacks import Budget, run_attack
from veil.data import load, stratified_split
from veil.errors import VeilError
from veil.maskers.obfuscator import ENCODER_FILE, ObfuscatorMasker
from veil.workflows import mask_images

#: a fresh ITN-b decoder on λ = 0 vectors must reach this median SSIM (the issue's "reconstructs well")
WELL = 0.7
#: a large λ must take at least this much median SSIM away from the λ = 0 figure (measured: 0.73 -> 0.61)
MARGIN = 0.05
#: the third party's logistic regression on the vectors must classify at least this share of the victims
#: (measured: 0.98 at λ = 0, 0.97 at λ = 10)
TASK_FLOOR = 0.9
LARGE = 10.0


@pytest.fixture(scope="module")
def thirds():
    digits = load("digits")
    owner_idx, rest_idx = stratified_split(digits.labels, 0.5, 0)
    rest = digits.subset(rest_idx)
    public_idx, victim_idx = stratified_split(rest.labels, 0.5, 0)
    return digits.subset(owner_idx), rest.subset(public_idx), rest.subset(victim_idx)


@pytest.fixture(scope="module")
def maskers(thirds):
    owner = thirds[0]
    # one seed for both (the one their margins were stated at), so that λ is all that differs
    return {weight: ObfuscatorMasker(privacy_weight=weight, latent_dim=64, adversaries=1, epochs=4, batch_size=64,
                                     seed=0).fit(owner, progress=False) for weight in (0.0, LARGE)}


def itn_b(masker, thirds) -> dict:
    _, public, victim = thirds
    budget = replace(Budget.quick(), aae_images=len(public), aae_epochs=4)
    return run_attack("itn", "b", mask_images(masker, victim), victim, public, oracle=masker, budget=budget).figures


def task_accuracy(masker, thirds) -> float:
    from sklearn.linear_model import LogisticRegression

    owner, _, victim = thirds
    model = LogisticRegression(max_iter=2000).fit(masker.transform(owner), owner.labels)
    return model.score(masker.transform(victim), victim.labels)


@pytest.mark.slow
def test_without_privacy_weight_a_fresh_decoder_reconstructs_well(maskers, thirds):
    assert itn_b(maskers[0.0], thirds)["ssim_median"] > WELL


@pytest.mark.slow
def test_a_large_privacy_weight_takes_reconstruction_away(maskers, thirds):
    plain, private = itn_b(maskers[0.0], thirds), itn_b(maskers[LARGE], thirds)
    assert private["ssim_median"] < plain["ssim_median"] - MARGIN
    assert private["linkage"] < plain["linkage"]


@pytest.mark.slow
def test_the_task_survives_the_privacy_weight(maskers, thirds):
    assert min(task_accuracy(masker, thirds) for masker in maskers.values()) >= TASK_FLOOR


def test_training_needs_labels_and_valid_parameters():
    images = np.random.default_rng(0).random((30, 3, 32, 32), dtype=np.float32)
    with pytest.raises(VeilError, match="labels"):
        ObfuscatorMasker(epochs=1).fit(images)
    with pytest.raises(VeilError, match="privacy_weight"):
        ObfuscatorMasker(privacy_weight=-1).fit(images, np.zeros(30, int))


def test_saved_encoder_is_secret_and_loads_to_the_same_vectors(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.random((40, 3, 32, 32), dtype=np.float32), np.arange(40) % 2
    masker = ObfuscatorMasker(latent_dim=8, epochs=1, batch_size=16, adversaries=1).fit(images, labels,
                                                                                        progress=False)
    masker.save(tmp_path / "obf")
    assert stat.S_IMODE(os.stat(tmp_path / "obf" / ENCODER_FILE).st_mode) == 0o600
    loaded = ObfuscatorMasker.load(tmp_path / "obf")
    assert loaded.fingerprint == masker.fingerprint
    np.testing.assert_allclose(loaded.transform(images), masker.transform(images), atol=1e-5)
    noisy = ObfuscatorMasker(**{**masker.get_params(), "noise": 0.5})
    noisy.encoder_, noisy.device_ = masker.encoder_, masker.device_
    assert not np.allclose(noisy.transform(images[:4]), noisy.transform(images[:4]))  # fresh noise every masking


def test_train_masker_trains_it_with_labels_and_mask_uses_it(tmp_path, capsys):
    from veil.cli import main

    out = tmp_path / "obf"
    assert main(["train-masker", "--method", "obfuscator", "--data", "digits", "--limit", "60", "--epochs", "1",
                 "--quiet", "--params", '{"latent_dim": 8, "adversaries": 1}', "--out", str(out)]) == 0
    report = json.loads((out / "training.json").read_text())
    assert "task_accuracy" in report["figures"] and report["config"]["masker"]["latent_dim"] == 8
    assert json.loads((out / "manifest.json").read_text())["secret_files"] == [ENCODER_FILE]
    capsys.readouterr()
    assert main(["mask", "--method", "obfuscator", "--masker", str(out), "--data", "digits", "--limit", "20",
                 "--out", str(tmp_path / "masked.npz")]) == 0
    assert main(["train-masker", "--method", "etc", "--data", "digits", "--out", str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err
    assert "etc is not a trained masker" in err and len(err.strip().splitlines()) == 1
