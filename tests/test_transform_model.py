"""veil transform-model: a ViT or ConvMixer trained on plain images, transformed with the key, gives on the encrypted
images the logits the plain model gives on the plain ones (within 1e-4), at 32x32 and at 224x224; every combination
that cannot be made exact is refused; a wrong permutation breaks the equality."""
from __future__ import annotations

import dataclasses
import stat

import numpy as np
import pytest
import torch

from veil.classifiers import classifier_class, load_classifier
from veil.classifiers.transform import block_cipher, transform_classifier, transform_model, transform_network
from veil.errors import VeilError
from veil.registry import SCHEMES

SECRET = b"transform-model-test-secret-0123456789"
TOLERANCE = 1e-4


def tiny(kind: str, patch: int) -> dict:
    return {"vit": {"patch": patch, "dim": 16, "depth": 1, "heads": 2},
            "convmixer": {"patch": patch, "dim": 16, "depth": 1, "kernel": 3}}[kind]


def plain_model(kind: str, side: int, patch: int, seed: int = 0):
    """A model of `kind` trained one epoch (a step or two) on a few random uint8 images of side x side."""
    rng = np.random.default_rng([side, seed])
    pixels = rng.integers(0, 256, (8, 3, side, side), dtype=np.uint8)
    labels = np.arange(8) % 2
    model = classifier_class(kind)(epochs=1, batch_size=8, seed=seed, **tiny(kind, patch))
    with pytest.warns(UserWarning, match="too few"):
        model.fit(pixels, labels)
    return model, pixels


def logits(model, pixels: np.ndarray) -> np.ndarray:
    return model._logits(torch.from_numpy(model._prepare(pixels))).numpy()


def uniform_etc(block: int, side: int):
    """EtC with a random block order but the same rotation, inversion and colour order for every block: Kiya et
    al.'s block scrambling plus shared in-block operations, written as an explicit key table."""
    blocks = (side // block) ** 2
    order = np.random.default_rng(1).permutation(blocks)
    table = {"K1": order[None], "K2": np.full(blocks, 5), "K3": np.ones(blocks, int), "K4": np.full(blocks, 3)}
    return SCHEMES.get("etc")(table=table, block=block, size=side)


def schemes(side: int, block: int) -> dict:
    """The keys whose encryption can be absorbed exactly: LE and scrambling (one shuffle and inversion for every
    block) and the uniform EtC above (with block scrambling)."""
    return {"le": SCHEMES.get("le")(SECRET, block=block), "scramble": SCHEMES.get("scramble")(SECRET, block=block),
            "uniform-etc": uniform_etc(block, side)}


CASES = [("vit", 32, 4, "le"), ("vit", 32, 4, "scramble"), ("vit", 32, 8, "uniform-etc"),
         ("convmixer", 32, 4, "le"), ("convmixer", 32, 8, "scramble"),
         ("vit", 224, 16, "le"), ("vit", 224, 16, "scramble"), ("vit", 224, 16, "uniform-etc"),
         ("convmixer", 224, 16, "le"), ("convmixer", 224, 16, "scramble")]


@pytest.mark.parametrize("kind,side,block,scheme", CASES)
def test_transformed_model_on_encrypted_images_gives_the_plain_logits(kind, side, block, scheme):
    model, pixels = plain_model(kind, side, block)
    cipher = schemes(side, block)[scheme]
    plain = logits(model, pixels)
    encrypted = cipher.transform(pixels)
    assert not np.array_equal(encrypted, pixels)
    transform_classifier(model, cipher)
    assert np.abs(logits(model, encrypted) - plain).max() < TOLERANCE
    assert model.fingerprint_ == cipher.fingerprint


@pytest.mark.parametrize("break_it", ["shuffle", "order", "inverted"])
def test_a_wrong_permutation_breaks_the_equality(break_it):
    """The check above can fail: the same transformation with two values (or two blocks) swapped, or one inversion
    flipped, gives other logits."""
    model, pixels = plain_model("vit", 32, 8)
    cipher = uniform_etc(8, 32)
    plain = logits(model, pixels)
    right = block_cipher(cipher, (3, 32, 32), 8)
    part = getattr(right, break_it).copy()
    part[[0, 1]] = part[[1, 0]] if break_it != "inverted" else ~part[[0, 1]]
    transform_network(model.module_, dataclasses.replace(right, **{break_it: part}))
    assert np.abs(logits(model, cipher.transform(pixels)) - plain).max() > 100 * TOLERANCE


@pytest.mark.parametrize("method,block,kind", [("etc", 8, "vit"), ("ele", 8, "vit"), ("pe", 1, "convmixer")])
def test_keys_that_treat_blocks_differently_are_refused(method, block, kind):
    """EtC's per-block turns, inversions and colour orders, ELE's per-block shuffles, PE's per-pixel ones."""
    model, _ = plain_model(kind, 32, block)
    with pytest.raises(VeilError, match="each block differently"):
        transform_classifier(model, SCHEMES.get(method)(SECRET, block=block))


def test_convmixer_with_block_scrambling_and_a_patch_other_than_the_block_are_refused():
    model, _ = plain_model("convmixer", 32, 8)
    with pytest.raises(VeilError, match="depthwise convolutions see neighbouring patches"):
        transform_classifier(model, uniform_etc(8, 32))
    with pytest.raises(VeilError, match=r"patch size \(8\) is not the key's block size \(4\)"):
        transform_classifier(model, SCHEMES.get("le")(SECRET, block=4))


def test_other_models_and_models_of_masked_data_are_refused():
    cnn = classifier_class("cnn")(epochs=1, widths=(4, 8)).fit(np.zeros((4, 3, 32, 32), np.uint8), [0, 1, 0, 1])
    with pytest.raises(VeilError, match="only a ViT or a ConvMixer"):
        transform_classifier(cnn, SCHEMES.get("le")(SECRET, block=4))
    model, _ = plain_model("vit", 32, 4)
    model.fingerprint_ = "le:b4:abc"
    with pytest.raises(VeilError, match="trained on masked data"):
        transform_classifier(model, SCHEMES.get("le")(SECRET, block=4))


def test_the_transformed_model_folder_is_private_evaluates_and_names_no_key(tmp_path):
    model, pixels = plain_model("vit", 32, 4)
    model.save(tmp_path / "plain")
    cipher = SCHEMES.get("le")(SECRET, block=4)
    transform_model(tmp_path / "plain", tmp_path / "keyed", "le", SECRET)  # block: the model's patch, 4
    folder = tmp_path / "keyed"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in folder.iterdir())
    manifest = (folder / "model.json").read_text()
    assert "secret-bearing" in manifest and SECRET.decode() not in manifest
    loaded = load_classifier(folder)
    encrypted = cipher.transform(pixels)
    loaded.check_input(encrypted, fingerprint=cipher.fingerprint)
    assert np.allclose(loaded.predict_proba(encrypted), model.predict_proba(pixels), atol=1e-5)
    assert loaded.key_transform_["method"] == "le" and SECRET.decode() not in repr(loaded)
    with pytest.raises(VeilError, match="already exists"):
        transform_model(tmp_path / "plain", folder, "le", SECRET)


def test_cli_transforms_a_model_that_evaluate_then_scores_on_encrypted_images(tmp_path, capsys):
    """`veil transform-model`, then `veil mask` and `veil evaluate`: the transformed model's figures on the
    encrypted set are the plain model's on the plain images."""
    from veil.cli import main

    model, pixels = plain_model("vit", 32, 4)
    model.save(tmp_path / "plain")
    key = tmp_path / "key"
    key.write_bytes(SECRET)
    key.chmod(0o600)
    labels = np.arange(len(pixels)) % 2
    np.savez(tmp_path / "images.npz", images=pixels.transpose(0, 2, 3, 1), labels=labels)
    assert main(["transform-model", "--model", str(tmp_path / "plain"), "--method", "le", "--key-file", str(key),
                 "--out", str(tmp_path / "keyed")]) == 0
    assert "secret-bearing" in capsys.readouterr().out
    assert main(["mask", "--method", "le", "--block", "4", "--key-file", str(key), "--data",
                 str(tmp_path / "images.npz"), "--out", str(tmp_path / "masked.npz")]) == 0
    assert main(["evaluate", "--model", str(tmp_path / "keyed"), "--masked", str(tmp_path / "masked.npz")]) == 0
    accuracy = float(capsys.readouterr().out.split("accuracy")[1].split()[0])
    assert accuracy == pytest.approx(np.mean(model.predict(pixels) == labels))
    assert main(["transform-model", "--model", str(tmp_path / "plain"), "--method", "etc", "--key-file", str(key),
                 "--out", str(tmp_path / "etc")]) == 2
    assert "each block differently" in capsys.readouterr().err and not (tmp_path / "etc").exists()
