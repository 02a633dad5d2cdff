"""`veil reproduce at224`: the quick budget end to end on a tiny tree in Imagenette's layout, the layout itself, the
photographs source, the gpu budget's paper settings and the epoch cap."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from veil.data import load
from veil.experiments import protocol
from veil.experiments.kiya2022.at224 import (AUGMENT, BUDGETS, MIX, PAPER_EPOCHS, budget_lines, capped,
                                               held_out_split)
from veil.data.convert import Resize

WNIDS = ("n01440764", "n02102040")


@pytest.fixture(scope="module")
def imagenette_tree(tmp_path_factory):
    """train/<wnid>/*.JPEG and val/<wnid>/*.JPEG, photographs of several sizes, as Imagenette ships them."""
    root = tmp_path_factory.mktemp("imagenette")
    rng = np.random.default_rng(0)
    for split, count in (("train", 12), ("val", 6)):
        for label, wnid in enumerate(WNIDS):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(count):
                height, width = (40, 52) if i % 2 else (48, 40)
                level = 60 + 130 * label  # dark and bright classes: learnt within an epoch
                pixels = np.clip(level + rng.normal(0, 30, (height, width, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{wnid}_{i}.JPEG", quality=90)
    return root


def test_imagenette_layout_loads_unchanged(imagenette_tree):
    train = load(str(imagenette_tree), split="train", size=224, resize="crop")
    assert train.images.shape == (24, 3, 224, 224) and train.class_names == list(WNIDS)
    assert held_out_split(str(imagenette_tree)) == "val" and len(load(str(imagenette_tree), split="val", size=32)) == 12


def test_the_photographs_load_at_one_size_only_when_asked():
    photos = load("skimage-photos", size=224, resize="crop", pixels=True, require_labels=False)
    assert photos.images.shape[1:] == (3, 224, 224) and photos.images.dtype == np.uint8
    from veil.data.photos import photographs

    assert len(photos) == len(photographs()) == 10 and {"astronaut", "coffee", "china"} <= set(photographs())
    with pytest.raises(Exception, match="sizes"):
        load("skimage-photos")


def test_the_gpu_budget_holds_the_papers_settings():
    gpu = BUDGETS["gpu"]
    assert gpu.n_train is None and gpu.n_test is None  # the whole splits
    convmixer, vit = gpu.convmixer, gpu.vit
    assert convmixer.options == {"dim": 384, "depth": 8, "kernel": 9, "patch": 4, "lr": 0.01, "weight_decay": 0.01,
                                 "bf16": True}
    assert (convmixer.batch_size, convmixer.epochs) == (64, PAPER_EPOCHS) == (64, 300)
    assert convmixer.plain == AUGMENT and convmixer.etc == MIX == {"mixup": 0.8, "cutmix": 1.0}
    assert {key: vit.options[key] for key in ("patch", "dim", "depth", "heads", "mlp_ratio")} == \
        {"patch": 16, "dim": 768, "depth": 12, "heads": 12, "mlp_ratio": 4}
    assert vit.batch_size == 512 and vit.epochs == 103  # the paper's 10,000 steps of 512 over 50,000 images
    assert "pretrained" in vit.paper and "SGD lr 0.03 momentum 0.9" in vit.paper


def test_an_epoch_cap_is_named_against_the_budgets_epochs():
    short = capped(BUDGETS["gpu"], 5)
    assert (short.convmixer.epochs, short.vit.epochs) == (5, 5)
    doc = {"config": {"recipe": {"options": {}, "batch_size": 64, "plain": {}, "etc": {}}, "epochs_of": 300},
           "figures": {"epochs": 5}}
    text = "\n".join(budget_lines({"convmixer224": doc, "vit224": None}, short, [0], Resize((224, 224), "crop")))
    assert "5 of 300 epochs" in text
    with pytest.raises(Exception, match="--epochs"):
        capped(BUDGETS["gpu"], 0)


@pytest.mark.slow
def test_quick_at224_runs_end_to_end(imagenette_tree, tmp_path):
    """Every part on the tiny tree (its val/ split as the test split), at 32x32 so that it takes seconds: the
    protocol's logic is the same at 224."""
    out = tmp_path / "out"
    figures = protocol("at224")(out, quick=True, data=str(imagenette_tree), size=32, work=str(tmp_path / "work"))
    for name in ("convmixer224", "vit224"):
        doc = json.loads((out / f"{name}.json").read_text())
        plain, etc = doc["figures"]["plain_accuracy"], doc["figures"]["etc_accuracy"]
        assert doc["figures"]["ratio"] == (etc / plain if plain else None)  # one epoch of a tiny model may score 0
        assert doc["config"]["n_train"] == 24 and doc["config"]["size"] == [32, 32]
    jigsaw = json.loads((out / "jigsaw224.json").read_text())["figures"]
    for name in ("cifar", "photos"):
        assert 0 <= jigsaw[f"{name}_blocks_correct_low"] <= jigsaw[f"{name}_blocks_correct"] <= 1
        assert {f"{name}_ssim_median", f"{name}_linkage", f"{name}_linkage_chance"} <= set(jigsaw)
        assert jigsaw[f"{name}_blocks_correct"] <= jigsaw[f"{name}_blocks_correct_any_symmetry"]
    assert jigsaw["photos_blocks"] == 4 and "cifar_native" not in str(jigsaw)  # the tree read at 32 already
    report = (out / "report.md").read_text()
    assert "Does EtC hold at the size the paper used" in report and "Imagenette" in report
    claims = json.loads((out / "claims.json").read_text())["figures"]
    assert claims["claim_convmixer224_ratio_held"] in (0.0, 1.0, None) and claims["claim_robust_photos_held"] in (0.0, 1.0)
    assert figures["convmixer/epochs"] == 1


def test_a_reconstruction_off_by_a_whole_image_symmetry_is_turned_back():
    from veil.attacks.jigsaw import dihedral
    from veil.experiments.kiya2022.at224 import whole_image_symmetry

    victim = np.random.default_rng(1).integers(0, 256, (3, 3, 32, 32)).astype(np.float32) / 255
    recon = 1 - dihedral(victim, 5, axes=(2, 3))[:, [2, 0, 1]]  # flipped, channels reordered, negated
    assert not np.array_equal(recon, victim)
    np.testing.assert_allclose(whole_image_symmetry(victim, recon), victim, atol=1e-6)
