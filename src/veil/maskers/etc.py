"""EtC, encryption-then-compression (Chuman, Sirichotedumrong and Kiya 2019; paper 003, sec. II-B).

Blocks of B x B pixels (B = 16 by default, aligned with JPEG's 16x16 colour MCUs; 4 and 8 for 32x32 studies):
K1 permutes the blocks, K2 rotates (0/90/180/270 degrees) and flips each block, K3 applies the negative-positive
transform (p xor 255) to whole blocks, all three channels together, K4 picks one of the six colour-channel orders per
block. Pixels stay inside their block, so EtC images compress with JPEG almost as well as plain ones.
"""
from __future__ import annotations

from veil.maskers.base import register_masker
from veil.maskers.keyed import BlockLayout, KeyedMasker, permute_blocks, rotate_flip_blocks, shuffle_channels
from veil.maskers.keys import choices, permutations


@register_masker("etc")
class EtCMasker(KeyedMasker):
    default_block = 16
    allowed_blocks = (4, 8, 16)

    def _build(self, layout: BlockLayout, step_key) -> None:
        blocks = layout.n_blocks
        layout.move(permute_blocks, permutations(step_key("K1"), 1, blocks)[0])
        layout.move(rotate_flip_blocks, choices(step_key("K2"), blocks, 8))
        layout.invert(choices(step_key("K3"), blocks, 2)[:, None, None, None])
        layout.move(shuffle_channels, choices(step_key("K4"), blocks, 6))
