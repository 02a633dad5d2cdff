"""Masked datasets: what a data owner hands to a third party. One .npz that loads without pickle:
masked data, labels, class names, and metadata naming the masking method and the masker's fingerprint.
No secret (encoder, decoder, key, a filter's seed) is ever written here; a set an earlier veil wrote with its random
filter's seed is refused on load.

Masked data are float32 in memory. Exact 8-bit schemes (EtC, LE, ELE, PE, scrambling) mark their sets with
`meta["storage"] = "uint8"`: the file then holds the pixels as uint8 (a quarter of the size), and loading turns
them back into the same float32 values k/255. A set such a scheme has just masked from uint8 images holds those
uint8 pixels until it is saved (`veil mask` never makes a float copy)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from veil.data.splits import limit_indices
from veil.errors import VeilError
from veil.io.read import load_npz, string_list
from veil.io.write import save_npz

FORMAT = "veil-masked/1"
UINT8_STORAGE = "uint8"
#: methods whose sets, written before their filters were keyed, record the seed that fixes the filter
SEEDED_FILTERS = ("randfilter", "iidfilter")
#: a method whose sets from those days record a seed it never used
UNUSED_SEED = "blur"


@dataclass
class MaskedSet:
    data: np.ndarray
    labels: np.ndarray | None
    class_names: list[str]
    method: str
    fingerprint: str
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.data)

    def require_labels(self, where=None) -> np.ndarray:
        if self.labels is None:
            raise VeilError("masked set has no labels (it was masked from unlabelled images)", where)
        return self.labels

    def subset(self, index) -> "MaskedSet":
        labels = None if self.labels is None else self.labels[index]
        return MaskedSet(self.data[index], labels, list(self.class_names), self.method, self.fingerprint, dict(self.meta))

    def limited(self, limit: int | None) -> "MaskedSet":
        """The samples `--limit` keeps (all for None): the first of each class in proportion
        (`veil.data.splits.limit_indices`), in this set's order."""
        return self if limit is None else self.subset(limit_indices(limit, len(self), self.labels))

    def save(self, path) -> None:
        meta = {"format": FORMAT, "method": self.method, "fingerprint": self.fingerprint, **self.meta}
        data = self.data
        if self.meta.get("storage") == UINT8_STORAGE and data.dtype != np.uint8:
            data = np.clip(np.rint(data * np.float32(255)), 0, 255).astype(np.uint8)
        arrays = {"data": np.ascontiguousarray(data), "class_names": np.array(self.class_names, dtype=np.str_),
                  "meta": np.array(json.dumps(meta))}
        if self.labels is not None:
            arrays["labels"] = self.labels.astype(np.int64)
        save_npz(path, **arrays)

    @classmethod
    def load(cls, path) -> "MaskedSet":
        path = Path(path)
        arrays = load_npz(path)
        missing = {"data", "class_names", "meta"} - set(arrays)
        if missing:
            raise VeilError(f"not a veil masked set (missing {', '.join(sorted(missing))})", path)
        try:
            meta = json.loads(str(arrays["meta"]))
        except (ValueError, RecursionError):
            raise VeilError("not a veil masked set (unreadable metadata)", path) from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise VeilError(f"not a veil masked set (format is not {FORMAT})", path)
        drop_recorded_seed(meta, path)
        data = arrays["data"]
        if data.dtype == np.uint8 and meta.get("storage") == UINT8_STORAGE:
            data = data.astype(np.float32) / np.float32(255)
        if data.dtype.kind != "f" or data.ndim < 2 or len(data) == 0:
            raise VeilError(f"masked data must be a non-empty float array (or uint8 pixels marked as such), "
                            f"got {data.dtype} {data.shape}", path)
        if not np.isfinite(data).all():
            raise VeilError("masked data contain NaN or infinite values", path)
        class_names = string_list(arrays["class_names"], "class_names", path)
        labels = arrays.get("labels")
        if labels is not None:
            if labels.dtype.kind not in "iu" or labels.shape != (len(data),):
                raise VeilError(f"labels must be {len(data)} integers, got {labels.dtype} {labels.shape}", path)
            if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
                raise VeilError(f"labels out of range for {len(class_names)} classes", path)
            labels = labels.astype(np.int64)
        fingerprint, method = meta.pop("fingerprint", ""), meta.pop("method", "")
        meta.pop("format")
        return cls(data.astype(np.float32, copy=False), labels, class_names, method, fingerprint, meta)


def drop_recorded_seed(meta: dict, path) -> None:
    """Filter sets masked before the random filters took a key record a seed in their configuration. A random
    filter's seed rebuilds the filter, so such a set is refused rather than handed on; the blur never used its seed,
    which is dropped so that the configuration builds today's blur."""
    config = meta.get("config")
    if not (isinstance(config, dict) and "seed" in config):
        return
    if meta.get("method") in SEEDED_FILTERS:
        raise VeilError(f"this {meta['method']} set, masked before the filters were keyed, carries its filter seed, "
                        "a secret; mask again with --key-file", path)
    if meta.get("method") == UNUSED_SEED:
        del config["seed"]
