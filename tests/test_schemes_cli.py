"""The command line for the other published schemes: keygen, mask --method, unmask with a key, train an image
model, compress-report and bench encrypt, on a tiny labelled .npz."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from veil.cli import main
from veil.masked import MaskedSet


@pytest.fixture()
def dataset(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    path = tmp_path / "tiny.npz"
    np.savez(path, images=images, labels=np.arange(24) % 2, class_names=np.array(["a", "b"]))
    return path, images


def test_mask_unmask_round_trip_with_a_key_file(tmp_path, dataset, capsys):
    data, images = dataset
    key = tmp_path / "secret.key"
    assert main(["keygen", "--out", str(key)]) == 0
    masked_file = tmp_path / "etc.npz"
    assert main(["mask", "--method", "etc", "--block", "8", "--key-file", str(key), "--data", str(data),
                 "--out", str(masked_file)]) == 0
    masked = MaskedSet.load(masked_file)
    assert masked.method == "etc" and masked.meta["config"] == {"block": 8}
    assert key.read_text().strip().encode() not in masked_file.read_bytes()
    assert main(["unmask", "--masked", str(masked_file), "--key-file", str(key), "--out", str(tmp_path / "png"),
                 "--limit", "3"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "png" / "000002.png")), images[2])
    other = tmp_path / "other.key"
    main(["keygen", "--out", str(other)])
    capsys.readouterr()
    assert main(["unmask", "--masked", str(masked_file), "--key-file", str(other), "--out", str(tmp_path / "x")]) == 2
    assert "wrong key" in capsys.readouterr().err


def test_mask_option_errors_are_one_line(tmp_path, dataset, capsys, monkeypatch):
    data, _ = dataset
    out = str(tmp_path / "m.npz")
    assert main(["mask", "--method", "etc", "--data", str(data), "--out", out]) == 2
    assert main(["mask", "--method", "blur", "--block", "8", "--data", str(data), "--out", out]) == 2
    assert main(["mask", "--data", str(data), "--out", out]) == 2
    monkeypatch.setenv("VEIL_KEY", "a passphrase from the environment")
    assert main(["mask", "--method", "pe", "--key-env", "VEIL_KEY", "--data", str(data), "--out", out]) == 0
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("veil: error:") for line in errors)


def test_train_an_image_model_on_filtered_images(tmp_path, dataset):
    data, _ = dataset
    masked_file = tmp_path / "blur.npz"
    assert main(["mask", "--method", "blur", "--kernel", "3", "--data", str(data), "--out", str(masked_file)]) == 0
    assert main(["train", "--masked", str(masked_file), "--model", "cnn", "--out", str(tmp_path / "cnn"),
                 "--epochs", "1", "--params", '{"widths": [4, 4], "batch_size": 8}']) == 0
    assert main(["evaluate", "--model", str(tmp_path / "cnn"), "--masked", str(masked_file)]) == 0


def test_compress_report_and_bench_write_results_json(tmp_path, dataset):
    data, _ = dataset
    assert main(["compress-report", "--data", str(data), "--out", str(tmp_path / "c")]) == 0
    report = json.loads((tmp_path / "c" / "compress.json").read_text())
    for scheme in ("plain", "etc", "ele", "pe"):
        for fmt in ("jpeg85", "jpeg80", "png"):
            assert report["figures"][f"{scheme}_{fmt}_mb"] > 0
    assert {"command", "commit", "seed", "wall_s", "machine"} <= set(report["meta"])
    assert (tmp_path / "c" / "compress.md").exists()
    assert main(["bench", "encrypt", "--data", str(data), "--json", str(tmp_path / "b.json"),
                 "--repeats", "1"]) == 0
    bench = json.loads((tmp_path / "b.json").read_text())["figures"]
    assert all(bench[f"{s}_images_per_s"] > 0 for s in ("etc", "le", "ele", "pe", "scramble"))


@pytest.mark.parametrize("method, options, message", [("etc", {"secret": b"k" * 32}, "masks with its secret"),
                                                      ("blur", {"kernel": 3}, "takes an AAE masker")])
def test_mask_refuses_a_saved_non_aae_masker_directory(tmp_path, dataset, capsys, method, options, message):
    from veil.maskers.base import masker_class

    masker_class(method)(**options).save(tmp_path / method)
    out = tmp_path / "masked.npz"
    assert main(["mask", "--method", "aae", "--masker", str(tmp_path / method), "--data", str(dataset[0]),
                 "--out", str(out)]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_schemes_are_the_methods_that_need_no_training():
    from veil.maskers.base import MASKERS, masker_class
    from veil.registry import SCHEMES

    assert SCHEMES.names() == [m for m in MASKERS.names() if not masker_class(m).fits_on_data]
    for method in SCHEMES.names():
        scheme, estimator = SCHEMES.get(method), masker_class(method)
        assert estimator.scheme is scheme
        assert all(getattr(estimator, name) == getattr(scheme, name) for name in scheme.SHOWN)


@pytest.mark.parametrize("method", ["etc", "le", "ele", "pe", "scramble", "blur", "randfilter", "iidfilter"])
def test_veil_mask_masks_as_the_estimator_does(method, image_tree):
    """`veil mask` uses the scheme itself, on uint8 pixels for the exact 8-bit schemes: the same masked set, to the
    byte, as the estimator on float images."""
    from veil.data import load
    from veil.maskers.base import masker_class
    from veil.maskers.masking import masking_function as masker_for_masking, masks_pixels
    from veil.workflows import mask_images

    secret = b"two faces, one key"
    cls = masker_class(method)
    options = {"block": cls.allowed_blocks[0]} if "block" in cls.options else {"kernel": 3}
    estimator = cls(secret, **options) if cls.keyed else cls(**options)
    scheme = masker_for_masking(method, secret=secret if cls.keyed else None, **options)
    assert masks_pixels(method) == cls.exact_uint8
    pixels = load(str(image_tree), split="test", pixels=masks_pixels(method))
    assert pixels.images.dtype == (np.uint8 if cls.exact_uint8 else np.float32)
    ours, theirs = mask_images(scheme, pixels), mask_images(estimator, load(str(image_tree), split="test"))
    assert (ours.method, ours.fingerprint, ours.meta) == (theirs.method, theirs.fingerprint, theirs.meta)
    stored = ours.data if cls.exact_uint8 else ours.data.tobytes()
    expected = np.rint(theirs.data * 255).astype(np.uint8) if cls.exact_uint8 else theirs.data.tobytes()
    assert np.array_equal(stored, expected)
