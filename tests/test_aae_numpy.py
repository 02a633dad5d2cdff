"""The NumPy forward pass that `veil mask` uses must be the torch encoder's, and must not need torch."""
import numpy as np
import pytest

from veil.errors import VeilError
from veil.maskers import AAEMasker
from veil.maskers.aae import ENCODER_FILE
from veil.maskers.aae_numpy import load_encoder


@pytest.mark.parametrize("standardize", [True, False])
def test_numpy_encoder_gives_the_torch_vectors_and_fingerprint(tmp_path, standardize):
    rng = np.random.default_rng(1)
    train = rng.random((48, 3, 32, 32), dtype=np.float32)
    masker = AAEMasker(gauss_dim=10, cat_dim=3, channels=8, epochs=1, batch_size=16,
                       standardize_gauss=standardize).fit(train, progress=False)
    masker.save(tmp_path / "m")
    encoder = load_encoder(tmp_path / "m" / ENCODER_FILE, standardize)
    pixels = rng.integers(0, 256, (37, 32, 32, 3), dtype=np.uint8)  # not a multiple of the batch size
    expected = masker.transform(pixels)
    got = encoder(pixels, batch_size=16)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-5)
    np.testing.assert_allclose(got[:, 10:].sum(axis=1), 1, atol=1e-5)  # categorical part: probabilities
    assert encoder.fingerprint == masker.fingerprint


def test_weights_of_another_network_are_refused_by_file(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / ENCODER_FILE
    save_file({"features.0.weight": np.zeros((2, 2), dtype=np.float32)}, str(path))
    with pytest.raises(VeilError, match=f"{ENCODER_FILE}: not an AAE encoder's weights"):
        load_encoder(path, True)
