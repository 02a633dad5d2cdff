"""EtC, LE, ELE and PE, step by step, against paper 003 (sec. II-B for EtC; sec. II-A for LE, ELE, PE).

Every expected output here is built in the test with plain NumPy indexing written out by hand (explicit block
slices, index formulas for the rotations, 255 - p for the negative-positive transform), never with the helpers of
`veil.maskers.keyed`. The images are random but checked to have blocks that are all different and asymmetric (no
rotation, flip or channel reorder maps a block onto itself), so that every step is visible in the output.

Key tables are written explicitly and given to `KeyedMasker.from_table`; `test_secret_gives_the_hand_derived_table`
ties them to the secret path by deriving EtC's table from a secret by hand (HKDF, SHAKE-256, argsort, mod).

Paper 003, sec. II-B, EtC on B x B blocks: (1) permute the blocks (K1); (2) rotate and invert (flip) each block
(K2); (3) negative-positive transform p' = p xor (2^L - 1), L = 8, per block, the same for all colour components
(K3); (4) shuffle the three colour components in each block, one of six orders (K4). Steps 2-4 act on the blocks
in their permuted places, so their per-block keys are indexed by output block.
"""
from __future__ import annotations

import hashlib
import hmac
import itertools

import numpy as np
import pytest

from veil.errors import VeilError
from veil.maskers.base import masker_class

SIDE = 32
#: the six orders of three colour components, written out (output channel c is input channel ORDERS[k][c])
ORDERS = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]


# ------------------------------------------------------------------ hand-written reference operations


def image(seed: int = 0) -> np.ndarray:
    """(32, 32, 3) uint8; channel c holds values in [85c, 85c + 84], so the three channels of a pixel always differ."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 85, (SIDE, SIDE, 3)) + np.array([0, 85, 170])).astype(np.uint8)


def ramp() -> np.ndarray:
    """(32, 32, 3) uint8 with value (96 y + 3 x + c) mod 251 at row y, column x, channel c (251, a prime, so that no
    two blocks repeat)."""
    y, x, c = np.meshgrid(np.arange(SIDE), np.arange(SIDE), np.arange(3), indexing="ij")
    return ((96 * y + 3 * x + c) % 251).astype(np.uint8)


def blocks_of(img: np.ndarray, b: int) -> list[np.ndarray]:
    """The B x B blocks in raster order: block j covers rows (j // n) * B ..., columns (j % n) * B ... (n = 32 / B)."""
    n = SIDE // b
    return [img[(j // n) * b:(j // n + 1) * b, (j % n) * b:(j % n + 1) * b].copy() for j in range(n * n)]


def from_blocks(blocks: list[np.ndarray]) -> np.ndarray:
    b = blocks[0].shape[0]
    n = SIDE // b
    out = np.zeros((SIDE, SIDE, 3), np.uint8)
    for j, block in enumerate(blocks):
        out[(j // n) * b:(j // n + 1) * b, (j % n) * b:(j % n + 1) * b] = block
    return out


def orient(block: np.ndarray, op: int) -> np.ndarray:
    """Operation `op` of the eight: rotate by 90 * (op % 4) degrees counter-clockwise, then mirror left-right if op >= 4.

    Written as index formulas: a counter-clockwise quarter turn puts the last column on top (out[i, j] = b[j, B-1-i]).
    """
    b = block.shape[0]
    i, j = np.meshgrid(np.arange(b), np.arange(b), indexing="ij")
    rows, cols = {0: (i, j), 1: (j, b - 1 - i), 2: (b - 1 - i, b - 1 - j), 3: (b - 1 - j, i)}[op % 4]
    out = block[rows, cols]
    return out[i, b - 1 - j] if op >= 4 else out


def dihedral_images(block: np.ndarray) -> list[bytes]:
    """All eight rotations and reflections of a square block, by independent formulas (transpose and reversals)."""
    results, current = [], block
    for _ in range(4):
        results += [current.tobytes(), current[:, ::-1].tobytes()]
        current = current.transpose(1, 0, 2)[::-1]  # a quarter turn
    return results


def assert_asymmetric(img: np.ndarray, b: int) -> None:
    """Every block differs from every other block and from its own 7 other orientations and 5 other colour orders."""
    blocks = blocks_of(img, b)
    assert len({blk.tobytes() for blk in blocks}) == len(blocks)
    for blk in blocks:
        assert len(set(dihedral_images(blk))) == 8
        assert len({blk[:, :, list(order)].tobytes() for order in ORDERS}) == 6


def identity_table(method: str, block: int) -> dict:
    n = (SIDE // block) ** 2
    size = block * block * 3
    return {"etc": {"K1": np.arange(n), "K2": np.zeros(n, int), "K3": np.zeros(n, int), "K4": np.zeros(n, int)},
            "le": {"shuffle": np.arange(size), "negative-positive": np.zeros(size, int)},
            "ele": {"block-scramble": np.arange(n), "shuffle": np.tile(np.arange(size), (n, 1)),
                    "negative-positive": np.zeros(n * size, int)},
            "pe": {"negative-positive": np.zeros(SIDE * SIDE * 3, int), "colour-shuffle": np.zeros(SIDE * SIDE, int)},
            }[method]


def encrypt(method: str, table: dict, img: np.ndarray, block: int | None = None) -> np.ndarray:
    """Encrypt one image with a masker built from `table`; its decryption must give the image back exactly."""
    masker = masker_class(method).from_table(table, block=block)
    out = masker.encrypt(img[None])
    assert np.array_equal(masker.decrypt(out), img[None])
    return out[0]


def with_steps(method: str, block: int, **steps) -> dict:
    table = identity_table(method, block)
    table.update({name.replace("_", "-"): np.asarray(value) for name, value in steps.items()})
    return table


# ------------------------------------------------------------------ the test images


@pytest.mark.parametrize("block", [4, 8, 16])
def test_test_images_have_distinct_asymmetric_blocks(block):
    assert_asymmetric(image(block), block)
    assert_asymmetric(ramp(), block)


@pytest.mark.parametrize("method,block", [("etc", 4), ("etc", 16), ("le", 2), ("le", 8), ("ele", 4), ("pe", 1)])
def test_the_identity_table_leaves_the_image_alone(method, block):
    img = image(1)
    assert np.array_equal(encrypt(method, identity_table(method, block), img, block), img)


# ------------------------------------------------------------------ EtC, each step alone


@pytest.mark.parametrize("block", [4, 8, 16])
def test_etc_step1_permutes_whole_blocks(block):
    """K1: output block j is input block K1[j], unchanged."""
    n = (SIDE // block) ** 2
    img = image(block)
    order = np.random.default_rng(block).permutation(n)
    assert not (order == np.arange(n)).all()
    src = blocks_of(img, block)
    expected = from_blocks([src[order[j]] for j in range(n)])
    assert np.array_equal(encrypt("etc", with_steps("etc", block, K1=order), img, block), expected)


@pytest.mark.parametrize("block", [4, 8, 16])
@pytest.mark.parametrize("op", range(8))
def test_etc_step2_each_rotation_and_flip(block, op):
    """K2 = op on every block: each block rotated/flipped in place, nothing else changes."""
    img = image(block)
    n = (SIDE // block) ** 2
    expected = from_blocks([orient(blk, op) for blk in blocks_of(img, block)])
    out = encrypt("etc", with_steps("etc", block, K2=np.full(n, op)), img, block)
    assert np.array_equal(out, expected)
    assert (op == 0) == np.array_equal(out, img)


def test_etc_step2_the_eight_operations_are_the_eight_rotations_and_reflections():
    """Paper: "rotate and invert each block": 4 rotations x (flipped or not) = all 8 symmetries of a square, one per
    K2 value, chosen per block."""
    block, img = 8, image(8)
    n = (SIDE // block) ** 2
    ops = np.arange(n) % 8
    out = blocks_of(encrypt("etc", with_steps("etc", block, K2=ops), img, block), block)
    for j, blk in enumerate(blocks_of(img, block)):
        assert np.array_equal(out[j], orient(blk, ops[j]))
    first = blocks_of(img, block)[0]
    produced = [blocks_of(encrypt("etc", with_steps("etc", block, K2=np.full(n, op)), img, block), block)[0].tobytes()
                for op in range(8)]
    assert sorted(produced) == sorted(dihedral_images(first))


@pytest.mark.parametrize("block", [4, 8, 16])
def test_etc_step3_negative_positive_inverts_whole_blocks_in_all_channels(block):
    """K3: p' = p xor 255 = 255 - p over a whole block, all three colour components together, where r(i) = 1."""
    img = image(block)
    n = (SIDE // block) ** 2
    flags = np.random.default_rng(block).integers(0, 2, n)
    flags[:2] = [0, 1]
    expected = from_blocks([255 - blk if flags[j] else blk for j, blk in enumerate(blocks_of(img, block))])
    assert np.array_equal(encrypt("etc", with_steps("etc", block, K3=flags), img, block), expected)


@pytest.mark.parametrize("block", [4, 16])
@pytest.mark.parametrize("k", range(6))
def test_etc_step4_each_channel_order(block, k):
    """K4 = k on every block: output channel c is input channel ORDERS[k][c]."""
    img = image(block)
    n = (SIDE // block) ** 2
    out = encrypt("etc", with_steps("etc", block, K4=np.full(n, k)), img, block)
    expected = np.stack([img[:, :, ORDERS[k][c]] for c in range(3)], axis=2)
    assert np.array_equal(out, expected)
    assert (k == 0) == np.array_equal(out, img)


def test_etc_step4_orders_differ_per_block():
    block, img = 8, image(3)
    orders = np.arange(16) % 6
    out = blocks_of(encrypt("etc", with_steps("etc", block, K4=orders), img, block), block)
    for j, blk in enumerate(blocks_of(img, block)):
        assert np.array_equal(out[j], blk[:, :, list(ORDERS[orders[j]])])


# ------------------------------------------------------------------ EtC, known answers from a tiny key table


#: a 2 x 2-block key table (B = 16): blocks 0 1 / 2 3 of a 32 x 32 image
TINY_ETC = {"K1": [2, 0, 3, 1], "K2": [1, 4, 6, 3], "K3": [1, 0, 0, 1], "K4": [5, 0, 3, 2]}


def test_etc_known_answer_from_a_tiny_table():
    """All four steps in the paper's order, from the table above, built block by block by hand."""
    img = ramp()
    b = 16
    src = [img[0:16, 0:16], img[0:16, 16:32], img[16:32, 0:16], img[16:32, 16:32]]
    expected_blocks = []
    for j in range(4):
        blk = src[TINY_ETC["K1"][j]]                       # step 1: output place j takes input block K1[j]
        blk = orient(blk, TINY_ETC["K2"][j])               # step 2: rotate / flip in place j
        if TINY_ETC["K3"][j]:                              # step 3: negative-positive, all channels
            blk = 255 - blk
        blk = blk[:, :, list(ORDERS[TINY_ETC["K4"][j]])]   # step 4: colour order
        expected_blocks.append(blk)
    expected = np.zeros_like(img)
    expected[0:16, 0:16], expected[0:16, 16:32] = expected_blocks[0], expected_blocks[1]
    expected[16:32, 0:16], expected[16:32, 16:32] = expected_blocks[2], expected_blocks[3]
    out = encrypt("etc", TINY_ETC, img, b)
    assert np.array_equal(out, expected)
    # a few values worked out on paper, from ramp(y, x, c) = (96 y + 3 x + c) mod 251:
    # out[0, 0]: place 0 takes input block 2 (rows 16.., cols 0..); op 1 (quarter turn) reads b[0, 15] = img[16, 15];
    #   = (96*16 + 45 + c) % 251 = (75, 76, 77); negated (180, 179, 178); colour order (2, 1, 0) -> (178, 179, 180)
    assert out[0, 0].tolist() == [178, 179, 180]
    # out[0, 16]: place 1 takes input block 0; op 4 (mirror) reads b[0, 15] = img[0, 15] = (45, 46, 47); order (0, 1, 2)
    assert out[0, 16].tolist() == [45, 46, 47]
    # out[16, 0]: place 2 takes input block 3; op 6 (half turn + mirror) = vertical flip reads b[15, 0] = img[31, 16];
    #   (96*31 + 48 + c) % 251 = 12 + c; order (1, 2, 0) -> (13, 14, 12)
    assert out[16, 0].tolist() == [13, 14, 12]
    # out[31, 31]: place 3 takes input block 1; op 3 (three quarter turns) reads b[B-1-j, i] at i = j = 15 ->
    #   b[0, 15] = img[0, 31] = (93, 94, 95); negated -> (162, 161, 160); order (1, 0, 2) -> (161, 162, 160)
    assert out[31, 31].tolist() == [161, 162, 160]


def _hkdf(secret: bytes, info: bytes, length: int = 32) -> bytes:
    """RFC 5869 HKDF-SHA256 with veil's salt, written here again."""
    prk = hmac.new(b"veil-keyed-schemes/1", secret, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()[:length]


def _words(key: bytes, count: int) -> list[int]:
    stream = hashlib.shake_256(key).digest(8 * count)
    return [int.from_bytes(stream[8 * i:8 * i + 8], "big") for i in range(count)]


def test_secret_gives_the_hand_derived_table():
    """A secret-built EtC masker encrypts exactly as the table derived from the secret by hand (keys.py's recipe:
    HKDF info "etc/block=16/<step>", SHAKE-256 words, argsort for K1, words mod 8 / 2 / 6 for K2 / K3 / K4)."""
    secret = b"known-answer-key"
    words = {step: _words(_hkdf(secret, f"etc/block=16/{step}".encode()), 4) for step in ("K1", "K2", "K3", "K4")}
    table = {"K1": sorted(range(4), key=lambda i: words["K1"][i]),
             "K2": [w % 8 for w in words["K2"]], "K3": [w % 2 for w in words["K3"]], "K4": [w % 6 for w in words["K4"]]}
    etc = masker_class("etc")
    assert {k: v.reshape(-1).tolist() for k, v in etc.key_table(secret).items()} == table
    img = ramp()
    assert np.array_equal(etc(secret).encrypt(img[None])[0], encrypt("etc", table, img, 16))


# ------------------------------------------------------------------ LE: one shuffle and one inversion pattern


def flat_blocks(img: np.ndarray, b: int) -> list[np.ndarray]:
    """Each block's B*B*3 values in row, column, channel order: value k is pixel (k // 3) // B, (k // 3) % B,
    channel k % 3."""
    return [blk.reshape(-1) for blk in blocks_of(img, b)]


def unflat(values: list[np.ndarray], b: int) -> np.ndarray:
    return from_blocks([v.reshape(b, b, 3) for v in values])


@pytest.mark.parametrize("block", [2, 4, 8, 16])
def test_le_shuffle_alone_is_one_value_permutation_shared_by_all_blocks(block):
    size = block * block * 3
    img = image(block)
    perm = np.random.default_rng(block).permutation(size)
    expected = unflat([v[perm] for v in flat_blocks(img, block)], block)
    assert np.array_equal(encrypt("le", with_steps("le", block, shuffle=perm), img, block), expected)


@pytest.mark.parametrize("block", [2, 4, 8, 16])
def test_le_negative_positive_alone_is_one_inversion_pattern_shared_by_all_blocks(block):
    size = block * block * 3
    img = image(block)
    flags = np.random.default_rng(block).integers(0, 2, size)
    expected = unflat([np.where(flags == 1, 255 - v, v) for v in flat_blocks(img, block)], block)
    assert np.array_equal(encrypt("le", with_steps("le", block, negative_positive=flags), img, block), expected)


def test_le_known_answer_from_a_tiny_table():
    """B = 2: the 12 values of every block are shuffled (output k takes value perm[k]), then output k inverted where
    flags[k] = 1."""
    perm = [11, 0, 5, 3, 9, 1, 7, 2, 10, 4, 6, 8]
    flags = [1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 0]
    img = image(5)
    expected = img.copy()
    for y0 in range(0, SIDE, 2):
        for x0 in range(0, SIDE, 2):
            values = img[y0:y0 + 2, x0:x0 + 2].reshape(12)
            out = [255 - values[perm[k]] if flags[k] else values[perm[k]] for k in range(12)]
            expected[y0:y0 + 2, x0:x0 + 2] = np.array(out, np.uint8).reshape(2, 2, 3)
    assert np.array_equal(encrypt("le", {"shuffle": perm, "negative-positive": flags}, img, 2), expected)
    # by hand: the first value of the image comes from value 11 of block 0 = pixel (1, 1) channel 2, inverted
    assert encrypt("le", {"shuffle": perm, "negative-positive": flags}, img, 2)[0, 0, 0] == 255 - img[1, 1, 2]


# ------------------------------------------------------------------ ELE: block scrambling, per-block shuffles and inversions


@pytest.mark.parametrize("block", [2, 4, 8, 16])
def test_ele_block_scrambling_alone(block):
    n = (SIDE // block) ** 2
    img = image(block)
    order = np.random.default_rng(block).permutation(n)
    src = blocks_of(img, block)
    expected = from_blocks([src[order[j]] for j in range(n)])
    assert np.array_equal(encrypt("ele", with_steps("ele", block, block_scramble=order), img, block), expected)


@pytest.mark.parametrize("block", [2, 4, 16])
def test_ele_shuffle_alone_differs_per_block(block):
    n, size = (SIDE // block) ** 2, block * block * 3
    img = image(block)
    perms = np.stack([np.random.default_rng([block, j]).permutation(size) for j in range(n)])
    expected = unflat([v[perms[j]] for j, v in enumerate(flat_blocks(img, block))], block)
    assert np.array_equal(encrypt("ele", with_steps("ele", block, shuffle=perms), img, block), expected)


@pytest.mark.parametrize("block", [2, 4, 16])
def test_ele_negative_positive_alone_differs_per_block(block):
    n, size = (SIDE // block) ** 2, block * block * 3
    img = image(block)
    flags = np.random.default_rng(block).integers(0, 2, (n, size))
    expected = unflat([np.where(flags[j] == 1, 255 - v, v) for j, v in enumerate(flat_blocks(img, block))], block)
    table = with_steps("ele", block, negative_positive=flags.reshape(-1))
    assert np.array_equal(encrypt("ele", table, img, block), expected)


def test_ele_known_answer_from_a_tiny_table():
    """B = 16 (2 x 2 blocks): place j takes block order[j], shuffles it with perms[j], inverts by flags[j]."""
    order = [3, 2, 0, 1]
    rng = np.random.default_rng(7)
    perms = np.stack([rng.permutation(768) for _ in range(4)])
    flags = rng.integers(0, 2, (4, 768))
    img = image(7)
    src = [img[0:16, 0:16], img[0:16, 16:32], img[16:32, 0:16], img[16:32, 16:32]]
    out_blocks = []
    for j in range(4):
        values = src[order[j]].reshape(768)[perms[j]]
        out_blocks.append(np.where(flags[j] == 1, 255 - values, values).reshape(16, 16, 3))
    expected = np.concatenate([np.concatenate(out_blocks[:2], axis=1), np.concatenate(out_blocks[2:], axis=1)], axis=0)
    table = {"block-scramble": order, "shuffle": perms, "negative-positive": flags}
    assert np.array_equal(encrypt("ele", table, img, 16), expected)


# ------------------------------------------------------------------ PE: per-value inversion and per-pixel colour order


def test_pe_negative_positive_alone_is_per_value():
    img = image(11)
    flags = np.random.default_rng(11).integers(0, 2, (SIDE, SIDE, 3))
    expected = np.where(flags == 1, 255 - img, img).astype(np.uint8)
    assert np.array_equal(encrypt("pe", with_steps("pe", 1, negative_positive=flags.reshape(-1)), img), expected)


@pytest.mark.parametrize("k", range(6))
def test_pe_each_channel_order(k):
    img = image(12)
    out = encrypt("pe", with_steps("pe", 1, colour_shuffle=np.full(SIDE * SIDE, k)), img)
    assert np.array_equal(out, np.stack([img[:, :, ORDERS[k][c]] for c in range(3)], axis=2))
    assert (k == 0) == np.array_equal(out, img)


def test_pe_known_answer_from_a_tiny_table():
    """Pixel by pixel: invert the flagged values, then put the three channels in the pixel's order."""
    rng = np.random.default_rng(13)
    flags = rng.integers(0, 2, (SIDE, SIDE, 3))
    orders = rng.integers(0, 6, (SIDE, SIDE))
    img = image(13)
    expected = np.zeros_like(img)
    for y, x in itertools.product(range(SIDE), range(SIDE)):
        inverted = [255 - img[y, x, c] if flags[y, x, c] else img[y, x, c] for c in range(3)]
        expected[y, x] = [inverted[ORDERS[orders[y, x]][c]] for c in range(3)]
    table = {"negative-positive": flags.reshape(-1), "colour-shuffle": orders.reshape(-1)}
    assert np.array_equal(encrypt("pe", table, img), expected)


# ------------------------------------------------------------------ the table hook itself


@pytest.mark.parametrize("method", ["etc", "le", "ele", "pe", "scramble"])
def test_key_table_rebuilds_the_secret_masker(method):
    cls = masker_class(method)
    img = image(21)[None]
    for block in cls.allowed_blocks:
        table = cls.key_table(b"a table secret", block)
        from_table = cls.from_table(table, block)
        assert np.array_equal(from_table.encrypt(img), cls(b"a table secret", block).encrypt(img))
        assert from_table.fingerprint.startswith(f"{method}:b{block}:table:")


@pytest.mark.parametrize("change,message", [
    ({"K5": [0, 0, 0, 0]}, "unknown steps: 'K5'"),
    ({"K1": [0, 1, 2]}, "needs 4 integers"),
    ({"K1": [0, 1, 1, 2]}, "permutation"),
    ({"K2": [0, 8, 0, 0]}, "range(8)"),
    ({"K3": [0, -1, 0, 0]}, "range(2)"),
    ({"K4": [0.0, 1.0, 2.0, 3.0]}, "needs 4 integers"),
])
def test_bad_tables_are_refused(change, message):
    with pytest.raises(VeilError, match=message.replace("(", r"\(").replace(")", r"\)")):
        masker_class("etc").from_table({**TINY_ETC, **change}, 16)
    missing = dict(TINY_ETC)
    del missing["K3"]
    with pytest.raises(VeilError, match="no step 'K3'"):
        masker_class("etc").from_table(missing, 16)
