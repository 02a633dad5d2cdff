import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from veil.data import load, random_classes, stratified_split
from veil.errors import VeilError
from conftest import SHARED_DATA


def _check(images, n=None, classes=None, size=(32, 32)):
    assert images.images.dtype == np.float32
    assert images.images.shape[1:] == (3, *size) and images.size == size
    assert 0.0 <= images.images.min() and images.images.max() <= 1.0
    if n is not None:
        assert len(images) == n
    if classes is not None:
        assert images.class_names == classes


def test_folder_with_splits_and_modes(image_tree):
    _check(load(str(image_tree), split="train+test"), 24, ["cat", "dog", "emu"])
    train = load(str(image_tree), split="train")
    _check(train, 18, ["cat", "dog", "emu"])
    assert np.bincount(train.labels).tolist() == [6, 6, 6]
    _check(load(str(image_tree / "test")), 6)


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_archives_match_folder(image_tree, tree_archives, kind):
    folder = load(str(image_tree), split="test")
    archived = load(str(tree_archives[kind]), split="test")
    np.testing.assert_array_equal(folder.images, archived.images)
    np.testing.assert_array_equal(folder.labels, archived.labels)


def test_archive_cache_gives_same_arrays(tree_archives):
    first = load(str(tree_archives["tar.gz"]), split="train")
    second = load(str(tree_archives["tar.gz"]), split="train")
    np.testing.assert_array_equal(first.images, second.images)


def test_classes_select_and_relabel(image_tree):
    subset = load(str(image_tree), split="train+test", classes=["emu", "cat"])
    assert subset.class_names == ["emu", "cat"]
    assert set(subset.labels.tolist()) == {0, 1} and len(subset) == 16


def test_flat_folder_is_unlabelled(tmp_path, image_tree):
    for f in list((image_tree / "train" / "cat").glob("*.png"))[:3]:
        (tmp_path / f.name).write_bytes(f.read_bytes())
    flat = load(str(tmp_path), require_labels=False)
    assert flat.labels is None and len(flat) == 3
    with pytest.raises(VeilError, match="no labels"):
        load(str(tmp_path))


def test_cifar_pickles(cifar_folder):
    _check(load(str(cifar_folder), split="train+test"), 70)
    test = load(str(cifar_folder), split="test")
    _check(test, 20)
    assert test.class_names[0] == "airplane"


def test_mnist_idx_gz_and_raw(mnist_folder):
    _check(load(str(mnist_folder), split="test"), 12, [str(d) for d in range(10)], size=(28, 28))
    _check(load(str(mnist_folder), split="train"), 8, size=(28, 28))
    _check(load(str(mnist_folder), split="test+train"), 20, size=(28, 28))
    _check(load(str(mnist_folder), split="test", size=32), 12)  # the paper's MNIST handling, asked for
    gray = load(str(mnist_folder), split="test").images
    np.testing.assert_array_equal(gray[:, 0], gray[:, 2])  # grayscale became RGB


def test_npz(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", images=rng.random((6, 28, 28)).astype(np.float32), labels=np.array([0, 1] * 3),
             class_names=np.array(["no", "yes"]))
    _check(load(str(tmp_path / "a.npz")), 6, ["no", "yes"], size=(28, 28))
    np.savez(tmp_path / "b.npz", images=rng.integers(0, 255, (4, 3, 32, 32), dtype=np.uint8), labels=np.arange(4))
    _check(load(str(tmp_path / "b.npz")), 4)


def test_digits_default():
    digits = load("digits")
    _check(digits, 1797, [str(d) for d in range(10)])


@pytest.mark.skipif(not (SHARED_DATA / "mnist").exists(), reason="shared MNIST not present")
def test_shared_mnist_test_set():
    _check(load(str(SHARED_DATA / "mnist"), split="test"), 10000, size=(28, 28))


#: md5 of the uncompressed training files, from ../shared/data/README.md
MNIST_TRAIN_MD5 = {"train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
                   "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624"}


@pytest.mark.skipif(not (SHARED_DATA / "mnist" / "train-labels-idx1-ubyte.gz").exists(),
                    reason="shared MNIST training set not present")
def test_shared_mnist_training_set():
    """Table 2's training digits: the official 60,000, the files the data README names."""
    import gzip
    import hashlib

    from veil.data.formats import read_idx

    folder = SHARED_DATA / "mnist"
    for name, md5 in MNIST_TRAIN_MD5.items():
        assert hashlib.md5(gzip.decompress((folder / name).read_bytes())).hexdigest() == md5, name
    labels = read_idx(folder / "train-labels-idx1-ubyte.gz", 1)
    assert read_idx(folder / "train-images-idx3-ubyte.gz", 3).shape == (60000, 28, 28)
    assert len(labels) == 60000 and set(labels.tolist()) == set(range(10))


def test_seeded_helpers():
    names = [str(i) for i in range(10)]
    assert random_classes(names, 3, 7) == random_classes(names, 3, 7)
    assert len(set(random_classes(names, 4, 1))) == 4
    labels = np.repeat(np.arange(3), 20)
    a, b = stratified_split(labels, 0.2, 3)
    assert len(a) == 48 and len(b) == 12


# ---------------------------------------------------------------- the in-memory tar reader


def _tar_bytes(tmp_path, fmt, names, compress=True):
    import io
    import tarfile

    from PIL import Image

    path = tmp_path / f"a{fmt}.tar{'.gz' if compress else ''}"
    with tarfile.open(path, "w:gz" if compress else "w", format=fmt) as tar:
        tar.addfile(_folder("train"))
        for i, name in enumerate(names):
            buffer = io.BytesIO()
            Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(buffer, format="PNG")
            info = tarfile.TarInfo(name)
            info.size = len(buffer.getvalue())
            tar.addfile(info, io.BytesIO(buffer.getvalue()))
    return path


def _folder(name):
    import tarfile

    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


LONG = "train/" + "c" * 120 + "/0.png"  # over tar's 100-byte name field: a ustar prefix, a GNU or a pax header


@pytest.mark.parametrize("fmt", ["USTAR_FORMAT", "GNU_FORMAT", "PAX_FORMAT"])
@pytest.mark.parametrize("names", [["train/cat/0.png", "train/dog/1.png"], ["train/cat/0.png", LONG]])
def test_the_fast_tar_reader_reads_what_tarfile_reads(tmp_path, fmt, names):
    """The in-memory reader returns tarfile's members exactly where it applies (plain ustar and GNU headers), and
    hands every other archive to tarfile (None), so both paths load the same images."""
    import tarfile
    from pathlib import Path

    from veil.data import formats

    path = _tar_bytes(tmp_path, getattr(tarfile, fmt), names)
    with open(path, "rb") as handle:
        fast = formats._plain_tar_entries(handle, Path(path))
        handle.seek(0)
        slow = formats._tar_entries(handle, Path(path))
    needs_extension_header = names[-1] == LONG and fmt != "USTAR_FORMAT"
    assert (fast is None) == needs_extension_header
    if fast is not None:
        assert [(n, f()) for n, f in fast] == [(n, f()) for n, f in slow]
    assert load(str(path), split="train").images.shape == (2, 3, 32, 32)


def test_a_damaged_tar_header_goes_to_tarfile_and_its_error(tmp_path):
    """A header whose checksum does not match is not trusted by the fast reader; tarfile's error is the one shown."""
    import tarfile
    from pathlib import Path

    from veil.data import formats

    path = _tar_bytes(tmp_path, tarfile.USTAR_FORMAT, ["train/cat/0.png", "train/dog/1.png"], compress=False)
    data = bytearray(path.read_bytes())
    data[1] ^= 0x01  # the first header's name, its checksum left as it was
    path.write_bytes(bytes(data))
    with open(path, "rb") as handle:
        assert formats._plain_tar_entries(handle, Path(path)) is None
    with pytest.raises(VeilError, match="corrupt or truncated archive"):
        load(str(path), split="train")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=60), st.integers(1, 70))
def test_limit_keeps_the_first_of_each_class_in_proportion(labels, n):
    """`--limit N`: N positions (all if fewer), ascending, each class's first ones, each class's share within one
    of its proportion."""
    from veil.data import limit_indices

    labels = np.array(labels)
    kept = limit_indices(n, len(labels), labels)
    assert len(kept) == min(n, len(labels)) and np.all(np.diff(kept) > 0)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        mine = kept[labels[kept] == label]
        assert np.array_equal(mine, members[:len(mine)])
        assert abs(len(mine) - len(members) * len(kept) / len(labels)) < 1
    assert np.array_equal(limit_indices(n, len(labels)), np.arange(min(n, len(labels))))  # no labels: the first N


def test_limit_on_a_source_listed_class_by_class_sees_every_class(image_tree, tree_archives):
    """The fixture's train split is listed cat, dog, emu (6 each): `--limit 6` loads two of each, not six cats,
    and the archive's stream keeps the same images."""
    from veil.data.stream import open_stream

    loaded = load(str(image_tree), split="train", limit=6)
    assert np.bincount(loaded.labels).tolist() == [2, 2, 2]
    stream = open_stream(str(tree_archives["tar.gz"]), split="train", limit=6)
    assert np.array_equal(stream.labels, loaded.labels) and stream.count == 6


def test_unmask_pairs_a_limited_masked_set_with_its_sources(image_tree, tmp_path):
    """A set masked with --limit and unmasked against the whole source compares each image with its own original
    (EtC is exact: error 0), and `veil train --limit` and a shard folder's `load(limit)` keep every class too."""
    import json

    from veil.cli import main
    from veil.masked import MaskedSet
    from veil.shards import ShardedSet

    key = tmp_path / "k.key"
    assert main(["keygen", "--out", str(key)]) == 0
    source = ["--data", str(image_tree), "--split", "train"]
    masked = tmp_path / "m.npz"
    assert main(["mask", "--method", "etc", "--block", "8", "--key-file", str(key), *source, "--limit", "6",
                 "--out", str(masked)]) == 0
    assert main(["unmask", "--masked", str(masked), "--key-file", str(key), *source, "--out", str(tmp_path / "r")]) == 0
    assert json.loads((tmp_path / "r" / "mse.json").read_text())["figures"]["reconstruction_mse"] == 0.0
    whole = MaskedSet.load(masked)
    assert np.bincount(whole.limited(3).labels).tolist() == [1, 1, 1]
    shards = tmp_path / "s"
    assert main(["mask", "--method", "etc", "--block", "8", "--key-file", str(key), *source, "--out", str(shards),
                 "--chunk-size", "4"]) == 0
    assert np.bincount(ShardedSet(shards).load(6).labels).tolist() == [2, 2, 2]
