"""EtC, encryption-then-compression (Chuman, Sirichotedumrong and Kiya 2019; paper 003, sec. II-B).

Blocks of B x B pixels (B = 16 by default, aligned with JPEG's 16x16 colour MCUs; 4 and 8 for 32x32 studies):
K1 permutes the blocks, K2 rotates (0/90/180/270 degrees) and flips each block, K3 applies the negative-positive
transform (p xor 255) to whole blocks, all three channels together, K4 picks one of the six colour-channel orders per
block. Pixels stay inside their block, so EtC images compress with JPEG almost as well as plain ones.

What it protects, as measured by `veil report privacy` (results/privacy/report.md; figure names in brackets):
- The key space is that of the block arrangement, whatever the 256-bit secret: (H/B)(W/B) blocks in some order,
  each in one of 8 orientations x 2 negative-positive x 6 colour orders (`key_space_bits`, for any size and block).
  At 32x32 that is about 2^31 keys for B = 16 (4 blocks), 2^150 for B = 8 and 2^717 for B = 4; at 224x224 with
  B = 16, paper 003's setting, 196 blocks: 2^1215 for the arrangement alone, 2^2506 in all. Above 2^256 the
  secret (32 bytes from `veil keygen`) bounds the keys that can actually occur: a brute-force search would try
  secrets, not arrangements (`reachable_bits`).
- One key masks a whole set, so a ciphertext-only attacker pools the statistics of every block position over all
  images: the `jigsaw` attack restores the set exactly (`etc_jigsaw_a_blocks_correct`, `etc4_jigsaw_a_...`).
- A masking oracle or a thousand known pairs give a near-exact inverse (`etc_itn_b_ssim`, `etc_itn_c1000_ssim`):
  EtC is one fixed permutation and inversion of the pixel values, an affine map.
- FR, the GAN and the key-averaged ITN, the attacks paper 003 judged EtC by, recover little (`etc_fr_a_ssim`,
  `etc_gan_a_ssim`, `etc_itn_a_ssim`).
"""
from __future__ import annotations

import math

from veil.schemes.base import image_size, register_scheme
from veil.schemes.keyed import (BlockLayout, KeyedScheme, check_block, permute_blocks, rotate_flip_blocks,
                                shuffle_channels)


#: per block: 8 orientations (4 rotations, each flipped or not) x 2 (negative-positive or not) x 6 colour orders
VARIANTS_PER_BLOCK = 8 * 2 * 6


#: the bits of the secret `veil keygen` writes (32 random bytes)
SECRET_BITS = 256


def key_space_bits(block: int, size: tuple[int, int] = (32, 32), secret_bits: int = SECRET_BITS) -> dict:
    """log2 of the EtC key space for images of `size` (H, W) in `block`-pixel blocks: the block count, the bits of
    their arrangement alone (log2 of blocks!), of the whole key (arrangement x VARIANTS_PER_BLOCK per block), and
    of the keys a secret of `secret_bits` can reach (the smaller of the key space and the secret)."""
    check_block(EtC.method, block, size)
    blocks = (size[0] // block) * (size[1] // block)
    arrangement = math.lgamma(blocks + 1) / math.log(2)
    bits = arrangement + blocks * math.log2(VARIANTS_PER_BLOCK)
    return {"blocks": blocks, "arrangement_bits": arrangement, "bits": bits, "reachable_bits": min(bits, secret_bits)}


@register_scheme("etc")
class EtC(KeyedScheme):
    """EtC: keyed block permutation, rotation and flip, negative-positive and colour shuffle (see the module)."""

    default_block = 16
    allowed_blocks = (4, 8, 16)
    puzzle = "blocks"
    jpeg_compressible = True

    def masked_meta(self, masked) -> dict:
        """The configuration, and the key space at the masked images' size (`key_space_bits`)."""
        return {**super().masked_meta(masked), "key_space": key_space_bits(self.block, image_size(masked.shape))}

    def _build(self, layout: BlockLayout, draws) -> None:
        blocks = layout.n_blocks
        layout.move(permute_blocks, draws.permutations("K1", 1, blocks)[0])
        layout.move(rotate_flip_blocks, draws.choices("K2", blocks, 8))
        layout.invert(draws.choices("K3", blocks, 2)[:, None, None, None])
        layout.move(shuffle_channels, draws.choices("K4", blocks, 6))
