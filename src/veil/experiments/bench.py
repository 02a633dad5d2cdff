"""`veil bench encrypt`: how many images per second each keyed scheme encrypts and decrypts (uint8 pixels, the
whole batch at once, best of several repeats)."""
from __future__ import annotations

import time

import numpy as np

from veil.data import ImageSet, to_uint8_images
from veil.io import claim_output
from veil.maskers.base import masker_class
from veil.results import write_results

SCHEMES = ("etc", "le", "ele", "pe", "scramble")


def best_seconds(run, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return min(timings)


def bench_encrypt(data: ImageSet, json_path, secret: bytes, seed, repeats: int = 5, force: bool = False) -> dict:
    """Figures {scheme}_images_per_s (encryption) and {scheme}_decrypt_images_per_s; written to a new file
    `json_path` (`force` replaces an existing one)."""
    with claim_output(json_path, force) as tmp:
        return _bench_into(tmp, data, secret, seed, repeats)


def _bench_into(json_path, data: ImageSet, secret: bytes, seed, repeats: int) -> dict:
    start = time.time()
    pixels = to_uint8_images(data.images)
    figures = {"images": len(pixels)}
    for scheme in SCHEMES:
        masker = masker_class(scheme)(secret)
        encrypted = masker.encrypt(pixels)
        if not np.array_equal(masker.decrypt(encrypted), pixels):
            raise AssertionError(f"{scheme} failed to decrypt exactly")
        figures[f"{scheme}_images_per_s"] = len(pixels) / best_seconds(lambda: masker.encrypt(pixels), repeats)
        figures[f"{scheme}_decrypt_images_per_s"] = len(pixels) / best_seconds(lambda: masker.decrypt(encrypted),
                                                                               repeats)
    write_results(json_path, figures, seed=seed, wall_s=time.time() - start, data=data.source, repeats=repeats,
                  block_sizes={s: masker_class(s).default_block for s in SCHEMES})
    return figures
