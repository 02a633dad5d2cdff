"""`veil bench mask-stream`: EtC over an archive-scale folder of 224x224 JPEGs, into shards, against the floor of
decoding and re-encoding the same images with no masking, in the same run.

The inputs are photographs, not noise, so that they compress as photographs do: CIFAR-10's 60,000 images (train
and test), each resized to 224x224 (bilinear) and saved as JPEG at quality 90; past 60,000 the same images again,
mirrored left to right (100,000 = the 60,000, then 40,000 of them mirrored). They are built once into the user
cache folder (`veil.defaults.cache_dir()/bench`), keyed by the count.

Both runs are whole new processes reading that folder through `veil.data.stream` and writing shards through
`veil.streaming` with the same chunk size (veil mask's default, 384 images at 224x224), processes and JPEG
storage (quality 95): the floor (`floor_s`) masks
with the identity, the EtC run (`etc_s`) is `veil mask --method etc --out DIR`. Peak RSS (`peak_rss_mb`) is the
largest summed resident memory of the run's process and its workers, sampled every 50 ms (pages they share counted
once per process, so an overestimate); `peak_process_rss_mb` the largest of one process alone. (The kernel's own
peak, `ru_maxrss`, would count the benchmark's memory: a child forked from it holds its pages until it execs.)
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from veil import defaults
from veil.errors import VeilError
from veil.experiments.bench import register_benchmark
from veil.io.output import claim_output
from veil.keyfiles import experiment_secret
from veil.results import write_results
from veil.schemes.base import MaskingFunction

SIDE, INPUT_QUALITY, DEFAULT_COUNT = 224, 90, 100_000
SAMPLE_S = 0.05


@register_benchmark("mask-stream")
def mask_stream_benchmark(json_path, data=None, limit=None, seed: int = 0, force: bool = False) -> dict:
    """EtC masking of 100,000 224x224 JPEGs made from CIFAR-10 into shards (--limit N: N of them): images/s, MB/s of
    pixels and peak RSS, against the JPEG decode + encode floor of the same images in the same run"""
    with claim_output(json_path, force) as tmp:
        return bench_mask_stream(data or defaults.CIFAR10, tmp, count=limit or DEFAULT_COUNT, seed=seed)


def bench_mask_stream(source, json_path, count: int = DEFAULT_COUNT, seed: int = 0) -> dict:
    """Figures `floor_s`, `etc_s`, `etc_over_floor`, `images_per_s` and `pixel_mb_per_s` (EtC), `peak_rss_mb`
    (the EtC run's) and `floor_peak_rss_mb`, written to `json_path`."""
    start = time.time()
    folder, build_s = input_folder(source, count)
    nproc = len(os.sched_getaffinity(0))
    from veil.data.stream import open_stream

    chunk = open_stream(str(folder), require_labels=False).chunk_size  # what both runs choose
    with tempfile.TemporaryDirectory(dir=folder.parent) as work:
        floor = _measured([sys.executable, "-c", "import sys; from veil.experiments.bench.stream import floor; "
                           "floor(*sys.argv[1:])", str(folder), str(Path(work) / "floor"), str(nproc)])
        floor_bytes = _folder_bytes(Path(work) / "floor")
        shutil.rmtree(Path(work) / "floor")
        etc = _measured([sys.executable, "-m", "veil", "--quiet", "mask", "--method", "etc", "--key-env",
                         "VEIL_BENCH_KEY", "--data", str(folder), "--out", str(Path(work) / "etc"), "--nproc",
                         str(nproc)], VEIL_BENCH_KEY=experiment_secret(seed).decode())
        etc_bytes = _folder_bytes(Path(work) / "etc")
    pixel_mb = count * SIDE * SIDE * 3 / 1e6
    figures = {"images": count, "images_per_s": count / etc["s"], "pixel_mb_per_s": pixel_mb / etc["s"],
               "peak_rss_mb": etc["peak_rss_mb"], "floor_s": floor["s"], "etc_s": etc["s"],
               "etc_over_floor": etc["s"] / floor["s"], "peak_process_rss_mb": etc["peak_process_rss_mb"],
               "floor_peak_rss_mb": floor["peak_rss_mb"],
               "floor_shard_mb": floor_bytes / 1e6, "etc_shard_mb": etc_bytes / 1e6}
    write_results(json_path, figures, seed=seed, wall_s=time.time() - start, config={
        "source": str(source), "inputs": f"{count} JPEGs of {SIDE}x{SIDE} at quality {INPUT_QUALITY}: CIFAR-10's "
        "train+test resized (bilinear), mirrored past 60,000", "input_folder": str(folder),
        "input_mb": _folder_bytes(folder) / 1e6, "input_build_s": build_s, "chunk_size": chunk, "nproc": nproc,
        "etc_block": 16, "shard_storage": "jpg quality 95, 4:2:0", "peak_rss": "largest summed RSS of the process "
        f"tree, sampled every {SAMPLE_S} s",
        "order": "floor first, then EtC, one run each"})
    return figures


# ---------------------------------------------------------------------- the inputs


def input_folder(source, count: int) -> tuple[Path, float | None]:
    """The folder of `count` 224x224 JPEGs (class/NNNNNN.jpg), built once in the cache; and the seconds building
    took (None when it was there)."""
    folder = defaults.cache_dir() / "bench" / f"mask-stream-{count}-{SIDE}q{INPUT_QUALITY}"
    if (folder / "complete.json").is_file():
        return folder, None
    start = time.time()
    from veil.data import load

    cifar = load(str(source), split="train+test", pixels=True)
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=_made(folder.parent)))
    try:
        for name in cifar.class_names:
            (building / name).mkdir()
        for start_index in range(0, count, 1000):
            _write_inputs(building, cifar, range(start_index, min(count, start_index + 1000)))
        (building / "complete.json").write_text(json.dumps({"count": count, "source": str(source)}))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(building, folder)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return folder, time.time() - start


def _made(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _write_inputs(folder: Path, cifar, indices) -> None:
    import simplejpeg

    from veil.data.convert import Resize

    fit = Resize((SIDE, SIDE))
    for index in indices:
        source = index % len(cifar)
        pixels = cifar.images[source].transpose(1, 2, 0)
        if (index // len(cifar)) % 2:
            pixels = pixels[:, ::-1]
        large = fit.image(np.ascontiguousarray(pixels))
        name = cifar.class_names[cifar.labels[source]]
        (folder / name / f"{index:06d}.jpg").write_bytes(simplejpeg.encode_jpeg(np.ascontiguousarray(large),
                                                                                quality=INPUT_QUALITY))


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


# ---------------------------------------------------------------------- the floor and the measurement


class Unmasked(MaskingFunction):
    """The identity as a masking function: `veil mask`'s whole path, reading, decoding, JPEG encoding and writing
    the shards, with no masking (the floor EtC is measured against)."""

    method, exact_uint8, jpeg_compressible = "unmasked", True, True

    def transform(self, X):
        return X

    @property
    def fingerprint(self) -> str:
        return "unmasked"


def floor(folder: str, out: str, nproc: str) -> None:
    """Decode and re-encode every image of `folder` into shards at `out`, as `veil mask --out DIR` does, unmasked."""
    from veil.data.stream import open_stream
    from veil.shards import JPEG_QUALITY, Storage
    from veil.streaming import mask_to_shards

    stream = open_stream(folder, require_labels=False)
    mask_to_shards(stream, out, Unmasked(), nproc=int(nproc), storage=Storage("jpg", JPEG_QUALITY), progress=False)


def _measured(argv: list[str], **env) -> dict:
    """Run `argv`: its wall seconds and peak RSS in MB (see the module)."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env={**os.environ, "VEIL_NO_PROGRESS": "1", **env}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    peak, peak_process = 0, 0
    while True:
        pid, status = os.waitpid(process.pid, os.WNOHANG)
        if pid:
            break
        resident = _tree_rss(process.pid)
        peak, peak_process = max(peak, sum(resident)), max(peak_process, *resident, 0)
        time.sleep(SAMPLE_S)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode(errors="replace").strip()
    if process.returncode != 0:
        raise VeilError(f"the benchmarked run exited {process.returncode}: {error.splitlines()[-1] if error else ''}")
    return {"s": seconds, "peak_rss_mb": peak / 1e6, "peak_process_rss_mb": peak_process / 1e6}


def _tree_rss(pid: int) -> list[int]:
    """Bytes resident now in process `pid` and in each of its descendants (those that ended meanwhile left out)."""
    page, resident, pending = os.sysconf("SC_PAGE_SIZE"), [], [pid]
    while pending:
        current = pending.pop()
        try:
            pages = int(Path(f"/proc/{current}/statm").read_text().split()[1])
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (OSError, IndexError, ValueError):
            continue
        resident.append(pages * page)
        pending.extend(int(child) for child in children)
    return resident
