"""Conversion of any decoded picture to uint8 RGB 32x32 (grayscale to RGB, resize): the paper's MNIST handling."""
from __future__ import annotations

import io

import numpy as np
import simplejpeg
from PIL import Image, UnidentifiedImageError

from veil.data.imageset import SIZE
from veil.errors import VeilError


def pil_to_rgb32(image: Image.Image) -> np.ndarray:
    """Any PIL image (L, LA, P, RGBA, I;16, CMYK, ...) -> uint8 (32, 32, 3)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        scaled = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") else max(float(scaled.max()), 1.0)
        image = Image.fromarray(np.clip(scaled / peak * 255.0, 0, 255).astype(np.uint8))
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image) * 255.0, 0, 255).astype(np.uint8))
    image = image.convert("RGB")
    if image.size != (SIZE, SIZE):
        image = image.resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


JPEG_START = b"\xff\xd8"


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Decode image bytes; a corrupt or truncated file is a VeilError naming it."""
    if data.startswith(JPEG_START):
        pixels = _decode_jpeg(data)
        if pixels is not None:
            return pixels
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return pil_to_rgb32(image)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise VeilError(f"corrupt or unreadable image ({exc})", name) from None


def _decode_jpeg(data: bytes) -> np.ndarray | None:
    """A 32x32 colour JPEG decoded by libjpeg-turbo straight into uint8 (32, 32, 3), or None for any other JPEG
    (and a damaged one), which Pillow then decodes, converts or refuses. Pillow decodes with the same library and
    settings (accurate integer DCT, fancy upsampling), so the pixels are identical (checked on all of CIFAR-10), but
    its per-file header parsing in Python cost 6x the decode itself."""
    try:
        pixels = simplejpeg.decode_jpeg(data, colorspace="RGB")
    except ValueError:
        return None
    return pixels if pixels.shape == (SIZE, SIZE, 3) else None


def array_to_rgb32(pixels: np.ndarray, name: str) -> np.ndarray:
    """A batch of arrays (N,H,W), (N,H,W,C) or (N,C,H,W), uint8 or float in [0,1] -> uint8 (N,32,32,3)."""
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
    if pixels.shape[1:3] == (SIZE, SIZE):
        return np.ascontiguousarray(pixels)
    return np.stack([pil_to_rgb32(Image.fromarray(p)) for p in pixels]) if len(pixels) else np.zeros((0, SIZE, SIZE, 3), np.uint8)
