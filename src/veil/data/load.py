"""`load(spec)`: one entry point for every input, with a decoded-pixel cache for slow sources."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from veil.data.photos import PHOTOS, read_photos
from veil.data.convert import Resize
from veil.data.formats import (ARCHIVE_SUFFIXES, Raw, is_cifar_folder, is_mnist, list_files, read_archive,
                               read_cifar, read_digits, read_folder, read_mnist, read_npz)
from veil.data.imageset import ImageSet, to_float_images, to_pixel_images
from veil.data.splits import limit_indices
from veil.errors import VeilError
from veil.defaults import cache_dir
from veil.io.read import read_error
from veil.io.write import atomic_path, write_json

CACHE_VERSION = 2  # 2: images at their own size, or the size asked for (1 made every image 32x32)


def load(spec: str, split: str | None = None, classes=None, require_labels: bool = True,
         limit: int | None = None, pixels: bool = False, size=None, resize: str = "squash") -> ImageSet:
    """Load SPEC (a folder, archive, CIFAR or MNIST folder, .npz, `digits` or `skimage-photos`) as float32 RGB images.

    `split` picks a top-level part (train/test); `classes` keeps those classes, relabelled in that order; `limit`
    keeps N of what remains, the first of each class in proportion (`splits.limit_indices`; a quick run on part of
    a set). `pixels`: the uint8 pixels as decoded
    instead of floats (for the exact 8-bit schemes). Images keep their own size unless `size` (N or (H, W)) is
    given, when `resize` ("squash", "crop" or "pad"; see `veil.data.convert.Resize`) fits every image to it; a
    source whose images differ in size needs `size`.
    """
    if limit is not None and limit < 1:
        raise VeilError(f"the limit must be a positive number of images, got {limit}")
    raw = _read(str(spec), split, Resize.of(size, resize))
    if require_labels and raw.labels is None:
        raise VeilError("images have no labels (a flat folder); this command needs class sub-folders", spec)
    if len(raw.pixels) == 0:
        raise VeilError("empty dataset", spec)
    convert = to_pixel_images if pixels else to_float_images
    images = ImageSet(convert(raw.pixels), raw.labels, raw.class_names, str(spec))
    if classes:
        images = images.select_classes(classes)
        if len(images) == 0:
            raise VeilError("no images in the chosen classes", spec)
    return images if limit is None else images.subset(limit_indices(limit, len(images), images.labels))


def _read(spec: str, split: str | None, resize: Resize | None) -> Raw:
    """A source decoded image by image (a folder, an archive) is resized as it is decoded, so that images of
    several sizes can become one set; an array source (CIFAR, MNIST, .npz, digits) is resized whole here."""
    raw = _read_source(spec, split, resize)
    return raw if resize is None else Raw(resize.images(raw.pixels), raw.labels, raw.class_names)


def _read_source(spec: str, split: str | None, resize: Resize | None) -> Raw:
    if spec == "digits":
        if split is not None:
            raise VeilError("the digits set has no splits; drop --split", spec)
        return read_digits()
    if spec == PHOTOS:
        return read_photos(split, resize)
    path = Path(spec).expanduser()
    try:
        path.stat()
    except OSError as exc:
        raise read_error(exc, path) from None
    if path.is_file() and path.name.lower().endswith(".npz"):
        if split is not None:
            raise VeilError("an .npz dataset has no splits; drop --split", path)
        return read_npz(path)
    if is_cifar_folder(path):
        return read_cifar(path, split)
    if is_mnist(path):
        return read_mnist(path, split)
    if path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES):
        return _cached(path, split, resize, [], lambda: read_archive(path, split, resize))
    if path.is_dir():
        files = list_files(path)
        return _cached(path, split, resize, files, lambda: read_folder(path, split, files, resize))
    raise VeilError("unsupported input (expected a folder, .tar/.tar.gz/.zip, CIFAR or MNIST folder, .npz, or digits)", path)


def _fingerprint(path: Path, split: str | None, resize: Resize | None, files: list) -> str:
    """Identify a source by location, names, sizes and modification times (content hashing 60k files would cost a
    decode), and the resize asked for; `files` is a folder's `list_files`, empty for an archive."""
    entries = [("", path, path.stat()), *files]
    state = [(name, s.st_size, s.st_mtime_ns) for name, _, s in entries]
    fit = None if resize is None else resize.describe()
    return hashlib.sha256(json.dumps([CACHE_VERSION, str(path.resolve()), split, fit, state]).encode()).hexdigest()[:32]


def _cached(path: Path, split: str | None, resize: Resize | None, files: list, read) -> Raw:
    """Decode once (`read()`), then reuse a memory-mapped uint8 .npy keyed by the source's fingerprint."""
    key = _fingerprint(path, split, resize, files)
    pixels_file, index_file = cache_dir() / f"{key}.npy", cache_dir() / f"{key}.json"
    if pixels_file.exists() and index_file.exists():
        try:
            index = json.loads(index_file.read_text())
            pixels = np.load(pixels_file, mmap_mode="r", allow_pickle=False)
            labels = None if index["labels"] is None else np.asarray(index["labels"], dtype=np.int64)
            return Raw(pixels, labels, index["class_names"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged cache entry is rebuilt below
    raw = read()
    try:
        with atomic_path(pixels_file) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, raw.pixels, allow_pickle=False)
        labels = None if raw.labels is None else raw.labels.tolist()
        write_json(index_file, {"source": str(path), "split": split, "labels": labels, "class_names": raw.class_names})
    except VeilError:
        pass  # an unwritable cache only costs speed
    return raw
