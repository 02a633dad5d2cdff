"""Keyed schemes (EtC, LE, ELE, PE, block scrambling): exact inverses, key sensitivity, structure, key handling."""
from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from veil.errors import VeilError
from veil.masked import MaskedSet
from veil.maskers.base import masker_class
from veil.maskers.keyed import KeyedMasker
from veil.keyfiles import read_secret, write_new_key
from veil.keys import hkdf

SCHEMES = ("etc", "le", "ele", "pe", "scramble")
#: EtC (B = 16) of a ramp image under b"known-answer-key": first six values, computed once and frozen
KNOWN_ETC_PREFIX = [46, 47, 45, 43, 44, 42]
images = arrays(np.uint8, st.tuples(st.integers(1, 3), st.just(32), st.just(32), st.just(3)))
secrets_ = st.binary(min_size=8, max_size=48)


@st.composite
def scheme_and_block(draw):
    scheme = draw(st.sampled_from(SCHEMES))
    return scheme, draw(st.sampled_from(masker_class(scheme).allowed_blocks))


def random_images(seed: int, n: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


@settings(max_examples=60, deadline=None)
@given(scheme_and_block(), secrets_, images)
def test_decrypt_inverts_encrypt_bit_exactly(scheme_block, secret, pixels):
    scheme, block = scheme_block
    masker = masker_class(scheme)(secret, block=block)
    encrypted = masker.encrypt(pixels)
    assert encrypted.dtype == np.uint8 and encrypted.shape == pixels.shape
    assert np.array_equal(masker.decrypt(encrypted), pixels)
    floats = pixels.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
    masked = masker.transform(floats)
    assert np.array_equal(masked, encrypted.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255))
    assert np.array_equal(masker.inverse_transform(masked), floats)


@settings(max_examples=30, deadline=None)
@given(scheme_and_block(), secrets_, secrets_, st.integers(0, 2 ** 32 - 1))
def test_other_keys_give_other_outputs_and_do_not_invert(scheme_block, secret, other, seed):
    scheme, block = scheme_block
    # 2x2 scrambling has only 4! = 24 permutations: two keys give the same one with probability 1/24
    assume(secret != other and (scheme, block) != ("scramble", 2))
    pixels = random_images(seed)
    right, wrong = masker_class(scheme)(secret, block=block), masker_class(scheme)(other, block=block)
    encrypted = right.encrypt(pixels)
    assert not np.array_equal(wrong.encrypt(pixels), encrypted)
    assert not np.array_equal(wrong.decrypt(encrypted), pixels)
    assert right.fingerprint != wrong.fingerprint


def test_same_key_same_encryption_and_known_answer():
    """Derivation uses only HKDF/SHAKE (no NumPy RNG): these values must never change, or old data stop decrypting."""
    a, b = masker_class("etc")(b"known-answer-key"), masker_class("etc")(b"known-answer-key")
    ramp = np.arange(32 * 32 * 3, dtype=np.uint32).astype(np.uint8).reshape(1, 32, 32, 3)
    assert np.array_equal(a.encrypt(ramp), b.encrypt(ramp))
    assert a.fingerprint == "etc:b16:" + hkdf(b"known-answer-key", "etc/block=16/fingerprint", 16).hex()
    assert a.encrypt(ramp).reshape(-1)[:6].tolist() == KNOWN_ETC_PREFIX


def test_hkdf_matches_rfc5869_test_case_1():
    okm = hkdf(bytes([0x0B] * 22), bytes(range(0xF0, 0xFA)), 42, salt=bytes(range(13)))
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865")


def block_view(pixels: np.ndarray, block: int) -> np.ndarray:
    per = 32 // block
    return pixels.reshape(len(pixels), per, block, per, block, 3).swapaxes(2, 3).reshape(len(pixels), per * per, -1, 3)


@pytest.mark.parametrize("block", [4, 8, 16])
def test_etc_moves_whole_blocks(block):
    """Blocks with distinct constant values come out as constant blocks holding v or 255 - v of one source block."""
    n_blocks = (32 // block) ** 2
    values = np.arange(n_blocks, dtype=np.uint8) + 1
    pixels = np.repeat(np.repeat(values.reshape(32 // block, 32 // block), block, 0), block, 1)
    pixels = np.repeat(pixels[None, :, :, None], 3, axis=3)
    out = block_view(masker_class("etc")(b"block-test-key", block=block).encrypt(pixels), block)[0]
    assert (out == out[:, :1, :1]).all()
    sources = np.minimum(out[:, 0, 0], 255 - out[:, 0, 0])
    assert sorted(sources.tolist()) == values.tolist()


def test_etc_inverts_about_half_the_blocks_as_a_whole():
    pixels = np.full((1, 32, 32, 3), 10, np.uint8)
    out = block_view(masker_class("etc")(b"negative-positive", block=4).encrypt(pixels), 4)[0]
    inverted = (out == 245).all(axis=(1, 2))
    assert ((out == 10).all(axis=(1, 2)) | inverted).all()
    assert 0.2 < inverted.mean() < 0.8


def test_scramble_keeps_pixels_whole_and_in_their_block():
    pixels = random_images(3, 1)
    out = masker_class("scramble")(b"scramble-key", block=8).encrypt(pixels)
    for before, after in zip(block_view(pixels, 8)[0], block_view(out, 8)[0]):
        assert sorted(map(tuple, before)) == sorted(map(tuple, after))
    assert not np.array_equal(out, pixels)


def test_pe_inverts_and_reorders_channels_per_pixel_only():
    pixels = random_images(4, 1)
    out = masker_class("pe")(b"pixel-key-1").encrypt(pixels)
    folded = lambda p: np.sort(np.minimum(p, 255 - p), axis=-1)  # noqa: E731
    assert np.array_equal(folded(out), folded(pixels))


def test_le_uses_one_pattern_for_all_blocks_and_ele_does_not():
    pixels = np.zeros((1, 32, 32, 3), np.uint8)
    le = block_view(masker_class("le")(b"learnable-key", block=4).encrypt(pixels), 4)[0]
    ele = block_view(masker_class("ele")(b"learnable-key", block=4).encrypt(pixels), 4)[0]
    assert (le == le[:1]).all()
    assert not (ele == ele[:1]).all()


def test_invalid_block_sizes_are_refused():
    """Checked in `fit` (the constructor only stores its arguments), or on first use."""
    with pytest.raises(VeilError, match="block sizes 4, 8, 16"):
        masker_class("etc")(b"some-secret", block=2).fit()
    with pytest.raises(VeilError, match="uint8"):
        masker_class("etc")(b"some-secret").encrypt(np.zeros((1, 32, 32, 3), np.float32))


def test_saved_masker_holds_no_secret_and_refuses_a_wrong_key(tmp_path):
    secret = b"a-very-secret-passphrase"
    masker = masker_class("ele")(secret, block=8)
    masker.save(tmp_path / "m")
    stored = b"".join(p.read_bytes() for p in (tmp_path / "m").iterdir())
    assert secret not in stored and secret.hex().encode() not in stored
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["fingerprint"] == masker.fingerprint
    assert masker_class("ele").load(tmp_path / "m", secret=secret).fingerprint == masker.fingerprint
    with pytest.raises(VeilError, match="wrong key"):
        masker_class("ele").load(tmp_path / "m", secret=b"another-passphrase")


def test_masked_set_stores_keyed_pixels_as_uint8_exactly(tmp_path):
    masker: KeyedMasker = masker_class("etc")(b"storage-key-123")
    floats = random_images(5, 3).transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
    masked = MaskedSet(masker.transform(floats), np.array([0, 1, 0]), ["a", "b"], "etc", masker.fingerprint,
                       {"storage": "uint8"})
    masked.save(tmp_path / "m.npz")
    assert np.load(tmp_path / "m.npz")["data"].dtype == np.uint8
    loaded = MaskedSet.load(tmp_path / "m.npz")
    assert np.array_equal(loaded.data, masked.data)
    assert np.array_equal(masker.inverse_transform(loaded.data), floats)


def test_read_secret_sources_and_errors(tmp_path, monkeypatch):
    key = write_new_key(tmp_path / "k")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert len(read_secret(key)) == 64
    with pytest.raises(VeilError, match="refusing to overwrite"):
        write_new_key(key)
    monkeypatch.setenv("VEIL_TEST_SECRET", "passphrase-from-env")
    assert read_secret(key_env="VEIL_TEST_SECRET") == b"passphrase-from-env"
    with pytest.raises(VeilError, match="exactly one"):
        read_secret()
    with pytest.raises(VeilError, match="exactly one"):
        read_secret(key, "VEIL_TEST_SECRET")
    with pytest.raises(VeilError, match="not set"):
        read_secret(key_env="VEIL_TEST_UNSET_VARIABLE")
    with pytest.raises(VeilError, match="not found"):
        read_secret(tmp_path / "missing")
    (tmp_path / "short").write_text("fifteen-bytes!!\n")
    with pytest.raises(VeilError, match="shorter than 16"):
        read_secret(tmp_path / "short")
