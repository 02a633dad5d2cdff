"""`veil bench encrypt`: how many images per second each keyed scheme encrypts and decrypts (uint8 pixels, the
whole batch at once, best of several repeats). `veil bench startup`: how long the command takes to answer when
there is no work to do (`--help`, and an error on a missing file), each a whole new process."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
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


#: a new Python process that runs the `veil` command, as the console script does
_VEIL = [sys.executable, "-c", "import sys; from veil.cli import main; sys.exit(main(sys.argv[1:]))"]
STARTUP_CASES = {
    "help_s": (["--help"], 0),
    "error_s": (["mask", "--method", "etc", "--key-env", "VEIL_BENCH_KEY", "--data", "missing-folder", "--out",
                 "never-written.npz"], 2),
}


def bench_startup(json_path, repeats: int = 5, force: bool = False) -> dict:
    """Figures `help_s` and `error_s`: the best wall time of `repeats` new processes each (an error is a missing
    --data folder: all the work veil does before it can say so). Run with nothing else on the machine."""
    with claim_output(json_path, force) as tmp:
        start = time.time()
        with tempfile.TemporaryDirectory() as work:
            figures = {name: best_seconds(lambda: _run_veil(args, code, work), repeats)
                       for name, (args, code) in STARTUP_CASES.items()}
        write_results(tmp, figures, seed=None, wall_s=time.time() - start, config={
            "repeats": repeats, "cases": {name: ["veil", *args] for name, (args, _) in STARTUP_CASES.items()}})
    return figures


def _run_veil(args: list[str], expected_code: int, cwd: str) -> None:
    env = {**os.environ, "VEIL_BENCH_KEY": "0" * 64}
    done = subprocess.run([*_VEIL, *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != expected_code:
        raise AssertionError(f"veil {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
