"""Feature reconstruction (Chang and Case 2020, arXiv 2004.13263): a keyless attack on pixel-value encryptions.

Negative-positive maps a pixel value v to 255 - v (v xor 255), so v and its inverse fold onto the same value
min(v, 255 - v) in [0, 127]; colour-channel shuffles permute the three values of a pixel, whose mean stays put.
Folding every value and averaging the channels therefore gives, from the encrypted image alone, a grey image that is
the same function of the plain image whatever the key: its edges and shapes show through.
"""
from __future__ import annotations

import numpy as np

from veil.attacks.base import Attack, Knowledge, register_attack

#: the largest folded value: v > FOLD becomes v xor 255 = 255 - v
FOLD = 127


@register_attack("fr")
class FRAttack(Attack):
    """Threat model a (ciphertext-only): uses the masked images and nothing else (no key, no public images).

    Undoes what acts on pixel values: negative-positive (per value, block or pixel) by folding, and colour-channel
    orders by averaging the channels, at the cost of colour and of the upper half of the intensity range. It cannot
    undo what moves pixels: block permutations, block rotations and flips, and shuffles of positions inside a block
    stay in the reconstruction (on EtC the folded blocks are still scrambled; on LE, ELE and scrambling the pixels
    inside each block stay shuffled)."""

    threats = ("a",)
    requires = {"structure": "blocks"}

    def reconstruct(self, knowledge: Knowledge) -> np.ndarray:
        self.details_ = {"rule": f"v > {FOLD} -> v xor 255, channel mean"}
        return fold_grey(knowledge.masked.data)


def fold_grey(masked: np.ndarray) -> np.ndarray:
    """Masked images (N, 3, H, W), values k/255 -> the folded channel-mean grey image in all three channels,
    stretched from [0, 127] to [0, 1]."""
    pixels = np.clip(np.rint(masked * np.float32(255)), 0, 255).astype(np.uint8)
    folded = np.where(pixels > FOLD, pixels ^ np.uint8(255), pixels)
    grey = folded.mean(axis=1, dtype=np.float32) / np.float32(FOLD)
    return np.repeat(grey[:, None], 3, axis=1)
