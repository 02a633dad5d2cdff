"""Any image size (issue 25): images keep their own size, `size`/`resize` resize only when asked, mixed sizes are
refused naming them, and the keyed schemes, filters and the AAE work at (or refuse) the size they are given."""
from __future__ import annotations

import tarfile

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


def test_the_decode_cache_keeps_each_size_and_mode_apart(tmp_path):
    archive = tmp_path / "set.tar"
    folder = write_pngs(tmp_path / "in", [(20, 40)] * 2)
    with tarfile.open(archive, "w") as tar:
        for png in sorted(folder.iterdir()):
            tar.add(png, arcname=png.name)
    native, squashed, padded = (load(str(archive), require_labels=False, **kw) for kw in
                                ({}, {"size": 20}, {"size": 20, "resize": "pad"}))
    assert native.size == (20, 40) and squashed.size == padded.size == (20, 20)
    assert not np.array_equal(squashed.images, padded.images)
    np.testing.assert_array_equal(load(str(archive), require_labels=False).images, native.images)  # from the cache


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


# ---------------------------------------------------------------- the AAE, and the command line

def test_the_aae_refuses_64x64_naming_both_sizes(tiny_aae):
    from veil.maskers.aae_numpy import NumpyEncoder

    images = np.zeros((2, 3, 64, 64), np.float32)
    with pytest.raises(VeilError, match=r"takes 32x32 images, got 64x64; pass --size 32"):
        tiny_aae.transform(images)
    state = {name: tensor.numpy() for name, tensor in tiny_aae.encoder_.state_dict().items()}
    with pytest.raises(VeilError, match=r"takes 32x32 images, got 64x64; pass --size 32"):
        NumpyEncoder(state)(images)


def _keyed_mask(tmp_path, data, *extra):
    from veil.cli import main

    key = tmp_path / "k.key"
    if not key.exists():
        assert main(["keygen", "--out", str(key)]) == 0
    out = tmp_path / f"masked{len(list(tmp_path.glob('masked*')))}.npz"
    code = main(["mask", "--method", "etc", "--key-file", str(key), "--data", str(data), "--out", str(out), *extra])
    return code, out, key


def test_cli_mask_reports_the_real_shape_and_unmasks_bit_exact(tmp_path, capsys):
    from veil.cli import main
    from veil.masked import MaskedSet

    folder = write_pngs(tmp_path / "in", [(64, 64)] * 3)
    code, out, key = _keyed_mask(tmp_path, folder)
    assert code == 0 and "(3, 64, 64) per image" in capsys.readouterr().out
    assert MaskedSet.load(out).meta["image_shape"] == [3, 64, 64]
    assert main(["unmask", "--masked", str(out), "--key-file", str(key), "--out", str(tmp_path / "png")]) == 0
    back = np.asarray(Image.open(tmp_path / "png" / "000001.png"))
    np.testing.assert_array_equal(back, np.asarray(Image.open(folder / "01.png")))


def test_cli_size_and_resize_and_refusals(tmp_path, capsys):
    folder = write_pngs(tmp_path / "in", [(200, 300), (64, 64), (32, 32)])
    code, _, _ = _keyed_mask(tmp_path, folder)
    assert code == 2 and "images have 3 sizes (200x300, 64x64, 32x32); give --size" in capsys.readouterr().err
    code, _, _ = _keyed_mask(tmp_path, folder, "--size", "48,32", "--resize", "crop")
    assert code == 0 and "(3, 48, 32) per image" in capsys.readouterr().out
    code, _, _ = _keyed_mask(tmp_path, folder, "--size", "40")
    assert code == 2 and "etc block 16 does not divide the image size 40x40" in capsys.readouterr().err
    code, _, _ = _keyed_mask(tmp_path, folder, "--resize", "pad")
    assert code == 2 and "--resize needs --size" in capsys.readouterr().err


def test_the_etc_key_space_is_stated_for_the_actual_size_and_block(tmp_path):
    from veil.schemes.etc import EtC, key_space_bits

    at224 = key_space_bits(16, (224, 224))
    assert at224["blocks"] == 196 and round(at224["arrangement_bits"]) == 1215 and at224["reachable_bits"] == 256
    assert key_space_bits(16)["blocks"] == 4 and round(key_space_bits(16)["bits"]) == 31
    meta = EtC(SECRET, 16).masked_meta(np.zeros((1, 3, 64, 96), np.uint8))
    assert meta["key_space"]["blocks"] == 24
    with pytest.raises(VeilError, match="block 16 does not divide the image size 40x40"):
        key_space_bits(16, (40, 40))


# ---------------------------------------------------------------- attacks at the input's size

def wide_scenes(n: int, seed: int) -> np.ndarray:
    """32x64 scenes: the block-attack tests' 32x32 scenes stretched to twice their width (linear, 8-bit exact)."""
    from test_attacks_block import smooth_images

    scenes = smooth_images(n, seed)
    wide = np.empty((*scenes.shape[:3], 64), np.float32)
    wide[..., 0::2] = scenes
    wide[..., 1::2] = (scenes + np.concatenate([scenes[..., 1:], scenes[..., -1:]], axis=3)) / 2
    return (np.rint(wide * 255) / 255).astype(np.float32)


def side_by_side(n: int, seed: int) -> np.ndarray:
    """32x64 images: two of the block-attack tests' 32x32 scenes side by side (isotropic inside every block, as the
    scrambling solver assumes; a stretched scene is not: there the pixels to the side are closer than those below)."""
    from test_attacks_block import smooth_images

    return np.concatenate([smooth_images(n, seed), smooth_images(n, seed + 1)], axis=3)


@pytest.mark.parametrize("method,block,scenes", [("etc", 8, wide_scenes), ("scramble", 4, side_by_side)])
def test_the_jigsaw_attack_solves_a_non_square_set(method, block, scenes):
    """A 32x64 set: the grid is 4 x 8 blocks, and a whole-image quarter turn is no longer a candidate."""
    from test_attacks_block import blocks_correct, knowledge
    from veil.attacks.jigsaw import JigsawAttack
    from veil.maskers.base import masker_class

    images, public = scenes(300, 1), scenes(300, 5)
    masker = masker_class(method)(SECRET, block).fit()
    attack = JigsawAttack()
    restored = attack.reconstruct(knowledge(masker, images, public))
    assert restored.shape == images.shape and blocks_correct(restored, images, block) > 0.95
    if method == "etc":
        assert attack.details_["grid"] == [4, 8]


def _masked_set(images: np.ndarray, method: str = "etc", block: int = 16):
    from veil.data import ImageSet
    from veil.schemes.base import scheme_class
    from veil.workflows import mask_images

    return mask_images(scheme_class(method)(SECRET, block), ImageSet(images))


def test_attacks_run_at_the_input_size_or_refuse_naming_it():
    from veil.attacks import run_attack
    from veil.data import ImageSet

    images = np.concatenate([side_by_side(40, 1)] * 2, axis=2)  # 64x64
    masked = _masked_set(images)
    outcome = run_attack("jigsaw", "a", masked, ImageSet(images), ImageSet(side_by_side(40, 9).repeat(2, axis=2)))
    assert outcome.reconstructions.shape == images.shape and 0 <= outcome.figures["blocks_correct"] <= 1
    with pytest.raises(VeilError, match=r"the itn attack runs on 32x32 images only, got 64x64; .* --size 32"):
        run_attack("itn", "a", masked, ImageSet(images), ImageSet(images))
    with pytest.raises(VeilError, match=r"the public images are 32x64, the victim's 64x64; give --size"):
        run_attack("fr", "a", masked, ImageSet(images), ImageSet(side_by_side(4, 1)))


def test_compress_report_at_a_non_square_size(tmp_path, capsys):
    import json

    from veil.cli import main

    folder = write_pngs(tmp_path / "in", [(64, 96)] * 2)
    assert main(["compress-report", "--data", str(folder), "--out", str(tmp_path / "c")]) == 0
    report = json.loads((tmp_path / "c" / "compress.json").read_text())
    assert report["config"]["image_size"] == [64, 96] and report["figures"]["etc_png_mb"] > 0
    assert "2 64x96 images" in (tmp_path / "c" / "compress.md").read_text()
