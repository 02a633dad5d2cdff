"""Attacks that use a random filter's structure: `deconv` finds the victim's kernel from known pairs (c) or from the
masked set and public images alone (a), and inverts it."""
from __future__ import annotations

import numpy as np
from test_attacks_block import median_ssim, smooth_images

from veil.attacks.base import Budget, Knowledge
from veil.attacks.deconv import DeconvAttack, kernel_error
from veil.data.imageset import ImageSet
from veil.masked import MaskedSet
from veil.schemes.filters import filter_images

#: the victim's kernel: the test's own random filter, whatever the scheme derives it from
KERNEL = np.random.default_rng(7).standard_normal((3, 3)).astype(np.float32)
VICTIM, PUBLIC = smooth_images(200, 1), smooth_images(1200, 2)


def knowledge(threat: str, pairs: int = 0, budget: Budget = Budget()) -> Knowledge:
    masked = MaskedSet(filter_images(VICTIM, KERNEL), labels=None, class_names=[], method="randfilter",
                       fingerprint="test", meta={"config": {"kernel": 3}})
    known = (VICTIM[:pairs], masked.data[:pairs]) if pairs else None
    return Knowledge(threat, masked.subset(np.arange(pairs, len(VICTIM))), ImageSet(PUBLIC), pairs=known,
                     budget=budget)


def test_deconv_solves_the_kernel_from_20_known_pairs():
    attack = DeconvAttack()
    recon = attack.reconstruct(knowledge("c", pairs=20))
    assert kernel_error(attack.kernel_, KERNEL) < 1e-4
    assert median_ssim(recon, VICTIM[20:]) > 0.9


def test_deconv_finds_the_kernel_blindly():
    """Threat a on these scenes: deconv reaches a median SSIM of 0.93 (kernel error 0.16); the generic ITN (public
    images masked under filters of the attacker's own) reaches 0.67 on the same setup with 2 epochs, 0.73 with 10."""
    attack = DeconvAttack()
    recon = attack.reconstruct(knowledge("a"))
    assert kernel_error(attack.kernel_, KERNEL) < 0.3
    assert median_ssim(recon, VICTIM) > 0.85
