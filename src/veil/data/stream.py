"""Images read a chunk at a time, for sets too large to hold (`veil mask --out DIR`): `open_stream(spec)` lists a
source without decoding it, and its chunks (`ImageStream.raw_chunks`, at most `chunk_size` images each) are decoded
one at a time (`decode_chunk`), in this process or in a worker, so that memory holds a chunk, never the set.

Order: a folder's images come in `load`'s order (sorted paths), and so does every source read whole. An archive is
read front to back, in the order of its members (that of `load` when the archive was written sorted, as `tar` of a
sorted listing is), since a compressed tar cannot be read out of order; `--limit` keeps the first images of each
class in that order (`veil.data.splits.limit_indices`).
Folders and archives stream; an .npz, CIFAR or MNIST folder or `digits` is one array, which is read whole and then
handed on in chunks.
"""
from __future__ import annotations

import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from veil.data.convert import Resize
from veil.data.formats import ARCHIVE_SUFFIXES, decode_named, list_files, tar_files, tree_layout, zip_files
from veil.data.imageset import ImageSet, select_labels, to_float_images, to_pixel_images
from veil.data.load import load
from veil.data.splits import limit_indices
from veil.errors import VeilError
from veil.io.read import open_for_reading, read_bytes, read_error

#: pixel bytes of a chunk when no chunk size is given: about 2.5 times that is held per chunk being masked (the
#: decoded images, the masked ones, their encoded shard), so two workers stay well under a gigabyte at any size
CHUNK_BYTES = 64 * 2 ** 20
#: a chunk's image count is a multiple of this (the NumPy AAE masks in batches of 128), between one and 32 of them
CHUNK_UNIT, MAX_UNITS = 128, 32


@dataclass(frozen=True)
class RawChunk:
    """Chunk `index` of a stream, not yet decoded: `entries` (name, path or bytes) of encoded images, or `pixels`
    already decoded (uint8, channels first) for a source read whole; and their labels (None when unlabelled)."""

    index: int
    labels: np.ndarray | None
    entries: list = field(default_factory=list)
    pixels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.entries) if self.pixels is None else len(self.pixels)


@dataclass
class ImageStream:
    """A source listed but not decoded: how many images, their labels and class names, and its chunks."""

    source: str
    count: int
    labels: np.ndarray | None
    class_names: list[str]
    chunk_size: int
    #: (chunk size, indices to skip) -> the chunks of that size whose index is not skipped, in order
    _read: Callable[[int, frozenset], Iterator[RawChunk]]
    #: "sorted" (`load`'s order), "archive" (the members' order) or "whole" (read whole, in `load`'s order)
    order: str = "sorted"
    #: what each image is fitted to (`--size`); None keeps each image's own size
    resize: Resize | None = None

    def __len__(self) -> int:
        return self.count

    @property
    def n_chunks(self) -> int:
        return -(-len(self) // self.chunk_size)

    def raw_chunks(self, skip=frozenset()) -> Iterator[RawChunk]:
        """The chunks not in `skip` (indices of chunks done before), undecoded, in order."""
        return self._read(self.chunk_size, frozenset(skip))

    def chunks(self, pixels: bool = False) -> Iterator[ImageSet]:
        """Every chunk decoded (uint8 pixels with `pixels`, as `load(..., pixels=True)` gives them)."""
        for raw in self.raw_chunks():
            yield self.decode(raw, pixels)

    def decode(self, raw: RawChunk, pixels: bool = False) -> ImageSet:
        """A raw chunk of this stream as an ImageSet: one chunk in memory, uint8 with `pixels`, float32 otherwise."""
        return decode_chunk(raw, self.class_names, self.source, pixels, self.resize)


def decode_chunk(raw: RawChunk, class_names: list[str], source: str = "", pixels: bool = False,
                 resize: Resize | None = None) -> ImageSet:
    """A raw chunk as an ImageSet, its images fitted to `resize` as they are decoded (a chunk of images of
    several sizes without it is refused, naming them)."""
    if raw.pixels is not None:
        images = raw.pixels
    else:
        loaders = [(name, _loader(payload)) for name, payload in raw.entries]
        images = to_pixel_images(decode_named(loaders, source, resize))
    if not pixels:
        images = to_float_images(images.transpose(0, 2, 3, 1))
    return ImageSet(images, raw.labels, list(class_names), source)


def _loader(payload):
    return (lambda: payload) if isinstance(payload, bytes) else (lambda: read_bytes(payload))


def open_stream(spec: str, split: str | None = None, classes=None, require_labels: bool = True,
                limit: int | None = None, chunk_size: int | None = None, size=None,
                resize: str = "squash") -> ImageStream:
    """List SPEC (as `veil.data.load` takes it, `size` and `resize` included) for reading in chunks of at most
    `chunk_size` images (None: as many as `CHUNK_BYTES` of the first image's pixels allow, a multiple of 128)."""
    if chunk_size is not None and chunk_size < 1:
        raise VeilError(f"a chunk holds a positive number of images, got {chunk_size}")
    if limit is not None and limit < 1:
        raise VeilError(f"the limit must be a positive number of images, got {limit}")
    path = Path(str(spec)).expanduser()
    if spec != "digits" and path.is_dir() and not _read_whole(path):
        stream = _folder_stream(path, split, classes, limit, chunk_size)
    elif spec != "digits" and path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES):
        stream = _archive_stream(path, split, classes, limit, chunk_size)
    else:
        stream = _whole_stream(str(spec), split, classes, require_labels, limit, chunk_size, size, resize)
    stream.resize = Resize.of(size, resize)  # a source read whole is resized as it is read; the others per chunk
    if chunk_size is None:
        stream.chunk_size = default_chunk(stream)
    if require_labels and stream.labels is None:
        raise VeilError("images have no labels (a flat folder); this command needs class sub-folders", spec)
    return stream


def default_chunk(stream: ImageStream) -> int:
    """The chunk size for images of the first image's size: `CHUNK_BYTES` of pixels, in whole `CHUNK_UNIT`s."""
    chunks = stream._read(1, frozenset())
    try:
        first = stream.decode(next(chunks), pixels=True).images
    finally:
        chunks.close()  # an archive read no further than its first image
    units = CHUNK_BYTES // (first[0].nbytes * CHUNK_UNIT)
    return CHUNK_UNIT * min(MAX_UNITS, max(1, units))


def _read_whole(path: Path) -> bool:
    """CIFAR and MNIST folders hold arrays, not image files: `load` reads them."""
    from veil.data.formats import is_cifar_folder, is_mnist

    return is_cifar_folder(path) or is_mnist(path)


def _whole_stream(spec, split, classes, require_labels, limit, chunk_size, size, resize) -> ImageStream:
    data = load(spec, split=split, classes=classes, require_labels=require_labels, limit=limit, pixels=True,
                size=size, resize=resize)

    def read(chunk_size, skip):
        for index, start in enumerate(range(0, len(data), chunk_size)):
            if index not in skip:
                part = data.subset(slice(start, start + chunk_size))
                yield RawChunk(index, part.labels, pixels=part.images)

    return ImageStream(data.source, len(data), data.labels, data.class_names, chunk_size, read, "whole")


def _chosen(named: list, labels, class_names, classes, limit, where):
    """The (name, payload) pairs, labels and class names left by --classes and --limit."""
    if classes:
        if labels is None:
            raise VeilError("these images have no labels (a flat folder); --classes needs class sub-folders", where)
        keep, labels, class_names = select_labels(labels, class_names, classes, where)
        named = [item for item, kept in zip(named, keep) if kept]
        if not named:
            raise VeilError("no images in the chosen classes", where)
    if limit is not None:
        kept = limit_indices(limit, len(named), labels)
        named, labels = [named[i] for i in kept], None if labels is None else labels[kept]
    return named, labels, class_names


def _labels_of(labels, start: int, stop: int):
    return None if labels is None else labels[start:stop]


def _folder_stream(path: Path, split, classes, limit, chunk_size) -> ImageStream:
    entries = [(name, file) for name, file, _ in list_files(path)]
    named, labels, class_names = _chosen(*tree_layout(entries, split, str(path)), classes, limit, str(path))

    def read(chunk_size, skip):
        for index, start in enumerate(range(0, len(named), chunk_size)):
            if index not in skip:
                yield RawChunk(index, _labels_of(labels, start, start + chunk_size), named[start:start + chunk_size])

    return ImageStream(str(path), len(named), labels, class_names, chunk_size, read)


def _archive_stream(path: Path, split, classes, limit, chunk_size) -> ImageStream:
    """Two passes over the archive: the names first (for the layout, labels and classes), then, chunk by chunk,
    the bytes of the members chosen, in the members' order."""
    members = [(name, position) for position, (name, _) in enumerate(_members(path))]
    named, labels, class_names = tree_layout(members, split, str(path))
    by_position = sorted(range(len(named)), key=lambda i: named[i][1])
    named = [named[i] for i in by_position]
    labels = None if labels is None else labels[by_position]
    named, labels, class_names = _chosen(named, labels, class_names, classes, limit, str(path))
    order = "sorted" if [name for name, _ in named] == sorted(name for name, _ in named) else "archive"

    def read(chunk_size, skip):
        wanted = {position: i for i, (_, position) in enumerate(named)}
        batch: list = []
        for position, (name, data) in enumerate(_members(path)):
            if position not in wanted:
                continue
            i = wanted[position]
            index = i // chunk_size
            if index not in skip:
                batch.append((name, data()))
            if (i + 1) % chunk_size == 0 or i + 1 == len(named):
                if index not in skip:
                    yield RawChunk(index, _labels_of(labels, index * chunk_size, i + 1), batch)
                batch = []
                if i + 1 == len(named):
                    return

    return ImageStream(str(path), len(named), labels, class_names, chunk_size, read, order)


def _members(path: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(name, bytes-loader) of each regular member of a tar or zip archive, front to back; folders are skipped,
    links and special files refused (as `veil.data.formats.read_archive` does). A tar member's loader works only
    until the next member is asked for."""
    handle = open_for_reading(path)
    try:
        with handle:
            if path.name.lower().endswith(".zip"):
                yield from _zip_members(handle, path)
            else:
                yield from _tar_members(handle, path)
    except VeilError:
        raise
    except OSError as exc:
        raise read_error(exc, path) from None
    except Exception as exc:  # tarfile, zipfile and their decompressors raise many types on damaged bytes
        raise VeilError(f"corrupt or truncated archive ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})",
                        path) from None


def _zip_members(handle, path: Path):
    with zipfile.ZipFile(handle) as archive:
        for info in zip_files(archive, path):
            yield info.filename, lambda info=info: archive.read(info)


def _tar_members(handle, path: Path):
    with tarfile.open(fileobj=handle, mode="r|*") as archive:
        for member in tar_files(archive, path):
            data = archive.extractfile(member)
            yield member.name, data.read
