"""Conversion of any decoded picture to uint8 RGB at its own size (grayscale and other modes to RGB), and the one
explicit resize (`Resize`: squash, crop or pad to a size the user asked for)."""
from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass

import numpy as np
import simplejpeg
from PIL import Image, UnidentifiedImageError

from veil.errors import VeilError

#: how `--resize` fits an image to `--size`
RESIZE_MODES = ("squash", "crop", "pad")
#: Pillow's bilinear filter (with its antialiasing when shrinking): what veil always resized with, so `--size 32`
#: gives the pixels the fixed 32x32 of earlier versions gave
RESAMPLE = Image.Resampling.BILINEAR


def parse_size(size) -> tuple[int, int]:
    """N, "N", "H,W", (H, W) -> (H, W), both positive."""
    try:
        parts = [int(p) for p in str(size).split(",")] if isinstance(size, str) else (
            [int(size)] if np.isscalar(size) else [int(p) for p in size])
    except (TypeError, ValueError):
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 1:
        raise VeilError(f"a size is N or H,W (positive whole numbers of pixels), got {size!r}")
    return parts[0], parts[1]


def size_text(size) -> str:
    """(H, W) -> "HxW"."""
    return f"{size[0]}x{size[1]}"


@dataclass(frozen=True)
class Resize:
    """Fit every image to `size` (H, W): "squash" stretches it; "crop" scales the short side to fit, then cuts the
    centre; "pad" scales the long side to fit, then centres it on black."""

    size: tuple[int, int]
    mode: str = "squash"

    @classmethod
    def of(cls, size, mode: str | None = "squash") -> "Resize | None":
        """The resize `--size`/`--resize` ask for; None when no size is given (images keep their own)."""
        if size is None:
            return None
        mode = mode or "squash"
        if mode not in RESIZE_MODES:
            raise VeilError(f"--resize takes {', '.join(RESIZE_MODES)}, got {mode!r}")
        return cls(parse_size(size), mode)

    def describe(self) -> str:
        return f"{size_text(self.size)}/{self.mode}"

    def image(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (h, w, 3) -> uint8 (H, W, 3)."""
        if pixels.shape[:2] == self.size:
            return pixels
        height, width = self.size
        h, w = pixels.shape[:2]
        picture = Image.fromarray(pixels)
        if self.mode == "squash":
            return np.asarray(picture.resize((width, height), RESAMPLE), dtype=np.uint8)
        scale = (max if self.mode == "crop" else min)(height / h, width / w)
        inner = (max(1, round(h * scale)), max(1, round(w * scale)))
        picture = picture.resize((inner[1], inner[0]), RESAMPLE)
        if self.mode == "crop":
            top, left = (inner[0] - height) // 2, (inner[1] - width) // 2
            return np.asarray(picture.crop((left, top, left + width, top + height)), dtype=np.uint8)
        canvas = Image.new("RGB", (width, height))
        canvas.paste(picture, ((width - inner[1]) // 2, (height - inner[0]) // 2))
        return np.asarray(canvas, dtype=np.uint8)

    def images(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (N, h, w, 3) -> uint8 (N, H, W, 3)."""
        if pixels.shape[1:3] == self.size:
            return pixels
        return np.stack([self.image(p) for p in pixels]) if len(pixels) else np.zeros((0, *self.size, 3), np.uint8)


def stack_images(images: list[np.ndarray], where) -> np.ndarray:
    """uint8 (h, w, 3) images of one size -> (N, h, w, 3); several sizes are refused, naming them (most common
    first), since no size was asked for."""
    sizes = Counter(image.shape[:2] for image in images)
    if len(sizes) > 1:
        found = ", ".join(size_text(size) for size, _ in sizes.most_common())
        raise VeilError(f"images have {len(sizes)} sizes ({found}); give --size (N or H,W) to resize them all", where)
    return np.stack(images)


def pil_to_rgb(image: Image.Image) -> np.ndarray:
    """Any PIL image (L, LA, P, RGBA, I;16, CMYK, ...) -> uint8 (H, W, 3), its own size."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        scaled = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") else max(float(scaled.max()), 1.0)
        image = Image.fromarray(np.clip(scaled / peak * 255.0, 0, 255).astype(np.uint8))
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image) * 255.0, 0, 255).astype(np.uint8))
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


JPEG_START = b"\xff\xd8"


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Decode image bytes to uint8 (H, W, 3); a corrupt or truncated file is a VeilError naming it."""
    if data.startswith(JPEG_START):
        pixels = _decode_jpeg(data)
        if pixels is not None:
            return pixels
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return pil_to_rgb(image)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise VeilError(f"corrupt or unreadable image ({exc})", name) from None


def _decode_jpeg(data: bytes) -> np.ndarray | None:
    """A JPEG decoded by libjpeg-turbo straight into uint8 (H, W, 3), or None for a damaged one, which Pillow then
    decodes or refuses. Pillow decodes with the same library and settings (accurate integer DCT, fancy upsampling),
    so the pixels are identical (checked on all of CIFAR-10), but its per-file header parsing in Python cost 6x the
    decode itself."""
    try:
        pixels = simplejpeg.decode_jpeg(data, colorspace="RGB")
    except ValueError:
        return None
    return pixels if pixels.ndim == 3 and pixels.shape[2] == 3 else None


def array_to_rgb(pixels: np.ndarray, name: str) -> np.ndarray:
    """A batch of arrays (N,H,W), (N,H,W,C) or (N,C,H,W), uint8 or float in [0,1] -> uint8 (N,H,W,3)."""
    pixels = np.asarray(pixels)
    if pixels.dtype.kind not in "uif" or pixels.dtype.kind == "b":
        raise VeilError(f"images must be numeric, got dtype {pixels.dtype}", name)
    if pixels.ndim == 3:
        pixels = pixels[..., None]
    if pixels.ndim != 4:
        raise VeilError(f"images must be (N,H,W), (N,H,W,C) or (N,C,H,W), got shape {pixels.shape}", name)
    if pixels.shape[-1] not in (1, 3, 4) and pixels.shape[1] in (1, 3, 4):
        pixels = pixels.transpose(0, 2, 3, 1)
    if pixels.shape[-1] not in (1, 3, 4):
        raise VeilError(f"cannot tell the channel axis of shape {pixels.shape}", name)
    if 0 in pixels.shape[1:3]:
        raise VeilError(f"images have no pixels (shape {pixels.shape})", name)
    if pixels.dtype.kind == "f":
        if not np.isfinite(pixels).all():
            raise VeilError("images contain NaN or infinite values", name)
        scale = 255.0 if pixels.max(initial=0.0) <= 1.0 else 1.0
        pixels = np.clip(np.rint(pixels * scale), 0, 255).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    pixels = pixels[..., :3] if pixels.shape[-1] >= 3 else np.repeat(pixels, 3, axis=-1)
    return np.ascontiguousarray(pixels)
