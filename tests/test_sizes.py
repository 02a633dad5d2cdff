"""Any image size (issue 25): images keep their own size, `size`/`resize` resize only when asked, mixed sizes are
refused naming them, and the keyed schemes, filters and the AAE work at (or refuse) the size they are given."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from veil.data import load
from veil.errors import VeilError


def write_pngs(folder, sizes, seed=0):
    """One random RGB PNG per (height, width) in `sizes`, in `folder`."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return folder


def test_a_folder_keeps_its_own_size(tmp_path):
    images = load(str(write_pngs(tmp_path / "flat", [(300, 200)] * 2)), require_labels=False)
    assert images.images.shape == (2, 3, 300, 200) and images.size == (300, 200)


def test_mixed_sizes_are_refused_naming_them(tmp_path):
    folder = write_pngs(tmp_path / "mixed", [(200, 300), (200, 300), (64, 64), (32, 32)])
    with pytest.raises(VeilError, match=r"images have 3 sizes \(200x300, 64x64, 32x32\); give --size"):
        load(str(folder), require_labels=False)


@pytest.mark.parametrize("mode", ["squash", "crop", "pad"])
def test_size_with_each_resize_mode_gives_that_shape(tmp_path, mode):
    folder = write_pngs(tmp_path / "mixed", [(200, 300), (64, 64), (32, 48)])
    images = load(str(folder), require_labels=False, size=(40, 56), resize=mode)
    assert images.images.shape == (3, 3, 40, 56)
    assert load(str(folder), require_labels=False, size=24, resize=mode).size == (24, 24)


def test_pad_centres_on_black_and_crop_keeps_the_centre(tmp_path):
    rng = np.random.default_rng(1)
    wide = rng.integers(1, 256, (10, 20, 3), dtype=np.uint8)
    Image.fromarray(wide).save(write_pngs(tmp_path / "w", []) / "wide.png")
    padded = load(str(tmp_path / "w"), require_labels=False, size=20, resize="pad", pixels=True).images[0]
    assert (padded[:, :5] == 0).all() and (padded[:, 15:] == 0).all() and padded[:, 5:15].all()
    cropped = load(str(tmp_path / "w"), require_labels=False, size=10, resize="crop", pixels=True).images[0]
    np.testing.assert_array_equal(cropped, wide[:, 5:15].transpose(2, 0, 1))


def test_bad_size_or_mode_is_one_line(tmp_path):
    folder = write_pngs(tmp_path / "f", [(8, 8)])
    with pytest.raises(VeilError, match="a size is N or H,W"):
        load(str(folder), require_labels=False, size="8,x")
    with pytest.raises(VeilError, match="--resize takes squash, crop, pad"):
        load(str(folder), require_labels=False, size=8, resize="fill")


def test_an_npz_keeps_its_size(tmp_path):
    np.savez(tmp_path / "a.npz", images=np.zeros((3, 64, 64, 3), np.uint8))
    assert load(str(tmp_path / "a.npz"), require_labels=False).size == (64, 64)
    assert load(str(tmp_path / "a.npz"), require_labels=False, size=(32, 16)).size == (32, 16)


# ---------------------------------------------------------------- keyed schemes and filters at any size

SECRET = b"a sixteen-byte+ secret for sizes"


@pytest.mark.parametrize("method,block", [("etc", 16), ("le", 4), ("ele", 4), ("pe", 1), ("scramble", 8)])
@pytest.mark.parametrize("size", [(224, 224), (64, 96)])
def test_keyed_schemes_round_trip_bit_exact_at_any_size(method, block, size):
    from veil.schemes.base import scheme_class

    pixels = np.random.default_rng(0).integers(0, 256, (1, *size, 3), dtype=np.uint8)
    scheme = scheme_class(method)(SECRET, block)
    masked = scheme.encrypt(pixels)
    assert masked.shape == pixels.shape and not np.array_equal(masked, pixels)
    np.testing.assert_array_equal(scheme.decrypt(masked), pixels)
    chw = pixels.transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(scheme.transform(chw), masked.transpose(0, 3, 1, 2))  # either layout
    np.testing.assert_array_equal(scheme_class(method)(SECRET, block).inverse_transform(scheme.transform(chw)), chw)


def test_one_secret_gives_each_size_its_own_table_and_keeps_the_32x32_one():
    from veil.schemes.etc import EtC

    at32, at224 = EtC.key_table(SECRET, 16), EtC.key_table(SECRET, 16, (224, 224))
    assert at32["K1"].shape == (1, 4) and at224["K1"].shape == (1, 196)
    np.testing.assert_array_equal(at32["K1"], EtC.key_table(SECRET, 16, 32)["K1"])
    table_scheme = EtC(table=at224, block=16, size=224)
    pixels = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    np.testing.assert_array_equal(table_scheme.encrypt(pixels), EtC(SECRET, 16).encrypt(pixels))
    with pytest.raises(VeilError, match="built for 224x224 images, got 32x32"):
        table_scheme.encrypt(pixels[:, :32, :32])


@pytest.mark.parametrize("method,block", [("etc", 16), ("scramble", 8)])
def test_a_block_that_does_not_divide_the_size_is_refused(method, block):
    from veil.schemes.base import scheme_class

    with pytest.raises(VeilError, match=rf"{method} block {block} does not divide the image size 36x64"):
        scheme_class(method)(SECRET, block).transform(np.zeros((1, 3, 36, 64), np.uint8))


@pytest.mark.parametrize("method", ["blur", "randfilter", "iidfilter"])
def test_filters_keep_any_size(method):
    from veil.schemes.base import scheme_class

    scheme = scheme_class(method)(kernel=5) if method == "blur" else scheme_class(method)(SECRET, kernel=5)
    assert scheme.transform(np.random.default_rng(0).random((2, 3, 48, 20), np.float32)).shape == (2, 3, 48, 20)
