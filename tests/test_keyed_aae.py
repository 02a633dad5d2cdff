"""The keyed AAE: a shared AAE whose latent the key turns and permutes. The right key inverts, a wrong key gives
other vectors, the map is orthogonal, and neither the key nor anything derived from it but the fingerprint is in a
masked file or a repr."""
from __future__ import annotations

import numpy as np
import pytest

from veil.data import load
from veil.errors import VeilError
from veil.maskers.keyed_aae import KeyedAAEMasker, key_matrix
from veil.workflows import mask, train_masker

KEY, OTHER = bytes(range(32)), bytes(range(1, 33))


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keyed") / "base"
    train_masker(load("digits").subset(slice(0, 120)), folder, epochs=1, batch_size=32, progress=False)
    return folder


def test_the_key_map_is_orthogonal_and_depends_on_the_key():
    matrix = key_matrix(KEY, 24)
    np.testing.assert_allclose(matrix @ matrix.T, np.eye(24), atol=1e-10)
    assert not np.allclose(matrix, key_matrix(OTHER, 24))
    np.testing.assert_array_equal(matrix, key_matrix(KEY, 24))


def test_right_key_inverts_and_wrong_key_masks_otherwise(base):
    images = load("digits").images[200:220]
    right, wrong = KeyedAAEMasker(KEY, str(base)), KeyedAAEMasker(OTHER, str(base))
    vectors = right.transform(images)
    assert not np.allclose(vectors, wrong.transform(images), atol=1e-3)
    assert right.fingerprint != wrong.fingerprint
    network = right.network_
    np.testing.assert_allclose(right.inverse_transform(vectors), network.inverse_transform(network.transform(images)),
                               atol=1e-4)
    assert "Secret(<redacted>)" in repr(right) and KEY.hex() not in repr(right)


def test_no_key_material_in_the_masked_file(base, tmp_path):
    out = tmp_path / "masked.npz"
    mask(load("digits").subset(slice(200, 230)), out, method="aae-keyed", masker_dir=base, secret=KEY)
    matrix = key_matrix(KEY, KeyedAAEMasker(KEY, str(base)).fit().network_.latent_dim)
    with np.load(out, allow_pickle=False) as stored:  # every member, decompressed
        raw = out.read_bytes() + b"".join(stored[name].tobytes() for name in stored.files)
    for material in (KEY, KEY.hex().encode(), matrix.astype(np.float32).tobytes()[:64], matrix.tobytes()[:64]):
        assert material not in raw


def test_masking_needs_both_the_network_and_the_key(base, tmp_path):
    data = load("digits").subset(slice(0, 5))
    with pytest.raises(VeilError, match="key"):
        mask(data, tmp_path / "a.npz", method="aae-keyed", masker_dir=base)
    with pytest.raises(VeilError, match="--masker"):
        mask(data, tmp_path / "b.npz", method="aae-keyed", secret=KEY)
