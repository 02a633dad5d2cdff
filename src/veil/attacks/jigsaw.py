"""A jigsaw-puzzle solver for block scrambling (EtC, pixel scrambling inside blocks), ciphertext-only.

In veil one key masks a whole set: every image has the same block permutation, rotations, negative-positive flags and
channel orders (EtC), or the same pixel permutation in every block (scrambling). So the solver does not solve one
image at a time: it measures how well two pieces fit over all N masked images at once, from second moments of their
edges (sums of products: one matrix product per chunk of images), which is far more reliable than any single image.

The generic part works on candidates (a piece shown in one of its variants) and two compatibility matrices, `right`
and `below`: `right[i, j]` is the cost of candidate j sitting right of candidate i. `place` fills the grid greedily
from each seed and keeps the cheapest arrangement, each piece used once. What boundary costs cannot tell apart (a
whole-image rotation, flip, negative-positive or channel order) is decided afterwards: by the public images' mean
image for EtC, by smoothness across block seams for scrambling.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from veil.attacks.base import Attack, Knowledge, register_attack
from veil.maskers.base import masker_class
from veil.schemes.keyed import CHANNEL_ORDERS, CHANNELS, check_block, from_blocks, to_blocks

ORIENTATIONS = 8
TOP, RIGHT, BOTTOM, LEFT = range(4)
#: images per matrix product when aggregating: bounds memory, does not change the result
CHUNK = 1024


def dihedral(array: np.ndarray, op: int, axes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """One of the 8 symmetries of a square: rotation by 90 * (op % 4) degrees, then a flip when op >= 4."""
    array = np.rot90(array, op % 4, axes=axes)
    return np.flip(array, axis=axes[1]) if op >= 4 else array


@dataclass(frozen=True)
class Placement:
    grid: np.ndarray  # (rows, cols) candidate index per position
    cost: float  # summed costs of all horizontal and vertical neighbours


def place(right: np.ndarray, below: np.ndarray, piece_of: np.ndarray, shape, seeds) -> Placement:
    """Place one candidate of distinct pieces on each cell of a grid of `shape` (rows, cols; or one side, square),
    greedily from every seed put at the top-left corner (all seeds at once), choosing for each cell the unused piece
    whose best candidate costs least against the placed left and top neighbours; the cheapest arrangement wins
    (ties: the first seed).

    `piece_of[i]` is the piece of candidate i."""
    seeds = np.asarray(seeds)
    rows = np.arange(len(seeds))
    shape = (shape, shape) if np.isscalar(shape) else tuple(shape)
    cols = shape[1]
    grid = np.zeros((len(seeds), shape[0] * cols), dtype=np.int64)
    grid[:, 0] = seeds
    used = np.zeros((len(seeds), piece_of.max() + 1), dtype=bool)
    used[rows, piece_of[seeds]] = True
    total = np.zeros(len(seeds))
    for position in fill_order(shape)[1:]:
        row, col = divmod(int(position), cols)
        cost = np.zeros((len(seeds), len(piece_of)), dtype=np.float32)
        if col:
            cost += right[grid[:, position - 1]]
        if row:
            cost += below[grid[:, position - cols]]
        cost[used[:, piece_of]] = np.inf
        pick = cost.argmin(axis=1)
        total += cost[rows, pick]
        grid[:, position] = pick
        used[rows, piece_of[pick]] = True
    best = int(total.argmin())
    return Placement(grid[best].reshape(shape), float(total[best]))


def fill_order(shape: tuple[int, int]) -> np.ndarray:
    """Raster positions in filling order: the first two rows column by column, then the other rows one by one.

    Filled row by row, the first row has only left neighbours and may bend into the second (for single pixels, the
    pixel below is as close as the one to the right); this way every cell after the first two has a placed neighbour
    whose other neighbours are all placed already."""
    rows, cols = shape
    first = min(rows, 2) * cols
    return np.concatenate([np.arange(first).reshape(-1, cols).T.ravel(), np.arange(first, rows * cols)])


# ---------------------------------------------------------------------------------------------- block edges (EtC)


@dataclass(frozen=True)
class EdgeLines:
    """The 8 directed outer lines of a B x B block (each side read both ways) as flat pixel positions, and for each
    the line just inside it; `side[o, s]`: the line a block shown in orientation o has on side s (TOP, RIGHT, BOTTOM,
    LEFT; rows read left to right, columns top to bottom). Second moments are kept against 4 lines (`forward`, one
    reading of each side); `pair_row`, `pair_col` map any (line, line) pair onto them (reverse both if need be)."""

    outer: np.ndarray
    inner: np.ndarray
    side: np.ndarray
    forward: np.ndarray
    pair_row: np.ndarray
    pair_col: np.ndarray

    @classmethod
    def of(cls, block: int) -> "EdgeLines":
        views = np.stack([dihedral(np.arange(block * block).reshape(block, block), o) for o in range(ORIENTATIONS)])
        outer = views[:, 0]
        sides = np.stack([views[:, 0], views[:, :, -1], views[:, -1], views[:, :, 0]], axis=1)
        reverse = _line_number(outer[:, ::-1], outer)
        is_forward = np.arange(ORIENTATIONS) < reverse
        forward = np.flatnonzero(is_forward)
        column = np.zeros(ORIENTATIONS, dtype=np.int64)
        column[forward] = np.arange(len(forward))
        pair_row = np.where(is_forward[None, :], np.arange(ORIENTATIONS)[:, None], reverse[:, None])
        pair_col = column[np.where(is_forward, np.arange(ORIENTATIONS), reverse)]
        return cls(outer, views[:, 1], _line_number(sides, outer), forward, pair_row, pair_col)


def _line_number(lines: np.ndarray, outer: np.ndarray) -> np.ndarray:
    return (lines[..., None, :] == outer).all(axis=-1).argmax(axis=-1)


def block_compatibility(pieces: np.ndarray, orientations=range(ORIENTATIONS),
                        channel_orders=range(len(CHANNEL_ORDERS)), signs=(1, -1)) -> tuple[np.ndarray, np.ndarray]:
    """(right, below) costs over candidates (piece, orientation, channel order, sign), in that index order.

    `pieces`: (N, P, B, B, 3) in [0, 1], piece p of every image (one key, so piece p is the same block everywhere).
    A candidate is the piece turned by `dihedral`, its channels reordered (`CHANNEL_ORDERS`: channel c shows the
    piece's channel order[c]) and negated (sign -1: v -> 1 - v). The cost of B next to A is prediction-based, both
    ways: each block's two outermost lines predict the line across the seam (2 * last - second last), compared with
    the other block's outermost line; squared errors, averaged over images and seam values. With values centred on
    0.5, negative-positive is a sign change and every cost follows from second moments of edge lines."""
    count, n_pieces, block = pieces.shape[:3]
    lines = EdgeLines.of(block)
    gram, energy = _aggregate(lambda chunk: _edge_moments(chunk.reshape(len(chunk), n_pieces, -1, CHANNELS) - 0.5,
                                                          lines), pieces)
    gram = gram.reshape(n_pieces, ORIENTATIONS, CHANNELS, n_pieces, len(lines.forward), CHANNELS)
    full = gram.transpose(1, 4, 0, 2, 3, 5)[lines.pair_row, lines.pair_col]
    scale = count * block * CHANNELS
    both_ways = ((full + full.transpose(1, 0, 4, 5, 2, 3)) / scale).astype(np.float32)
    energy = (energy / scale).astype(np.float32)
    geometry = np.array(list(product(orientations, channel_orders)))
    orders, signs = CHANNEL_ORDERS[geometry[:, 1]], np.asarray(signs, dtype=np.float32)
    return tuple(_seam_costs(both_ways, energy, lines.side[geometry[:, 0], first], lines.side[geometry[:, 0], second],
                             orders, signs) for first, second in ((RIGHT, LEFT), (BOTTOM, TOP)))


def _edge_moments(pieces: np.ndarray, lines: EdgeLines) -> tuple[np.ndarray, np.ndarray]:
    """Centred pieces (n, P, B*B, 3) -> sums of products of every line's prediction with every forward line, over
    images and along the lines, (P*8*3, P*4*3); and each line's prediction and outer energy, (P, 8)."""
    outer = pieces[:, :, lines.outer]
    predicted = 2 * outer - pieces[:, :, lines.inner]
    energy = (predicted ** 2 + outer ** 2).sum(axis=(0, 3, 4))
    return _rows(predicted) @ _rows(outer[:, :, lines.forward]).T, energy


def _rows(lines: np.ndarray) -> np.ndarray:
    """(n, P, L, B, 3) -> (P*L*3, n*B)."""
    return lines.transpose(1, 2, 4, 0, 3).reshape(-1, lines.shape[0] * lines.shape[3])


def _seam_costs(both_ways, energy, first_line, second_line, orders, signs) -> np.ndarray:
    """Summed squared prediction errors across the seam between candidate i (seam on its `first_line`) and candidate
    j (on its `second_line`), (C, C), from the two-way sums of products `both_ways` (8, 8, P, 3, P, 3)."""
    cross = sum(both_ways[first_line[:, None], second_line[None, :], :, orders[:, None, c], :, orders[None, :, c]]
                for c in range(CHANNELS)).transpose(2, 0, 3, 1)
    cost = cross[:, :, None, :, :, None] * (-2 * np.multiply.outer(signs, signs))[:, None, None, :]
    cost += energy[:, first_line, None, None, None, None]
    cost += energy[:, second_line][None, None, None, :, :, None]
    return cost.reshape(cost.shape[0] * cost.shape[1] * cost.shape[2], -1)


def _aggregate(moments, images: np.ndarray) -> list[np.ndarray]:
    """Sum, in float64, the arrays `moments(chunk)` returns over chunks of `images` (float32)."""
    totals = None
    for start in range(0, len(images), CHUNK):
        parts = moments(np.asarray(images[start:start + CHUNK], dtype=np.float32))
        totals = [np.asarray(p, dtype=np.float64) for p in parts] if totals is None else \
            [t + p for t, p in zip(totals, parts)]
    return totals


# ---------------------------------------------------------------------------------------------- the attack


@register_attack("jigsaw")
class JigsawAttack(Attack):
    """Threat model a (ciphertext-only): uses the masked images (all encrypted under the one key of the set), the
    scheme's block size from the set's public configuration, and for EtC the mean of public plain images.

    EtC: solves block positions, rotations and flips, negative-positive and channel orders together (96 variants of
    each piece), then picks the whole image's orientation, negative-positive and channel order by the public mean
    image. Scrambling: solves the pixel arrangement inside a block, then its orientation by smoothness across block
    seams. A puzzle with too little structure (flat or noisy blocks) stays partly wrong; nothing is learnt per image."""

    threats = ("a",)
    requires = {"puzzle": ("blocks", "pixels")}

    def reconstruct(self, knowledge: Knowledge) -> np.ndarray:
        scheme = masker_class(knowledge.method)
        block = int(knowledge.config.get("block", scheme.default_block))
        masked = knowledge.masked.data
        if scheme.puzzle == "blocks":
            source, flip = self._solve_etc(masked, block, knowledge.public_subset().mean(axis=0))
        else:
            source, flip = self._solve_scramble(masked, block)
        return apply_map(masked, source, flip)

    def _solve_etc(self, masked: np.ndarray, block: int, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pieces = as_pieces(masked, block)
        n_pieces, variants = pieces.shape[1], ORIENTATIONS * len(CHANNEL_ORDERS) * 2
        right, below = block_compatibility(pieces)
        # the cost does not change under a whole-image negative-positive or channel order: seeds keep neither
        seeds = np.ravel_multi_index((np.arange(n_pieces)[:, None], np.arange(ORIENTATIONS), 0, 0),
                                     (n_pieces, ORIENTATIONS, len(CHANNEL_ORDERS), 2)).ravel()
        grid = grid_shape(masked, block)
        placement = place(right, below, np.repeat(np.arange(n_pieces), variants), grid, seeds)
        self.details_ = {"grid": grid[0] if grid[0] == grid[1] else list(grid), "pieces": n_pieces,
                         "variants": variants, "cost": placement.cost}
        return resolve_whole_image(*etc_map(placement.grid, block), masked.mean(axis=0), prior)

    def _solve_scramble(self, masked: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
        within, across_h, across_v = pixel_distances(masked, block)
        pixels = block * block
        placement = place(within, within, np.arange(pixels), (block, block), np.arange(pixels))
        turned = np.stack([dihedral(placement.grid, o) for o in range(ORIENTATIONS)])
        seams = across_h[turned[:, :, -1], turned[:, :, 0]].mean(axis=1) + \
            across_v[turned[:, -1], turned[:, 0]].mean(axis=1)
        self.details_ = {"grid": block, "pieces": pixels, "variants": 1, "cost": placement.cost}
        size = masked.shape[2:]
        return scramble_map(turned[seams.argmin()], size), np.zeros((*size, CHANNELS), dtype=bool)


def grid_shape(images: np.ndarray, block: int) -> tuple[int, int]:
    """The rows and columns of blocks of images (N, 3, H, W); a block that does not divide them is refused."""
    check_block("the jigsaw attack's", block, images.shape[2:])
    return images.shape[2] // block, images.shape[3] // block


def as_pieces(images: np.ndarray, block: int) -> np.ndarray:
    """(N, 3, H, W) -> (N, P, B, B, 3): the blocks in raster order, channels last."""
    rows, cols = grid_shape(images, block)
    shaped = images.reshape(len(images), CHANNELS, rows, block, cols, block)
    return shaped.transpose(0, 2, 4, 3, 5, 1).reshape(len(images), rows * cols, block, block, CHANNELS)


def _positions(size: tuple[int, int]) -> np.ndarray:
    """A channels-last image (H, W, 3) of channels-first flat positions: rearranged like an image, it becomes a
    map from output values to masked values."""
    return np.arange(CHANNELS * size[0] * size[1]).reshape(CHANNELS, *size).transpose(1, 2, 0)


def etc_map(grid: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Placed EtC candidates, a (rows, cols) grid -> (source, flip) maps (H, W, 3): where each decrypted value comes
    from, and whether it is inverted."""
    size = (grid.shape[0] * block, grid.shape[1] * block)
    blocks = to_blocks(_positions(size), block)
    piece, orientation, order, sign = np.unravel_index(grid.ravel(),
                                                       (len(blocks), ORIENTATIONS, len(CHANNEL_ORDERS), 2))
    turned = np.stack([dihedral(blocks, o, axes=(1, 2)) for o in range(ORIENTATIONS)])[orientation, piece]
    placed = np.take_along_axis(turned, CHANNEL_ORDERS[order][:, None, None, :], axis=3)
    return from_blocks(placed, size), from_blocks(np.broadcast_to(sign[:, None, None, None] == 1, placed.shape), size)


def resolve_whole_image(source, flip, masked_mean, prior) -> tuple[np.ndarray, np.ndarray]:
    """Of the 96 whole-image orientations x negative-positive x channel orders of a map, the one whose mean
    decryption is closest (squared distance) to the `prior` mean image (3, H, W). A map that is not square has only
    the 4 orientations that keep its shape (no quarter turns) to choose from, so 48."""
    square = source.shape[0] == source.shape[1]
    orientations = range(ORIENTATIONS) if square else [o for o in range(ORIENTATIONS) if o % 2 == 0]
    sources = np.stack([dihedral(source, o) for o in orientations])[..., CHANNEL_ORDERS]
    flips = np.stack([dihedral(flip, o) for o in orientations])[..., CHANNEL_ORDERS]
    means = masked_mean.reshape(-1)[sources]
    means = np.where(flips, 1 - means, means)
    target = prior.transpose(1, 2, 0)[:, :, None, :]
    distance = np.stack([((m - target) ** 2).sum(axis=(1, 2, 4)) for m in (means, 1 - means)])
    negate, orientation, order = np.unravel_index(distance.argmin(), distance.shape)
    return sources[orientation, :, :, order], flips[orientation, :, :, order] ^ bool(negate)


def pixel_distances(masked: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean squared differences between the block x block pixel positions (RGB together), (P, P) each: within a
    block, over all blocks; and from a block to the block right of it / below it."""
    rows, cols = grid_shape(masked, block)

    def moments(chunk):
        shaped = chunk.reshape(len(chunk), CHANNELS, rows, block, cols, block) - 0.5
        blocks = shaped.transpose(0, 2, 4, 3, 5, 1).reshape(len(chunk), rows, cols, block * block, CHANNELS)
        return (*_pair_moments(blocks, blocks), *_pair_moments(blocks[:, :, :-1], blocks[:, :, 1:]),
                *_pair_moments(blocks[:, :-1], blocks[:, 1:]))

    totals = _aggregate(moments, masked)
    return tuple(((first[:, None] + second[None, :] - 2 * gram) / count).astype(np.float32)
                 for gram, first, second, count in zip(*[iter(totals)] * 4))


def _pair_moments(a: np.ndarray, b: np.ndarray) -> tuple:
    """Sums of products between positions of `a` and of `b` (..., P, 3), their energies and the number of pairs."""
    a, b = (x.reshape(-1, x.shape[-2], CHANNELS).transpose(1, 0, 2).reshape(x.shape[-2], -1) for x in (a, b))
    return a @ b.T, (a ** 2).sum(axis=1), (b ** 2).sum(axis=1), np.float64(a.shape[1] // CHANNELS)


def scramble_map(arrangement: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Within-block arrangement (K, K) of masked positions -> source map (H, W, 3) for images of `size`."""
    block = len(arrangement)
    blocks = to_blocks(_positions(size), block)
    flat = blocks.reshape(len(blocks), block * block, CHANNELS)[:, arrangement.ravel()]
    return from_blocks(flat.reshape(blocks.shape), size)


def apply_map(masked: np.ndarray, source: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """Masked images (N, 3, H, W), values k/255 -> the decryption a (source, flip) map gives, exact."""
    pixels = np.clip(np.rint(masked * np.float32(255)), 0, 255).astype(np.uint8).reshape(len(masked), -1)
    out = pixels[:, source.transpose(2, 0, 1).ravel()]
    out ^= flip.transpose(2, 0, 1).ravel().astype(np.uint8) * np.uint8(255)
    return (out / np.float32(255)).reshape(masked.shape).astype(np.float32)
