"""Sharded masked sets, for sets too large for one `.npz`: a folder of WebDataset tar shards and a manifest.

    manifest.json          format, method, fingerprint, meta (configuration: what a MaskedSet records), class
                           names, how samples are stored, the planned count, and each finished shard (count, sha256)
    shard-000000.tar       members `<key>.<ext>` grouped by key (the sample's index, 9 digits): the sample, and
    shard-000001.tar ...   `<key>.cls` (its label as decimal text) when the set is labelled

WebDataset, Hugging Face `datasets` ("webdataset" builder) and a plain `tarfile` read the shards as they are. A
sample is stored as:
- `.jpg` for a scheme made to be JPEG-compressed (`jpeg_compressible`: EtC, encryption-then-compression), at quality
  `JPEG_QUALITY` with 4:2:0 chroma, as the scheme's 16-pixel blocks are aligned for; lossy: decryption is no longer
  bit-exact, which the manifest states (`storage.lossy`). `lossless=True` (`veil mask --lossless`) stores PNG instead;
- `.png` for the other exact 8-bit schemes (LE, ELE, PE, scrambling): the very pixels;
- `.npy` (float32) for everything else: the AAE's latent vectors, the filters' float images.
Like a MaskedSet, the folder never holds a secret: the manifest's meta is what `masked_meta` records.

The manifest is rewritten after every shard, so that a killed `veil mask` leaves a readable record of the shards it
finished (`complete` false), from which it resumes; a reader refuses a set that is not complete.
"""
from __future__ import annotations

import io
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from veil.data.splits import limit_indices
from veil.errors import VeilError
from veil.io.read import read_json, sha256_file, verify_sha256
from veil.io.write import atomic_path, write_json
from veil.masked import UINT8_STORAGE, MaskedSet

FORMAT = "veil-shards/1"
MANIFEST = "manifest.json"
#: JPEG quality of a sharded EtC set: high enough that the classifiers lose little, the point of EtC being that
#: the encrypted images still compress (paper 003 trains on such JPEGs)
JPEG_QUALITY = 95
#: zlib level of the PNGs: fast, since at archive scale the time matters more than the last few percent of bytes
PNG_LEVEL = 1
KEY_DIGITS = 9
SHARD_NAME = re.compile(r"shard-[0-9]{6,}\.tar")


def shard_name(index: int) -> str:
    return f"shard-{index:06d}.tar"


def shard_index(name: str) -> int:
    """The chunk index of a shard's file name (`shard_name`'s inverse)."""
    return int(name.removeprefix("shard-").removesuffix(".tar"))


def sample_key(index: int) -> str:
    return f"{index:0{KEY_DIGITS}d}"


@dataclass(frozen=True)
class Storage:
    """How a sharded set stores each sample: `ext` "jpg", "png" or "npy"; `quality` for JPEG."""

    ext: str
    quality: int | None = None

    @property
    def lossy(self) -> bool:
        return self.ext == "jpg"

    @classmethod
    def for_masker(cls, masker, lossless: bool = False, quality: int = JPEG_QUALITY) -> "Storage":
        if not 1 <= quality <= 100:
            raise VeilError(f"a JPEG quality is 1 to 100, got {quality}")
        if masker.output != "images" or not masker.exact_uint8:
            return cls("npy")
        return cls("png") if lossless or not masker.jpeg_compressible else cls("jpg", quality)

    def describe(self) -> dict:
        return {"ext": self.ext, "quality": self.quality, "lossy": self.lossy}

    @classmethod
    def from_manifest(cls, entry, where) -> "Storage":
        if not isinstance(entry, dict) or entry.get("ext") not in ("jpg", "png", "npy"):
            raise VeilError("manifest 'storage' names no known sample format (jpg, png or npy)", where)
        return cls(entry["ext"], entry.get("quality"))

    def encode(self, sample: np.ndarray) -> bytes:
        """One sample (an image (3, H, W), uint8 or float in [0, 1], or a vector) as the bytes of its member."""
        if self.ext == "npy":
            buffer = io.BytesIO()
            np.save(buffer, np.asarray(sample, dtype=np.float32), allow_pickle=False)
            return buffer.getvalue()
        pixels = sample if sample.dtype == np.uint8 else (
            np.clip(np.rint(sample * np.float32(255)), 0, 255).astype(np.uint8))
        pixels = np.ascontiguousarray(pixels.transpose(1, 2, 0))
        if self.ext == "jpg":
            import simplejpeg

            return simplejpeg.encode_jpeg(pixels, quality=self.quality, colorspace="RGB", colorsubsampling="420")
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=PNG_LEVEL)
        return buffer.getvalue()

    def decode(self, data: bytes, where) -> np.ndarray:
        """A member's bytes -> the sample: uint8 (3, H, W) for images, float32 for .npy."""
        try:
            if self.ext == "npy":
                return np.load(io.BytesIO(data), allow_pickle=False)
            if self.ext == "jpg":
                import simplejpeg

                pixels = simplejpeg.decode_jpeg(data, colorspace="RGB")
            else:
                from PIL import Image

                with Image.open(io.BytesIO(data)) as image:
                    pixels = np.asarray(image.convert("RGB"))
        except Exception as exc:  # the decoders raise many types on damaged bytes
            raise VeilError(f"unreadable sample ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})",
                            where) from None
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))


# ---------------------------------------------------------------------- writing


def write_shard(path, data: np.ndarray, labels: np.ndarray | None, first: int, storage: Storage) -> dict:
    """Samples `data` (keys from `first` on) and their labels as one tar shard at `path`, written atomically;
    its manifest entry (name, first key, count, bytes, sha256). Members carry no owner, time or mode of this
    machine: the same samples give the same bytes."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as archive:
            for offset, sample in enumerate(data):
                key = sample_key(first + offset)
                _add(archive, f"{key}.{storage.ext}", storage.encode(sample))
                if labels is not None:
                    _add(archive, f"{key}.cls", str(int(labels[offset])).encode())
    return {"name": path.name, "first": first, "count": len(data), "bytes": path.stat().st_size,
            "sha256": sha256_file(path)}


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    archive.addfile(info, io.BytesIO(data))


def write_manifest(folder, manifest: dict) -> None:
    write_json(Path(folder) / MANIFEST, {"format": FORMAT, **manifest})


def read_manifest(folder) -> dict:
    """The manifest of a shard folder, its fields checked for the types readers rely on."""
    path = Path(folder) / MANIFEST
    manifest = read_json(path)
    if manifest.get("format") != FORMAT:
        raise VeilError(f"not a veil shard folder manifest (format is not {FORMAT})", path)
    kinds = {"method": str, "fingerprint": str, "meta": dict, "class_names": list, "shards": list, "complete": bool,
             "labelled": bool, "count": int}
    wrong = [name for name, kind in kinds.items() if not isinstance(manifest.get(name), kind)]
    if wrong:
        raise VeilError(f"manifest fields missing or of the wrong type: {', '.join(wrong)}", path)
    if not all(isinstance(shard, dict) and isinstance(shard.get("name"), str) and SHARD_NAME.fullmatch(shard["name"])
               and isinstance(shard.get("count"), int) for shard in manifest["shards"]):
        raise VeilError("manifest 'shards' must list shard files of this folder (shard-NNNNNN.tar) with their counts",
                        path)
    return manifest


# ---------------------------------------------------------------------- reading


class ShardedSet:
    """A finished shard folder, read a shard at a time (`chunks`) or whole (`load`)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        if not (self.folder / MANIFEST).is_file():
            raise VeilError(f"is a directory without {MANIFEST}: neither a masked .npz nor a shard folder", folder)
        manifest = read_manifest(self.folder)
        where = self.folder / MANIFEST
        if not manifest["complete"]:
            raise VeilError(f"an unfinished masking run ({len(manifest['shards'])} shards written); finish it by "
                            "running the same `veil mask` again", self.folder)
        self.method, self.fingerprint = manifest["method"], manifest["fingerprint"]
        self.meta, self.class_names = dict(manifest["meta"]), [str(name) for name in manifest["class_names"]]
        self.labelled, self.shards = manifest["labelled"], manifest["shards"]
        self.storage = Storage.from_manifest(manifest.get("storage"), where)

    def __len__(self) -> int:
        return sum(shard["count"] for shard in self.shards)

    def require_labels(self, where=None) -> None:
        if not self.labelled:
            raise VeilError("masked set has no labels (it was masked from unlabelled images)", where or self.folder)

    def chunks(self) -> Iterator[MaskedSet]:
        """Each shard as a MaskedSet (float32, as `MaskedSet.load` gives a set), in order."""
        for shard in self.shards:
            data, labels = self.read_shard(shard)
            yield MaskedSet(_as_float(data), labels, list(self.class_names), self.method, self.fingerprint,
                            dict(self.meta))

    def load(self, limit: int | None = None) -> MaskedSet:
        """Every shard (or the samples `--limit` keeps, `MaskedSet.limited`: the first of each class in proportion,
        which needs every shard's labels when the set has them, else the first `limit`, reading only the shards
        that hold them) in one MaskedSet: for sets that fit in memory (the vectors of an AAE, a small image set)."""
        keep = None
        if limit is not None:
            labels = np.concatenate([self.read_shard(shard)[1] for shard in self.shards]) if self.labelled else None
            keep = limit_indices(limit, len(self), labels)
        parts, first = [], 0
        for shard in self.shards:
            mine = slice(None) if keep is None else keep[(keep >= first) & (keep < first + shard["count"])] - first
            first += shard["count"]
            if keep is not None and not len(mine):
                continue
            data, labels = self.read_shard(shard)
            parts.append((data[mine], None if labels is None else labels[mine]))
        labels = np.concatenate([part[1] for part in parts]) if self.labelled else None
        return MaskedSet(_as_float(np.concatenate([part[0] for part in parts])), labels,
                         list(self.class_names), self.method, self.fingerprint, dict(self.meta))

    def part_sizes(self) -> list[int]:
        return [shard["count"] for shard in self.shards]

    def read_part(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Shard `index`'s samples (float32) and labels: what a classifier trains on a part at a time."""
        data, labels = self.read_shard(self.shards[index])
        if labels is None:
            raise VeilError("masked set has no labels (it was masked from unlabelled images)", self.folder)
        return _as_float(data), labels

    def read_shard(self, shard: dict) -> tuple[np.ndarray, np.ndarray | None]:
        """(samples as stored: uint8 images or float32, labels or None) of one shard, checked against the manifest."""
        path = self.folder / shard["name"]
        if isinstance(shard.get("sha256"), str):
            verify_sha256(path, shard["sha256"])
        samples, labels = _read_members(path, self.storage)
        if len(samples) != shard["count"]:
            raise VeilError(f"holds {len(samples)} samples, the manifest says {shard['count']}", path)
        if self.labelled != (labels is not None):
            raise VeilError("labels missing for some samples" if self.labelled else "labels in an unlabelled set",
                            path)
        if labels is not None and (labels.min() < 0 or labels.max() >= len(self.class_names)):
            raise VeilError(f"labels out of range for {len(self.class_names)} classes", path)
        return samples, labels


def _read_members(path: Path, storage: Storage) -> tuple[np.ndarray, np.ndarray | None]:
    samples, labels = {}, {}
    try:
        with tarfile.open(path, "r:") as archive:
            for member in archive:
                if not member.isfile():
                    raise VeilError(f"member {member.name!r} is not a regular file", path)
                key, _, ext = member.name.partition(".")
                data = archive.extractfile(member).read()
                if ext == storage.ext:
                    samples[key] = storage.decode(data, f"{path}:{member.name}")
                elif ext == "cls":
                    labels[key] = _label(data, path, member.name)
    except (tarfile.TarError, OSError) as exc:
        raise VeilError(f"not a readable tar shard ({' '.join(str(exc).split())[:200]})", path) from None
    keys = sorted(samples)
    if labels and sorted(labels) != keys:
        raise VeilError("its samples and labels name different keys", path)
    if not keys:
        return np.zeros((0,)), (np.zeros(0, np.int64) if labels else None)
    if len({samples[key].shape for key in keys}) > 1:
        raise VeilError("its samples differ in shape", path)
    stacked = np.stack([samples[key] for key in keys])
    return stacked, (np.array([labels[key] for key in keys], dtype=np.int64) if labels else None)


def _label(data: bytes, path: Path, name: str) -> int:
    text = data.decode("ascii", "replace").strip()
    if not text.isdigit():
        raise VeilError(f"member {name!r} is not a class number", path)
    return int(text)


def _as_float(data: np.ndarray) -> np.ndarray:
    return data.astype(np.float32) / np.float32(255) if data.dtype == np.uint8 else data.astype(np.float32, copy=False)


# ---------------------------------------------------------------------- either kind of masked set


def is_shard_output(path, shards: bool = False) -> bool:
    """Whether `veil mask --out PATH` writes a shard folder: when asked (`--shards`), to an existing folder, or to a
    name without a suffix that is no file (`runs/train-shards`); any other name (FILE.npz) is one .npz, as ever."""
    path = Path(path)
    return shards or path.is_dir() or not (path.suffix or path.is_file() or path.is_symlink())


def is_shard_folder(path) -> bool:
    """Whether `path` names a shard folder (any folder: it is refused with a reason if it is not one)."""
    return Path(path).is_dir()


def open_masked(path) -> MaskedSet | ShardedSet:
    """A masked set file (`.npz`, loaded whole) or a shard folder (opened, read as it is iterated)."""
    return ShardedSet(path) if is_shard_folder(path) else MaskedSet.load(path)


def load_masked(path) -> MaskedSet:
    """A masked set whole, from an `.npz` or a shard folder: wherever a command takes a masked file."""
    opened = open_masked(path)
    return opened.load() if isinstance(opened, ShardedSet) else opened


def masked_chunks(opened: MaskedSet | ShardedSet) -> Iterator[MaskedSet]:
    """The set a part at a time: each shard of a folder, or the whole of a set in memory."""
    return opened.chunks() if isinstance(opened, ShardedSet) else iter([opened])


def uint8_storage(masker) -> dict:
    """The meta a set of an exact 8-bit masker records about its storage (as `veil.workflows.mask_images` does)."""
    return {"storage": UINT8_STORAGE} if masker.exact_uint8 else {}
