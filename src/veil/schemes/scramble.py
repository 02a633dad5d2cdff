"""Block pixel scrambling (paper 004, sec. 3.4): one keyed permutation of the pixels (RGB triples move together)
applied inside every K x K block, K = 2, 4, 8 (or 16). Spatial structure between blocks survives, so a CNN still
learns; inside a block the arrangement is lost unless one learns the inverse permutation (the descrambler).
The key space is (K*K)! permutations: only 24 for K = 2, which a brute-force search exhausts at once.

What it protects, as measured by `veil report privacy` (results/privacy/report.md): one permutation serves every
block of every image, so the ciphertext-only `jigsaw` attack pools all blocks and solves it (`scramble_jigsaw_a_...`
figures); a masking oracle or known pairs invert it too (`scramble_itn_b_ssim`)."""
from __future__ import annotations

from veil.schemes.base import register_scheme
from veil.schemes.keyed import BlockLayout, KeyedScheme, shuffle_values


@register_scheme("scramble")
class Scramble(KeyedScheme):
    """Block pixel scrambling: one keyed permutation of the pixels inside every block."""

    default_block = 8
    allowed_blocks = (2, 4, 8, 16)
    puzzle = "pixels"

    def _build(self, layout: BlockLayout, draws) -> None:
        pixels = layout.block * layout.block
        layout.move(shuffle_values, draws.permutations("pixels", 1, pixels)[0], 3)
