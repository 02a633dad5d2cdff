"""ImageSet: labelled (or unlabelled) images as float32 RGB in [0, 1], channels first (or, for the exact 8-bit
schemes, the uint8 pixels as decoded, in the same layout), at the size they came in: every image of one set shares
one height and width, any size (`veil.data.load` resizes only when asked)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from veil.errors import VeilError


@dataclass
class ImageSet:
    """Images (N, 3, H, W) float32 in [0, 1]; labels (N,) int64 or None; class names indexed by label.

    `load(..., pixels=True)` gives uint8 images (0 to 255) instead, so that masking with an exact 8-bit scheme never
    makes a float copy; every other use takes the float form."""

    images: np.ndarray
    labels: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    source: str = ""

    def __post_init__(self):
        if self.images.ndim != 4 or self.images.shape[1] != 3 or 0 in self.images.shape[2:]:
            raise VeilError(f"images must have shape (N, 3, H, W), got {self.images.shape}", self.source or None)
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if self.labels.shape != (len(self.images),):
                raise VeilError(f"{len(self.labels)} labels for {len(self.images)} images", self.source or None)
            if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
                raise VeilError(f"labels out of range for {len(self.class_names)} classes", self.source or None)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of every image."""
        return tuple(int(d) for d in self.images.shape[2:])

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    def subset(self, index) -> "ImageSet":
        labels = None if self.labels is None else self.labels[index]
        return ImageSet(self.images[index], labels, list(self.class_names), self.source)

    def require_labels(self) -> np.ndarray:
        if self.labels is None:
            raise VeilError("these images have no labels (a flat folder); labels are needed here", self.source or None)
        return self.labels

    def select_classes(self, classes) -> "ImageSet":
        """Keep the named (or numbered) classes, relabelled 0..k-1 in the order given."""
        keep, labels, names = select_labels(self.require_labels(), self.class_names, classes, self.source or None)
        return ImageSet(self.images[keep], labels, names, self.source)


def select_labels(labels: np.ndarray, class_names: list[str], classes, where=None):
    """(mask of the samples kept, their labels 0..k-1 in the order of `classes`, the k class names): the classes
    named (or numbered) in `classes` of a set labelled `labels` over `class_names`."""
    wanted = [_class_index(c, class_names, where) for c in classes]
    if len(set(wanted)) != len(wanted):
        raise VeilError(f"a class is named twice in {list(classes)}", where)
    keep = np.isin(labels, wanted)
    remap = np.full(len(class_names), -1, dtype=np.int64)
    remap[wanted] = np.arange(len(wanted))
    return keep, remap[labels[keep]], [class_names[i] for i in wanted]


def _class_index(name, class_names: list[str], where) -> int:
    if isinstance(name, (int, np.integer)) or (isinstance(name, str) and name.isdigit() and name not in class_names):
        index = int(name)
        if not 0 <= index < len(class_names):
            raise VeilError(f"class number {index} out of range (0..{len(class_names) - 1})", where)
        return index
    if name not in class_names:
        raise VeilError(f"unknown class {name!r}; classes are {', '.join(class_names)}", where)
    return class_names.index(name)


def to_float_images(pixels: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [0, 1]."""
    return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)


def to_pixel_images(pixels: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8 (N, 3, H, W), the values unchanged."""
    return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))


def to_uint8_images(images: np.ndarray) -> np.ndarray:
    """float32 (N, 3, H, W) in [0, 1] -> uint8 (N, H, W, 3), rounding to the nearest level."""
    return np.ascontiguousarray(np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1))
