"""The learnable perceptual encryptions compared in paper 003 (Table II): LE, ELE and PE. All uint8-exact.

- LE (Tanaka 2018): inside every B x B block the B*B*3 values are shuffled and some are inverted (p xor 255), with
  one shuffle and one inversion pattern shared by all blocks (so an adaptation layer can learn to undo them).
  Tanaka's split of each 8-bit value into two 4-bit channels is left out: the encrypted image stays an 8-bit RGB
  image, comparable with the others (and compressible, in principle).
- ELE (Madono et al. 2020): LE with block scrambling added and a different shuffle and inversion pattern per block.
- PE (Sirichotedumrong et al. 2019): pixel-based: every value is inverted or not, and every pixel's three colour
  channels are put in one of six orders, each by the key (a block size of 1).

What they protect, as measured by `veil report privacy` (results/privacy/report.md; figure names in brackets): each
is one fixed permutation and inversion of the pixel values per key, an affine map, so a masking oracle or a
thousand known pairs invert it almost exactly (`le_itn_b_ssim`, `pe_itn_c1000_ssim`, ...). Ciphertext-only, FR
(`pe_fr_a_ssim`) and an inverse network trained under keys of the attacker's own (`le_itn_a_ssim`) recover part of
the image; check the `*_semantic` figures, which say whether a classifier still recognises what was recovered.
"""
from __future__ import annotations

from veil.schemes.base import register_scheme
from veil.schemes.keyed import BlockLayout, KeyedScheme, permute_blocks, shuffle_channels, shuffle_values


@register_scheme("le")
class LE(KeyedScheme):
    """LE: one keyed shuffle and inversion of the values inside every block, shared by all blocks."""

    default_block = 4
    allowed_blocks = (2, 4, 8, 16)

    def _build(self, layout: BlockLayout, draws) -> None:
        size = layout.block_values
        layout.move(shuffle_values, draws.permutations("shuffle", 1, size)[0])
        layout.invert(draws.choices("negative-positive", size, 2).reshape(layout.index.shape[1:]))


@register_scheme("ele")
class ELE(KeyedScheme):
    """ELE: LE with keyed block scrambling and a different shuffle and inversion per block."""

    default_block = 4
    allowed_blocks = (2, 4, 8, 16)

    def _build(self, layout: BlockLayout, draws) -> None:
        blocks, size = layout.n_blocks, layout.block_values
        layout.move(permute_blocks, draws.permutations("block-scramble", 1, blocks)[0])
        layout.move(shuffle_values, draws.permutations("shuffle", blocks, size))
        layout.invert(draws.choices("negative-positive", blocks * size, 2).reshape(layout.index.shape))


@register_scheme("pe")
class PE(KeyedScheme):
    """PE: keyed inversion of every value and a keyed colour-channel order for every pixel."""

    default_block = 1
    allowed_blocks = (1,)

    def _build(self, layout: BlockLayout, draws) -> None:
        layout.invert(draws.choices("negative-positive", layout.index.size, 2).reshape(layout.index.shape))
        layout.move(shuffle_channels, draws.choices("colour-shuffle", layout.n_blocks, 6))
