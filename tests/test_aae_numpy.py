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
    encoder = load_encoder(tmp_path / "m" / ENCODER_FILE, {"channels": 8, "gauss_dim": 10, "cat_dim": 3,
                                                            "standardize_gauss": standardize})
    pixels = rng.integers(0, 256, (37, 32, 32, 3), dtype=np.uint8)  # not a multiple of the batch size
    expected = masker.transform(pixels)
    got = encoder(pixels, batch_size=16)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-5)
    np.testing.assert_allclose(got[:, 10:].sum(axis=1), 1, atol=1e-5)  # categorical part: probabilities
    assert encoder.fingerprint == masker.fingerprint
    floats = (pixels / np.float32(255)).transpose(0, 3, 1, 2)  # float images, channels first
    np.testing.assert_allclose(encoder(floats, batch_size=64), expected, atol=2e-5, rtol=1e-5)


def test_weights_of_another_network_are_refused_by_file(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / ENCODER_FILE
    save_file({"features.0.weight": np.zeros((2, 2), dtype=np.float32)}, str(path))
    with pytest.raises(VeilError, match=f"{ENCODER_FILE}: weights do not fit this architecture"):
        load_encoder(path, {"channels": 8, "gauss_dim": 10, "cat_dim": 3, "standardize_gauss": True})


def test_veil_mask_with_a_trained_masker_imports_neither_torch_nor_scikit_learn(trained_masker, image_tree, tmp_path):
    """`veil mask --masker DIR` runs the encoder in NumPy: torch's import alone outlasts a 10k-image mask (issue
    12). Its vectors and fingerprint are the library's (torch) own."""
    import subprocess
    import sys

    from veil.data import load
    from veil.masked import MaskedSet

    out = tmp_path / "m.npz"
    code = ("import sys\nfrom veil.cli import main\nmain(sys.argv[1:])\n"
            "print([m for m in ('torch', 'sklearn', 'skimage', 'matplotlib') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code, "mask", "--masker", str(trained_masker[0]), "--data",
                           str(image_tree), "--split", "train", "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    masked, masker = MaskedSet.load(out), trained_masker[1]
    np.testing.assert_allclose(masked.data, masker.transform(load(str(image_tree), split="train")), atol=2e-5, rtol=1e-5)
    assert masked.fingerprint == masker.fingerprint
    assert masked.meta["latent_conformity"] == pytest.approx(masker.conformity(masked.data))


def test_the_ks_statistic_matches_scipy():
    """`veil mask` records the Gaussian KS statistic without SciPy; it must agree with SciPy's kstest, also for
    shifted, scaled and heavy-tailed columns and values beyond the table's +-9."""
    from scipy import stats

    from veil.metrics import ks_statistics

    rng = np.random.default_rng(0)
    columns = np.stack([rng.standard_normal(3000), 1.3 * rng.standard_normal(3000) + 0.2,
                        rng.standard_t(2, 3000), rng.uniform(-12, 12, 3000)], axis=1).astype(np.float32)
    expected = [stats.kstest(columns[:, j].astype(np.float64), "norm").statistic for j in range(columns.shape[1])]
    np.testing.assert_allclose(ks_statistics(columns), expected, atol=1e-6)


def test_the_encoder_gives_the_same_bytes_on_any_number_of_threads(tmp_path):
    """Workers split the images into shares of whole batches; each row's vector must not depend on the split, nor on
    the BLAS's own thread count (a multi-threaded OpenBLAS sums in another order: `veil mask` in one process and in
    two then wrote different bytes)."""
    from threadpoolctl import threadpool_limits

    masker = AAEMasker(gauss_dim=10, cat_dim=3, channels=8, epochs=1, batch_size=16)
    masker.fit(np.random.default_rng(0).random((48, 3, 32, 32), dtype=np.float32), progress=False)
    masker.save(tmp_path / "m")
    encoder = load_encoder(tmp_path / "m" / ENCODER_FILE, {"channels": 8, "gauss_dim": 10, "cat_dim": 3,
                                                            "standardize_gauss": True})
    pixels = np.random.default_rng(2).integers(0, 256, (75, 32, 32, 3), dtype=np.uint8)
    with threadpool_limits(limits=1, user_api="blas"):
        one = encoder(pixels, batch_size=8, threads=1)
    with threadpool_limits(limits=4, user_api="blas"):
        for threads in (1, 2, 3, 20):
            np.testing.assert_array_equal(encoder(pixels, batch_size=8, threads=threads), one)


def test_both_faces_resolve_and_check_a_configuration_alike():
    """One default and one check: a manifest that leaves the channels out means AAEConfig's, and what training
    refuses, masking refuses too."""
    from veil.maskers.aae_numpy import AAEConfig, architecture
    from veil.maskers.base import build_from_config

    assert architecture({}, "m")["channels"] == AAEConfig.channels == AAEMasker().channels
    for bad in ({"channels": 2048}, {"schedule": "sometimes"}, {"bogus": 1}):
        with pytest.raises(VeilError, match="invalid masker configuration"):
            architecture(bad, "m")
        with pytest.raises(VeilError, match="invalid masker configuration|must be"):
            build_from_config(AAEMasker, bad, "m")
