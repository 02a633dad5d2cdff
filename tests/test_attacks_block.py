"""Ciphertext-only attacks on block and pixel encryptions: feature reconstruction (FR) and the jigsaw solver."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from veil.attacks.base import Knowledge
from veil.attacks.fr import FRAttack
from veil.attacks.jigsaw import JigsawAttack, as_pieces, block_compatibility, place
from veil.data.imageset import ImageSet
from veil.errors import VeilError
from veil.masked import MaskedSet
from veil.maskers.base import masker_class
from veil.maskers import PEMasker

SECRET = b"some test secret bytes"


def smooth_images(n: int, seed: int, top: float = 1.0) -> np.ndarray:
    """Natural-ish scenes, 8-bit exact: a sky (bright, blue) over darker ground with a random horizon, a consistent
    left-to-right brightening, three blurred colour blobs and a faint wave. The sky and the brightening make the
    scenes' mean image asymmetric top-bottom and left-right, as the jigsaw attack's public prior needs.
    Values are scaled into [0, top]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    ground = 1 / (1 + np.exp(-12 * (yy - rng.uniform(0.4, 0.7, (n, 1, 1)))))[:, None]
    sky, earth = np.array([0.55, 0.7, 0.95])[:, None, None], np.array([0.35, 0.4, 0.15])[:, None, None]
    images = sky * (1 - ground) + earth * ground
    images = images + rng.uniform(0.05, 0.2, (n, 1, 1, 1)) * xx
    for _ in range(3):
        cy, cx, radius = rng.uniform(0, 1, (n, 1, 1)), rng.uniform(0, 1, (n, 1, 1)), rng.uniform(0.08, 0.25, (n, 1, 1))
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius ** 2))
        images = images + rng.uniform(-0.35, 0.35, (n, 3, 1, 1)) * blob[:, None]
    fx, fy, phase = rng.uniform(0.5, 3, (3, n, 1, 1))
    images = images + 0.05 * np.sin(2 * np.pi * (fx * xx + fy * yy) + 6 * phase)[:, None]
    return (np.rint(np.clip(images, 0, 1) * 255 * top) / 255).astype(np.float32)


def knowledge(masker, images: np.ndarray, public: np.ndarray) -> Knowledge:
    masked = MaskedSet(masker.transform(images), labels=None, class_names=[], method=masker.method,
                       fingerprint=masker.fingerprint, meta={"config": masker.config})
    return Knowledge(threat="a", masked=masked, public=ImageSet(public))


def median_ssim(images: np.ndarray, references: np.ndarray) -> float:
    return float(np.median([structural_similarity(a, b, channel_axis=0, data_range=1)
                            for a, b in zip(images, references)]))


def grey(images: np.ndarray) -> np.ndarray:
    return np.repeat(images.mean(axis=1, keepdims=True), 3, axis=1)


def blocks_correct(reconstructed: np.ndarray, images: np.ndarray, block: int) -> float:
    """Share of blocks whose every pixel is exactly the original's."""
    error = np.abs(as_pieces(reconstructed, block) - as_pieces(images, block)).reshape(len(images), -1,
                                                                                      block * block * 3)
    return float((error.max(axis=2) < 0.5 / 255).mean())


# ------------------------------------------------------------------------------------------------------ FR


def test_fr_on_pe_recovers_structure_of_dark_scenes():
    """Measured against the original's grey (channel-mean) image, on scenes whose values lie below 128: there the
    fold is lossless, so what FR gives is the grey image, stretched. (On brighter content the fold inverts the upper
    half of the range and the SSIM against the plain grey image drops: see the exactness test below.)"""
    images = smooth_images(12, seed=3, top=127 / 255)
    attack_knowledge = knowledge(PEMasker(SECRET), images, smooth_images(4, seed=4))
    reconstructed = FRAttack().reconstruct(attack_knowledge)
    masked = attack_knowledge.masked.data
    assert reconstructed.shape == images.shape and reconstructed.dtype == np.float32
    baseline = median_ssim(masked, images)
    # without the fold, the channel mean of PE's independently inverted values is noise
    assert median_ssim(grey(masked), grey(images)) < baseline + 0.1
    assert median_ssim(reconstructed, grey(images)) >= baseline + 0.2


def test_fr_on_pe_gives_the_folded_grey_image_whatever_the_key():
    images = smooth_images(3, seed=5)
    folded = np.minimum(images, 1 - images).mean(axis=1) * np.float32(255 / 127)
    for secret in (SECRET, b"another secret entirely"):
        reconstructed = FRAttack().reconstruct(knowledge(PEMasker(secret), images, smooth_images(2, seed=6)))
        np.testing.assert_allclose(reconstructed, np.repeat(folded[:, None], 3, axis=1), atol=1e-5)


# ------------------------------------------------------------------------------------------------------ jigsaw


def test_placer_puts_back_permuted_blocks_of_one_image():
    image = smooth_images(1, seed=7)
    pieces = as_pieces(image, 8)
    order = np.random.default_rng(0).permutation(16)
    right, below = block_compatibility(pieces[:, order], orientations=[0], channel_orders=[0], signs=[1])
    placement = place(right, below, np.arange(16), 4, np.arange(16))
    # position j holds shuffled piece grid[j], which is original block order[grid[j]]
    in_place = order[placement.grid.ravel()] == np.arange(16)
    assert in_place.all()


def test_jigsaw_decrypts_etc():
    images = smooth_images(16, seed=1)
    attack = JigsawAttack()
    reconstructed = attack.reconstruct(knowledge(masker_class("etc")(SECRET, block=16), images,
                                                 smooth_images(200, seed=2)))
    assert reconstructed.shape == images.shape and reconstructed.dtype == np.float32
    assert blocks_correct(reconstructed, images, 16) >= 0.75
    assert attack.details_["pieces"] == 4 and attack.details_["variants"] == 96


def test_jigsaw_descrambles_pixels():
    images = smooth_images(16, seed=1)
    reconstructed = JigsawAttack().reconstruct(knowledge(masker_class("scramble")(SECRET, block=4), images,
                                                         smooth_images(4, seed=2)))
    assert blocks_correct(reconstructed, images, 4) >= 0.75


@pytest.mark.parametrize("attack, method, threat", [(FRAttack, "aae", "a"), (JigsawAttack, "etc", "b"),
                                                    (JigsawAttack, "pe", "a")])
def test_attacks_refuse_what_they_do_not_apply_to(attack, method, threat):
    with pytest.raises(VeilError):
        attack.check_applies(method, threat)
