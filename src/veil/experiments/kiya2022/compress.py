"""Compressibility of encrypted images (paper 003, Tables III and IV): JPEG at quality 85 and 80 and lossless PNG
file sizes for plain images and each keyed scheme, with Pillow (JPEG: its default 4:2:0 chroma subsampling, which
16x16 EtC blocks respect), and JPEG round trips for training on compressed encrypted images."""
from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

from veil.data import ImageSet, to_uint8_images
from veil.io.output import claim_output
from veil.io.write import write_bytes
from veil.maskers.base import masker_class
from veil.results import write_results

FORMATS = {"jpeg85": ("JPEG", {"quality": 85}), "jpeg80": ("JPEG", {"quality": 80}), "png": ("PNG", {})}
SCHEMES = ("plain", "etc", "le", "ele", "pe", "scramble")
MB = 1e6


def encoded_bytes(pixels: np.ndarray, fmt: str, **options) -> int:
    """Total size of every image (uint8 (N, H, W, 3)) encoded as its own file."""
    total = 0
    for image in pixels:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format=fmt, **options)
        total += buffer.tell()
    return total


def jpeg_roundtrip(pixels: np.ndarray, quality: int) -> np.ndarray:
    """Each image (uint8 (N, H, W, 3)) JPEG-encoded at `quality` and decoded again."""
    out = np.empty_like(pixels)
    for i, image in enumerate(pixels):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        out[i] = np.asarray(Image.open(buffer).convert("RGB"))
    return out


def scheme_pixels(scheme: str, pixels: np.ndarray, secret: bytes) -> np.ndarray:
    """Plain pixels, or the pixels encrypted by a keyed scheme at its default block size."""
    return pixels if scheme == "plain" else masker_class(scheme)(secret).encrypt(pixels)


def compress_report(data: ImageSet, out_dir, secret: bytes, seed, schemes=SCHEMES, force: bool = False,
                    **selection) -> dict:
    """Write `compress.json` ({scheme}_{jpeg85,jpeg80,png}_mb) and `compress.md` (Table IV layout) to a new folder
    `out_dir` (`force`: into an existing one, see `veil.io.output.claim_output`). `selection`: how `data` was chosen from
    its source (`split`, `classes`), recorded in the JSON."""
    with claim_output(out_dir, force, folder=True, writer="compress-report") as tmp:
        return compress_into(tmp, data, secret, seed, schemes, **selection)


def compress_into(out_dir: Path, data: ImageSet, secret: bytes, seed, schemes=SCHEMES, **selection) -> dict:
    """`compress.json` and `compress.md` of `data` in the folder `out_dir`; its figures."""
    start = time.time()
    pixels = to_uint8_images(data.images)
    figures = {"images": len(pixels), "uncompressed_mb": pixels.size / MB}
    size = f"{data.size[0]}x{data.size[1]}"
    for scheme in schemes:
        encrypted = scheme_pixels(scheme, pixels, secret)
        for name, (fmt, options) in FORMATS.items():
            figures[f"{scheme}_{name}_mb"] = encoded_bytes(encrypted, fmt, **options) / MB
    write_results(out_dir / "compress.json", figures, seed=seed, wall_s=time.time() - start, config={
        "data": data.source, **selection, "images": len(pixels), "image_size": list(data.size),
        "block_sizes": {s: masker_class(s).default_block for s in schemes if s != "plain"}, "formats": FORMATS})
    write_bytes(out_dir / "compress.md", compress_table(figures, schemes, size).encode())
    return figures


def compress_table(figures: dict, schemes, size: str) -> str:
    lines = [f"# File sizes of {int(figures['images'])} {size} images (MB = 10^6 bytes), paper 003 Table IV layout", "",
             "| format | " + " | ".join(schemes) + " |", "|---|" + "---|" * len(schemes)]
    for name in FORMATS:
        lines.append(f"| {name} | " + " | ".join(f"{figures[f'{s}_{name}_mb']:.1f}" for s in schemes) + " |")
    lines.append(f"| uncompressed | {figures['uncompressed_mb']:.1f} |" + " |" * (len(schemes) - 1))
    return "\n".join(lines) + "\n"
