"""Readers for every supported input: image folders, archives, CIFAR pickles, MNIST IDX, .npz, digits.

Each reader returns `Raw`: uint8 (N, H, W, 3) pixels at the images' own size (or the `Resize` asked for), labels
or None, class names. Nothing here unpickles
arbitrary objects: CIFAR pickles go through an allow-list unpickler that only rebuilds NumPy arrays.
"""
from __future__ import annotations

import gzip
import math
import os
import pickle
import re
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from veil.data.convert import Resize, array_to_rgb, decode_image, stack_images
from veil.errors import VeilError
from veil.io.read import open_for_reading, read_bytes, read_error

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip", ".tar.bz2", ".tar.xz")


@dataclass
class Raw:
    pixels: np.ndarray
    labels: np.ndarray | None
    class_names: list[str]


# ---------------------------------------------------------------- folders and archives


def choose_splits(split: str | None, available: list[str], where) -> list[str]:
    """The parts that `--split` names: one ("test"), or several joined by "+" ("train+test").

    Without --split, a source that holds several parts is refused rather than silently merged.
    """
    if split is None:
        if len(available) > 1:
            raise VeilError(f"holds the splits {', '.join(available)}; choose one with --split (or merge them "
                            f"with --split {'+'.join(available)})", where)
        return list(available)
    wanted = split.split("+")
    for name in wanted:
        if name not in available or wanted.count(name) > 1:
            raise VeilError(f"no split named {name!r} (splits here: {', '.join(available) or 'none'})", where)
    return wanted


def read_tree(entries, split: str | None, where: str, resize: Resize | None = None) -> Raw:
    """Build a labelled set from (relative posix path, bytes-loader) pairs (layouts: see `tree_layout`). Each image
    is resized as it is decoded when `resize` is given; without it, images of several sizes are refused."""
    loaders, labels, class_names = tree_layout(entries, split, where)
    return Raw(decode_named(loaders, where, resize), labels, class_names)


def decode_named(loaders, where: str, resize: Resize | None = None) -> np.ndarray:
    """uint8 (N, H, W, 3) of (name, bytes-loader) pairs, each image resized as it is decoded when `resize` is given;
    images of several sizes without it are refused, naming the sizes."""
    fit = resize.image if resize is not None else (lambda pixels: pixels)
    return stack_images([fit(decode_image(load(), f"{where}/{name}")) for name, load in loaders], where)


def tree_layout(entries, split: str | None, where: str) -> tuple[list, np.ndarray | None, list[str]]:
    """The images of (relative posix path, payload) pairs, in order, as (name, payload) pairs, with their labels
    (None when unlabelled) and the class names, decoding nothing: `read_tree`, and the chunked reader of
    `veil.data.stream`, which decodes a chunk at a time.

    Layouts: `file` (unlabelled), `class/file`, `split/class/file`; `split` keeps one top-level part (or several,
    "train+test"); a split/class/file tree with several parts needs it.
    """
    files = sorted((parts, load) for parts, load in ((_parts(name), load) for name, load in entries)
                   if parts and os.path.splitext(parts[-1])[1].lower() in IMAGE_SUFFIXES
                   and not parts[-1].startswith("."))
    if split is not None or {len(p) for p, _ in files} == {3}:
        keep = choose_splits(split, sorted({p[0] for p, _ in files if len(p) > 1}), where)
        files = [(p[1:], load) for p, load in files if len(p) > 1 and p[0] in keep]
    if not files:
        raise VeilError("no images found (empty dataset)", where)
    depths = {len(p) for p, _ in files}
    if len(depths) > 1:
        raise VeilError(f"mixed layout: images at depths {sorted(depths)}; expected class/file or split/class/file", where)
    depth = depths.pop()
    if depth > 3:
        raise VeilError("too deeply nested; expected file, class/file or split/class/file", where)
    named = [("/".join(p), load) for p, load in files]
    if depth == 1:
        return named, None, []
    names = [p[-2] for p, _ in files]
    class_names = sorted(set(names))
    index = {name: i for i, name in enumerate(class_names)}
    return named, np.array([index[n] for n in names], dtype=np.int64), class_names


def _parts(name: str) -> tuple[str, ...]:
    """The parts of a relative posix name, as PurePosixPath gives them (no empty or "." parts), at a fraction of
    its cost per file."""
    return tuple(part for part in name.split("/") if part and part != ".")


def list_files(root: Path) -> list[tuple[str, str, os.stat_result]]:
    """Every regular file under `root`: (posix name relative to it, path, stat), links to files and folders followed.

    Refused, naming the entry, where a plain rglob would raise or silently skip: a symlink loop, a dangling link, a
    name that is not UTF-8, an unreadable folder, and a device, FIFO or socket.
    """
    found: list = []
    _walk(os.fspath(root), "", found, frozenset())
    return sorted(found, key=lambda item: item[0])


def _walk(folder: str, prefix: str, found: list, ancestors: frozenset) -> None:
    """Plain strings and os calls, not pathlib: this runs once per file, and pathlib cost more than the reading."""
    try:
        info = os.stat(folder)
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise read_error(exc, folder) from None
    identity = (info.st_dev, info.st_ino)
    if identity in ancestors:
        raise VeilError("symlink loop: this folder leads back to one that contains it", folder)
    for name in names:
        path = os.path.join(folder, name)
        _check_utf8(name, path)
        try:
            entry = os.stat(path)
        except OSError as exc:
            raise read_error(exc, path) from None
        if stat.S_ISDIR(entry.st_mode):
            _walk(path, f"{prefix}{name}/", found, ancestors | {identity})
        elif stat.S_ISREG(entry.st_mode):
            found.append((prefix + name, path, entry))
        else:
            raise VeilError("not a regular file or folder (a device, FIFO or socket); refused", path)


def _check_utf8(name: str, where) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise VeilError("name is not valid UTF-8; rename it", where) from None


def read_folder(path: Path, split: str | None, files: list, resize: Resize | None = None) -> Raw:
    """`files`: `list_files(path)`, which the caller has made already (for the decode cache's key)."""
    entries = [(name, _reader(file)) for name, file, _ in files]
    return read_tree(entries, split, str(path), resize)


def _reader(path: str):
    return lambda: read_bytes(path)


def read_archive(path: Path, split: str | None, resize: Resize | None = None) -> Raw:
    """Read images straight from a tar/zip archive, without extracting it to disk.

    A member that could escape a folder if extracted (absolute, `..`), a link or a special file is refused, never
    skipped: an archive that holds one was not made by a plain `tar`/`zip` of an image folder.
    """
    with open_for_reading(path) as handle:
        try:
            if path.name.lower().endswith(".zip"):
                entries = _zip_entries(handle, path)
            else:
                entries = _plain_tar_entries(handle, path)
                if entries is None:
                    handle.seek(0)
                    entries = _tar_entries(handle, path)
        except VeilError:
            raise
        except Exception as exc:  # tarfile, zipfile and their decompressors raise many types on damaged bytes
            raise VeilError(f"corrupt or truncated archive ({type(exc).__name__}: {_first_line(exc)})", path) from None
    return read_tree(entries, split, str(path), resize)


def _zip_entries(handle, path: Path) -> list:
    with zipfile.ZipFile(handle) as archive:
        return [(info.filename, _constant(archive.read(info))) for info in zip_files(archive, path)]


def zip_files(archive: zipfile.ZipFile, path: Path):
    """The regular files of an open zip archive, as `tar_files` gives a tar's: each name checked, folders passed
    over, a link or special file refused; for both readers, whole (here) and streamed (`veil.data.stream`)."""
    for info in archive.infolist():
        _check_member(info.filename, path)
        kind = stat.S_IFMT(info.external_attr >> 16)
        if info.is_dir():
            continue
        if kind not in (0, stat.S_IFREG):
            raise VeilError(f"member {info.filename!r} is a {_kind_name(kind)}; archives holding links or special "
                            "files are refused", path)
        yield info


TAR_BLOCK = 512
_REGULAR, _FOLDER = (ord("0"), 0), ord("5")


def _plain_tar_entries(handle, path: Path) -> list | None:
    """The members of a plain tar or tar.gz of regular files and folders (what `tar czf` of an image folder makes),
    parsed from memory: Python's tarfile spends most of a 60,000-image archive's read building one TarInfo per
    member. None for anything else: another compression, long names (GNU or pax headers), links or special files, a
    bad checksum or a truncated member; `_tar_entries` then reads it with tarfile's own checks and errors."""
    if not path.name.lower().endswith((".tar", ".tar.gz", ".tgz")):
        return None
    try:
        data = handle.read()
        if data[:2] == b"\x1f\x8b":
            data = zlib.decompress(data, wbits=16 + zlib.MAX_WBITS)
    except (OSError, zlib.error):
        return None
    offsets, entries = [], []
    offset = 0
    while offset + TAR_BLOCK <= len(data) and data[offset] != 0:
        header = data[offset:offset + TAR_BLOCK]
        kind, size = header[156], _octal(header[124:136])
        end = offset + TAR_BLOCK + (size or 0)
        if kind not in (*_REGULAR, _FOLDER) or header[257:262] != b"ustar" or size is None or end > len(data):
            return None
        name = header[:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        if header[257:263] == b"ustar\0" and header[345]:  # POSIX ustar: a long name's leading folders
            name = header[345:500].split(b"\0", 1)[0].decode("utf-8", "surrogateescape") + "/" + name
        _check_member(name, path)
        offsets.append(offset)
        if kind != _FOLDER:
            entries.append((name, _constant(data[offset + TAR_BLOCK:end])))
        offset = offset + TAR_BLOCK + -(-size // TAR_BLOCK) * TAR_BLOCK
    return entries if offsets and _checksums_match(data, offsets) else None


def _octal(field: bytes) -> int | None:
    digits = field.rstrip(b" \0")
    try:
        return int(digits or b"0", 8)
    except ValueError:
        return None  # base-256 or damaged: tarfile decides


def _checksums_match(data: bytes, offsets: list[int]) -> bool:
    """Every header's stored checksum against the sum of its bytes (the checksum field itself counted as spaces),
    for all headers at once."""
    headers = np.frombuffer(data, np.uint8, count=len(data) // TAR_BLOCK * TAR_BLOCK).reshape(-1, TAR_BLOCK)
    headers = headers[np.asarray(offsets) // TAR_BLOCK]
    sums = headers.sum(axis=1, dtype=np.int64) - headers[:, 148:156].sum(axis=1, dtype=np.int64) + 8 * ord(" ")
    stored = [_octal(bytes(field)) for field in headers[:, 148:156]]
    return None not in stored and np.array_equal(sums, np.asarray(stored, dtype=np.int64))


def _tar_entries(handle, path: Path) -> list:
    with tarfile.open(fileobj=handle, mode="r:*") as archive:
        return [(member.name, _constant(archive.extractfile(member).read())) for member in tar_files(archive, path)]


def tar_files(archive: tarfile.TarFile, path: Path):
    """The regular files of an open tar archive, in order, each name checked (`_check_member`); folders are passed
    over, and a link or special file is refused. The one check of both readers: whole (here) and streamed
    (`veil.data.stream`)."""
    for member in archive:
        _check_member(member.name, path)
        if member.isdir():
            continue
        if not member.isfile():
            kind = "hard link" if member.islnk() else _kind_name(_TAR_KINDS.get(member.type, 0))
            raise VeilError(f"member {member.name!r} is a {kind}; archives holding links or special files are "
                            "refused", path)
        yield member


_TAR_KINDS = {tarfile.SYMTYPE: stat.S_IFLNK, tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK,
              tarfile.FIFOTYPE: stat.S_IFIFO}


def _kind_name(kind: int) -> str:
    names = {stat.S_IFLNK: "symlink", stat.S_IFCHR: "character device", stat.S_IFBLK: "block device",
             stat.S_IFIFO: "FIFO", stat.S_IFSOCK: "socket", stat.S_IFDIR: "directory"}
    return names.get(kind, "special file")


def _check_member(name: str, where: Path) -> None:
    """Refuse a member name that is absolute, climbs out with `..`, or is not UTF-8 (tar keeps raw bytes)."""
    parts = re.split(r"[/\\]", name)
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts:
        raise VeilError(f"unsafe member name {name!r} (absolute, or leading out of the archive with '..'); refused",
                        where)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise VeilError(f"member name {name!r} is not valid UTF-8; refused", where) from None


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
    with open_for_reading(path) as handle:
        try:
            obj = _ArrayOnlyUnpickler(handle, encoding="bytes").load()
        except Exception as exc:  # the unpickler raises nearly any type on garbage; only arrays are ever rebuilt
            raise VeilError(f"not a valid CIFAR batch ({type(exc).__name__}: {_first_line(exc)})", path) from None
    if not isinstance(obj, dict):
        raise VeilError("not a valid CIFAR batch (expected a dictionary)", path)
    return {(k.decode(errors="replace") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]


#: CIFAR's python batches hold 32x32 images by definition (3072 values a row)
CIFAR_SIDE = 32


def is_cifar_folder(path: Path) -> bool:
    return path.is_dir() and ((path / "batches.meta").exists() or ((path / "meta").exists() and (path / "train").is_file()))


def read_cifar(path: Path, split: str | None) -> Raw:
    cifar100 = not (path / "batches.meta").exists()
    parts = {"test": ["test"], "train": ["train"]} if cifar100 else {
        "test": ["test_batch"], "train": [f"data_batch_{i}" for i in range(1, 6)]}
    chosen = choose_splits(split, list(parts), path)
    meta_file = path / ("meta" if cifar100 else "batches.meta")
    names_key, labels_key = ("fine_label_names", "fine_labels") if cifar100 else ("label_names", "labels")
    class_names = _class_names(_field(read_cifar_pickle(meta_file), names_key, meta_file), meta_file)
    pixels, labels = [], []
    for name in (batch for part in chosen for batch in parts[part]):
        data, batch_labels = _cifar_batch(read_cifar_pickle(path / name), labels_key, path / name)
        pixels.append(data.reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE).transpose(0, 2, 3, 1))
        labels.append(batch_labels)
    return Raw(np.ascontiguousarray(np.concatenate(pixels)), np.concatenate(labels), class_names)


def _class_names(names, where: Path) -> list[str]:
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, (bytes, str)) for n in names):
        raise VeilError("not a valid CIFAR meta file (class names are not a list of strings)", where)
    return [n.decode(errors="replace") if isinstance(n, bytes) else n for n in names]


def _cifar_batch(batch: dict, labels_key: str, where: Path) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 (N, 3072) pixels and int64 labels of one batch, checked against each other."""
    data, labels = _field(batch, "data", where), _field(batch, labels_key, where)
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        labels = None
    if not isinstance(data, np.ndarray) or labels is None or labels.ndim != 1:
        raise VeilError("not a valid CIFAR batch (data must be an array and labels a list of integers)", where)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * CIFAR_SIDE ** 2 or len(data) != len(labels):
        raise VeilError(f"not a valid CIFAR batch (data {data.shape} {data.dtype}, {len(labels)} labels)", where)
    return data, labels


def _field(batch: dict, key: str, where: Path):
    if key not in batch:
        raise VeilError(f"not a valid CIFAR file: key {key!r} missing (has {', '.join(map(str, batch))})", where)
    return batch[key]


# ---------------------------------------------------------------- MNIST IDX

MNIST_PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path: Path, expected_dims: int) -> np.ndarray:
    """Parse an IDX file (.gz or raw); wrong magic, type or counts are errors naming the file."""
    raw = read_bytes(path)
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
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
    if len(raw) - header != math.prod(shape):
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
        folder = path
        found = sorted(name for name, prefix in MNIST_PREFIX.items() if _idx_file(path, prefix, "images-idx3"))
        prefixes = [MNIST_PREFIX[name] for name in choose_splits(split, found, path)]
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
        pixels.append(array_to_rgb(images, str(images_file)))
        labels.append(part_labels)
    return Raw(np.concatenate(pixels), np.concatenate(labels), [str(d) for d in range(10)])


# ---------------------------------------------------------------- .npz and digits


def read_npz(path: Path) -> Raw:
    from veil.io.read import load_npz, string_list

    arrays = load_npz(path)
    if "images" not in arrays:
        raise VeilError(f"an .npz dataset needs an 'images' array (has {', '.join(arrays) or 'none'})", path)
    pixels = array_to_rgb(arrays["images"], str(path))
    if "labels" not in arrays:
        return Raw(pixels, None, [])
    labels = arrays["labels"]
    if labels.dtype.kind not in "iu" or labels.shape != (len(pixels),):
        raise VeilError(f"'labels' must be {len(pixels)} integers, got {labels.dtype} {labels.shape}", path)
    if len(labels) and labels.min() < 0:
        raise VeilError("labels out of range (negative)", path)
    if "class_names" in arrays:
        class_names = string_list(arrays["class_names"], "class_names", path)
    else:
        class_names = [str(i) for i in range(int(labels.max(initial=-1)) + 1)]
    if len(labels) and labels.max() >= len(class_names):
        raise VeilError(f"labels out of range for {len(class_names)} class names", path)
    return Raw(pixels, labels.astype(np.int64), class_names)


#: the size of the built-in `digits` set: scikit-learn's 8x8 digits shown at 32x32, the size of the paper's networks
#: (`digits` is veil's demonstration set, defined at this size; `--size` gives it another)
DIGITS_SIZE = (32, 32)


def read_digits() -> Raw:
    """scikit-learn's bundled 8x8 digits (1,797 images) at DIGITS_SIZE: the default that works anywhere."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    rgb = Resize(DIGITS_SIZE).images(array_to_rgb(pixels, "digits"))
    return Raw(rgb, digits.target.astype(np.int64), [str(d) for d in range(10)])
