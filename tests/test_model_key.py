"""The model-key attack: with the plain model it came from, a transformed model gives its key away exactly; without
it, the attacker's own public model recovers less; the figures go to a results JSON."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from veil.attacks.model_key import ModelKeyAttack, decrypt, key_shares, model_key_files
from veil.classifiers.transform import block_cipher, transform_classifier
from veil.data import ImageSet
from veil.errors import VeilError
from veil.registry import SCHEMES
from test_transform_model import SECRET, plain_model, uniform_etc


@pytest.mark.parametrize("kind,scheme", [("vit", "uniform-etc"), ("vit", "le"), ("convmixer", "le")])
def test_with_the_base_model_the_key_is_recovered_exactly(kind, scheme):
    base, pixels = plain_model(kind, 32, 8)
    cipher = uniform_etc(8, 32) if scheme == "uniform-etc" else SCHEMES.get("le")(SECRET, block=8)
    transformed = transform_classifier(copy.deepcopy(base), cipher)
    recovered = ModelKeyAttack.recover(transformed, base, "base")
    assert key_shares(recovered, block_cipher(cipher, (3, 32, 32), 8))["key_share"] == 1.0
    assert np.array_equal(decrypt(recovered, cipher.transform(pixels)), pixels)
    stranger, _ = plain_model(kind, 32, 8, seed=1)  # trained on other images from another seed: not the base
    wrong = ModelKeyAttack.recover(transformed, stranger, "base")
    assert key_shares(wrong, block_cipher(cipher, (3, 32, 32), 8))["key_share"] < 0.5


def test_the_attack_writes_its_figures_and_refuses_the_wrong_key(tmp_path):
    base, pixels = plain_model("vit", 32, 4)
    base.save(tmp_path / "base")
    from veil.classifiers.transform import transform_model

    transform_model(tmp_path / "base", tmp_path / "keyed", "le", SECRET)
    victim = ImageSet(pixels, source="victim")
    figures = model_key_files(tmp_path / "keyed", tmp_path / "base", "base", victim, SECRET, tmp_path / "mk.json")
    assert figures["key_share"] == 1.0 and figures["ssim_median"] == pytest.approx(1.0)
    assert figures["masked_ssim_median"] < 0.5 and figures["seconds"] < 5
    doc = json.loads((tmp_path / "mk.json").read_text())
    assert set(doc) >= {"figures", "meta", "config"} and doc["config"]["threat"] == "base"
    assert SECRET.decode() not in (tmp_path / "mk.json").read_text()
    public = model_key_files(tmp_path / "keyed", tmp_path / "base", "public", victim, SECRET, tmp_path / "p.json")
    assert 0 <= public["key_share"] <= 1
    with pytest.raises(VeilError, match="not the one this model was transformed with"):
        model_key_files(tmp_path / "keyed", tmp_path / "base", "base", victim, SECRET[::-1], tmp_path / "w.json")


def test_cli_model_key_attack_and_the_data_attacks_still_require_their_options(tmp_path, capsys):
    from veil.classifiers.transform import transform_model
    from veil.cli import main

    base, pixels = plain_model("convmixer", 32, 4)
    base.save(tmp_path / "base")
    transform_model(tmp_path / "base", tmp_path / "keyed", "scramble", SECRET)
    key = tmp_path / "key"
    key.write_bytes(SECRET)
    key.chmod(0o600)
    np.savez(tmp_path / "victim.npz", images=pixels.transpose(0, 2, 3, 1), labels=np.arange(8) % 2)
    assert main(["attack", "--method", "model-key", "--threat", "base", "--model", str(tmp_path / "keyed"),
                 "--base", str(tmp_path / "base"), "--victim", str(tmp_path / "victim.npz"), "--key-file", str(key),
                 "--json", str(tmp_path / "mk.json")]) == 0
    assert json.loads((tmp_path / "mk.json").read_text())["figures"]["key_share"] == 1.0
    assert main(["attack", "--method", "jigsaw", "--threat", "a", "--victim", str(tmp_path / "victim.npz")]) == 2
    assert "required: --masked, --public, --out" in capsys.readouterr().err
