"""Readers for every supported input: image folders, archives, CIFAR pickles, MNIST IDX, .npz, digits.

Each reader returns `Raw`: uint8 (N, 32, 32, 3) pixels, labels or None, class names. Nothing here unpickles
arbitrary objects: CIFAR pickles go through an allow-list unpickler that only rebuilds NumPy arrays.
"""
from __future__ import annotations

import gzip
import pickle
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from veil.data.convert import array_to_rgb32, decode_image
from veil.errors import VeilError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip", ".tar.bz2", ".tar.xz")


@dataclass
class Raw:
    pixels: np.ndarray
    labels: np.ndarray | None
    class_names: list[str]


# ---------------------------------------------------------------- folders and archives


def read_tree(entries, split: str | None, where: str) -> Raw:
    """Build a labelled set from (relative posix path, bytes-loader) pairs.

    Layouts: `file` (unlabelled), `class/file`, `split/class/file`; `split` keeps one top-level part.
    """
    files = sorted((PurePosixPath(name).parts, load) for name, load in entries
                   if PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES and not PurePosixPath(name).name.startswith("."))
    if split is not None:
        parts = sorted({p[0] for p, _ in files if len(p) > 1})
        files = [(p[1:], load) for p, load in files if len(p) > 1 and p[0] == split]
        if not files:
            raise VeilError(f"no split named {split!r} (top-level parts: {', '.join(parts) or 'none'})", where)
    if not files:
        raise VeilError("no images found (empty dataset)", where)
    depths = {len(p) for p, _ in files}
    if len(depths) > 1:
        raise VeilError(f"mixed layout: images at depths {sorted(depths)}; expected class/file or split/class/file", where)
    depth = depths.pop()
    if depth > 3:
        raise VeilError("too deeply nested; expected file, class/file or split/class/file", where)
    pixels = np.stack([decode_image(load(), f"{where}/{'/'.join(p)}") for p, load in files])
    if depth == 1:
        return Raw(pixels, None, [])
    names = [p[-2] for p, _ in files]
    class_names = sorted(set(names))
    index = {name: i for i, name in enumerate(class_names)}
    return Raw(pixels, np.array([index[n] for n in names], dtype=np.int64), class_names)


def read_folder(path: Path, split: str | None) -> Raw:
    entries = [(f.relative_to(path).as_posix(), f.read_bytes) for f in path.rglob("*") if f.is_file()]
    return read_tree(entries, split, str(path))


def read_archive(path: Path, split: str | None) -> Raw:
    """Read images straight from a tar/zip archive, without extracting it to disk."""
    try:
        if path.name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                entries = [(info.filename, _constant(archive.read(info))) for info in archive.infolist() if not info.is_dir()]
        else:
            with tarfile.open(path, "r:*") as archive:
                entries = [(member.name, _constant(archive.extractfile(member).read()))
                           for member in archive if member.isfile()]
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        raise VeilError(f"corrupt or truncated archive ({type(exc).__name__}: {exc})", path) from None
    return read_tree(entries, split, str(path))


def _constant(data: bytes):
    return lambda: data


# ---------------------------------------------------------------- CIFAR python pickles


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild NumPy arrays and nothing else: CIFAR batches need no more."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")


def read_cifar_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            obj = _ArrayOnlyUnpickler(handle, encoding="bytes").load()
    except FileNotFoundError:
        raise VeilError("file not found", path) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, ImportError) as exc:
        raise VeilError(f"not a valid CIFAR batch ({exc})", path) from None
    if not isinstance(obj, dict):
        raise VeilError("not a valid CIFAR batch (expected a dictionary)", path)
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


def is_cifar_folder(path: Path) -> bool:
    return path.is_dir() and ((path / "batches.meta").exists() or ((path / "meta").exists() and (path / "train").is_file()))


def read_cifar(path: Path, split: str | None) -> Raw:
    cifar100 = not (path / "batches.meta").exists()
    parts = {"train": ["train"], "test": ["test"]} if cifar100 else {
        "train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
    if split is not None and split not in parts:
        raise VeilError(f"no split named {split!r} (CIFAR has train and test)", path)
    meta = read_cifar_pickle(path / ("meta" if cifar100 else "batches.meta"))
    names_key, labels_key = ("fine_label_names", "fine_labels") if cifar100 else ("label_names", "labels")
    class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in _field(meta, names_key, path / "meta")]
    pixels, labels = [], []
    for name in parts[split] if split else parts["train"] + parts["test"]:
        batch = read_cifar_pickle(path / name)
        data = np.asarray(_field(batch, "data", path / name))
        batch_labels = np.asarray(_field(batch, labels_key, path / name), dtype=np.int64)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(batch_labels):
            raise VeilError(f"not a valid CIFAR batch (data {data.shape} {data.dtype}, {len(batch_labels)} labels)", path / name)
        pixels.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(batch_labels)
    return Raw(np.ascontiguousarray(np.concatenate(pixels)), np.concatenate(labels), class_names)


def _field(batch: dict, key: str, where: Path):
    if key not in batch:
        raise VeilError(f"not a valid CIFAR file: key {key!r} missing (has {', '.join(map(str, batch))})", where)
    return batch[key]


# ---------------------------------------------------------------- MNIST IDX

MNIST_PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path: Path, expected_dims: int) -> np.ndarray:
    """Parse an IDX file (.gz or raw); wrong magic, type or counts are errors naming the file."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError:
        raise VeilError("file not found", path) from None
    except (OSError, EOFError) as exc:
        raise VeilError(f"corrupt gzip file ({exc})", path) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise VeilError("not an IDX file of unsigned bytes (wrong magic number)", path)
    dims = raw[3]
    if dims != expected_dims:
        raise VeilError(f"IDX file has {dims} dimensions, expected {expected_dims}", path)
    header = 4 + 4 * dims
    if len(raw) < header:
        raise VeilError("truncated IDX header", path)
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    if len(raw) - header != int(np.prod(shape)):
        raise VeilError(f"IDX header promises shape {shape} but the file holds {len(raw) - header} bytes", path)
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _idx_file(folder: Path, prefix: str, kind: str) -> Path | None:
    for name in (f"{prefix}-{kind}-ubyte.gz", f"{prefix}-{kind}-ubyte"):
        if (folder / name).exists():
            return folder / name
    return None


def is_mnist(path: Path) -> bool:
    if path.is_file():
        return "idx3-ubyte" in path.name
    return path.is_dir() and any(_idx_file(path, p, "images-idx3") for p in MNIST_PREFIX.values())


def read_mnist(path: Path, split: str | None) -> Raw:
    if path.is_file():
        folder, prefixes = path.parent, [path.name.split("-images")[0]]
    else:
        if split is not None and split not in MNIST_PREFIX:
            raise VeilError(f"no split named {split!r} (MNIST has train and test)", path)
        folder = path
        prefixes = [MNIST_PREFIX[split]] if split else [p for p in MNIST_PREFIX.values() if _idx_file(path, p, "images-idx3")]
    pixels, labels = [], []
    for prefix in prefixes:
        images_file = _idx_file(folder, prefix, "images-idx3")
        labels_file = _idx_file(folder, prefix, "labels-idx1")
        if images_file is None:
            raise VeilError(f"no {prefix}-images-idx3-ubyte[.gz] file", folder)
        images = read_idx(images_file, 3)
        if labels_file is None:
            raise VeilError(f"no {prefix}-labels-idx1-ubyte[.gz] file beside the images", folder)
        part_labels = read_idx(labels_file, 1).astype(np.int64)
        if len(part_labels) != len(images):
            raise VeilError(f"{len(part_labels)} labels for {len(images)} images", labels_file)
        if part_labels.max(initial=0) > 9:
            raise VeilError("MNIST labels must be digits 0-9", labels_file)
        pixels.append(array_to_rgb32(images, str(images_file)))
        labels.append(part_labels)
    return Raw(np.concatenate(pixels), np.concatenate(labels), [str(d) for d in range(10)])


# ---------------------------------------------------------------- .npz and digits


def read_npz(path: Path) -> Raw:
    from veil.io import load_npz

    arrays = load_npz(path)
    if "images" not in arrays:
        raise VeilError(f"an .npz dataset needs an 'images' array (has {', '.join(arrays) or 'none'})", path)
    pixels = array_to_rgb32(arrays["images"], str(path))
    if "labels" not in arrays:
        return Raw(pixels, None, [])
    labels = arrays["labels"]
    if labels.dtype.kind not in "iu" or labels.shape != (len(pixels),):
        raise VeilError(f"'labels' must be {len(pixels)} integers, got {labels.dtype} {labels.shape}", path)
    if len(labels) and labels.min() < 0:
        raise VeilError("labels out of range (negative)", path)
    if "class_names" in arrays:
        class_names = [str(n) for n in arrays["class_names"]]
    else:
        class_names = [str(i) for i in range(int(labels.max(initial=-1)) + 1)]
    if len(labels) and labels.max() >= len(class_names):
        raise VeilError(f"labels out of range for {len(class_names)} class names", path)
    return Raw(pixels, labels.astype(np.int64), class_names)


def read_digits() -> Raw:
    """scikit-learn's bundled 8x8 digits (1,797 images): the default that works anywhere."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return Raw(array_to_rgb32(pixels, "digits"), digits.target.astype(np.int64), [str(d) for d in range(10)])
