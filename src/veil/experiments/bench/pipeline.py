"""`veil bench encrypt`: how many images per second each keyed scheme encrypts and decrypts (uint8 pixels, the
whole batch at once, best of several repeats). `veil bench startup`: how long the command takes to answer when
there is no work to do (`--help`, and an error on a missing file), each a whole new process. `veil bench mask`: a
whole `veil mask` process over the CIFAR-10 test split, for the AAE (from the JPEG archive, with a cold and a warm
decode cache) and for EtC (from a folder of the 10,000 JPEGs, cold cache). `veil bench mask-nproc`: the speed-up of
`veil mask --nproc 2` over one process."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from veil import defaults
from veil.data import ImageSet, load, stratified_subsample, to_uint8_images
from veil.errors import VeilError
from veil.experiments.bench import register_benchmark
from veil.io.output import claim_output
from veil.maskers.base import masker_class
from veil.keyfiles import experiment_secret
from veil.results import write_results

SCHEMES = ("etc", "le", "ele", "pe", "scramble")


def best_seconds(run, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return min(timings)


def _images(data, split, classes, limit, default_split: str) -> ImageSet:
    """--data's images; without --data, CIFAR-10's `default_split` unless --split names another."""
    if data is None:
        data, split = defaults.CIFAR10, split or default_split
    return load(data, split=split, classes=classes, require_labels=False, limit=limit)


@register_benchmark("encrypt")
def encrypt_benchmark(json_path, data=None, split=None, classes=None, limit=None, seed: int = 0, repeats: int = 5,
                      force: bool = False) -> dict:
    """images per second of each keyed scheme, encrypting and decrypting"""
    return bench_encrypt(_images(data, split, classes, limit, "test"), json_path, experiment_secret(seed), seed=seed,
                         repeats=repeats, force=force)


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
    write_results(json_path, figures, seed=seed, wall_s=time.time() - start, config={
        "data": data.source, "repeats": repeats, "block_sizes": {s: masker_class(s).default_block for s in SCHEMES}})
    return figures


#: a new Python process that runs the `veil` command, as the console script does
VEIL_PROCESS = [sys.executable, "-c", "import sys; from veil.cli import main; sys.exit(main(sys.argv[1:]))"]
STARTUP_CASES = {
    "help_s": (["--help"], 0),
    "error_s": (["mask", "--method", "etc", "--key-env", "VEIL_BENCH_KEY", "--data", "missing-folder", "--out",
                 "never-written.npz"], 2),
}


@register_benchmark("startup")
def bench_startup(json_path, repeats: int = 5, force: bool = False) -> dict:
    """seconds a new `veil` process takes for --help and for a missing-file error

    Figures `help_s` and `error_s`: the best wall time of `repeats` new processes each (an error is a missing
    --data folder: all the work veil does before it can say so). Run with nothing else on the machine."""
    with claim_output(json_path, force) as tmp:
        start = time.time()
        with tempfile.TemporaryDirectory() as work:
            figures = {name: best_seconds(lambda: _run_veil(args, code, work), repeats)
                       for name, (args, code) in STARTUP_CASES.items()}
        write_results(tmp, figures, seed=None, wall_s=time.time() - start, config={
            "repeats": repeats, "cases": {name: ["veil", *args] for name, (args, _) in STARTUP_CASES.items()},
            "bytecode_cache": _bytecode_cache()})
    return figures


def _run_veil(args: list[str], expected_code: int, cwd: str, **env) -> None:
    env = {**os.environ, "VEIL_BENCH_KEY": "0" * 64, "VEIL_NO_PROGRESS": "1", **env}
    done = subprocess.run([*VEIL_PROCESS, *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != expected_code:
        raise VeilError(f"the benchmarked `veil {' '.join(args)}` exited {done.returncode}: "
                        f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'no message'}")


@register_benchmark("mask")
def mask_benchmark(json_path, data=None, repeats: int = 5, force: bool = False) -> dict:
    """a whole `veil mask` over CIFAR-10's test split: AAE from the archive, EtC from a folder"""
    return bench_mask(data or defaults.CIFAR10, json_path, repeats=repeats, force=force)


def bench_mask(archive, json_path, repeats: int = 3, force: bool = False) -> dict:
    """Figures `mask_cold_images_per_s` and `mask_warm_images_per_s` (the default AAE architecture, whole process,
    from the archive's test split, first with an empty and then with a filled decode cache), `etc_folder_10k_s`
    (EtC with 4-pixel blocks over a folder of the test JPEGs, whole process, empty cache) and `peak_rss_mb` (the
    largest of those processes). Each is the best of `repeats` runs (a cold run gets a new, empty cache each time);
    every run's seconds are in the JSON. The AAE's weights come from a one-epoch fit on random images: masking
    speed depends on the architecture, not on how well it was trained. Run with nothing else on the machine."""
    archive = Path(archive).resolve()  # the veil processes run in a work folder
    if not (archive.is_file() and tarfile.is_tarfile(archive)):
        raise VeilError("not a tar archive of train/ and test/ image folders (veil bench mask reads one)", archive)
    with claim_output(json_path, force) as tmp, tempfile.TemporaryDirectory() as work:
        work = Path(work)
        start = time.time()
        images = _extract_split(archive, "test", work / "test")
        _untrained_default_aae(work / "masker")
        aae = ["mask", "--masker", str(work / "masker"), "--data", str(archive), "--split", "test"]
        etc = ["mask", "--method", "etc", "--block", "4", "--key-env", "VEIL_BENCH_KEY", "--data", str(work / "test")]
        runs = {"cold_s": [_timed(aae + ["--out", f"cold{i}.npz"], work, VEIL_CACHE_DIR=str(work / f"cache-aae{i}"))
                           for i in range(repeats)],
                "warm_s": [_timed(aae + ["--out", f"warm{i}.npz"], work, VEIL_CACHE_DIR=str(work / "cache-aae0"))
                           for i in range(repeats)],
                "etc_s": [_timed(etc + ["--out", f"etc{i}.npz"], work, VEIL_CACHE_DIR=str(work / f"cache-etc{i}"))
                          for i in range(repeats)]}
        figures = {"mask_cold_images_per_s": images / min(runs["cold_s"]),
                   "mask_warm_images_per_s": images / min(runs["warm_s"]), "etc_folder_10k_s": min(runs["etc_s"]),
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
        write_results(tmp, figures, seed=None, wall_s=time.time() - start, config={
            "data": str(archive), "split": "test", "images": images, "aae": _default_aae_description(),
            "etc_block": 4, "repeats": repeats, "runs": runs, "bytecode_cache": _bytecode_cache()})
    return figures


def _bytecode_cache() -> bool:
    """Whether the timed processes could write and reuse compiled bytecode, as an installed package has (with
    PYTHONDONTWRITEBYTECODE set, every process compiles veil's modules again, a few tenths of a second)."""
    return not os.environ.get("PYTHONDONTWRITEBYTECODE")


def _default_aae_description() -> str:
    from veil.maskers import AAEMasker

    c = AAEMasker().config
    return (f"default architecture (AAEMasker()): encoder channels {c.channels}, gauss {c.gauss_dim}, "
            f"cat {c.cat_dim}")


@register_benchmark("mask-nproc")
def mask_nproc_benchmark(json_path, data=None, repeats: int = 5, force: bool = False) -> dict:
    """a whole `veil mask` (AAE, warm cache) over CIFAR-10's train split in 1 and 2 processes"""
    return bench_mask_nproc(data or defaults.CIFAR10, json_path, repeats=repeats, force=force)


def bench_mask_nproc(archive, json_path, repeats: int = 3, force: bool = False) -> dict:
    """Figures `mask_nproc1_s` and `mask_nproc2_s`: the best of `repeats` whole `veil mask` processes over the
    archive's train split (the default AAE architecture, warm decode cache) in one process and with `--nproc 2`, and
    `mask_nproc2_speedup`, their ratio. Both must write the same bytes. Run with nothing else on the machine."""
    archive = Path(archive).resolve()
    with claim_output(json_path, force) as tmp, tempfile.TemporaryDirectory() as work:
        work = Path(work)
        start = time.time()
        _untrained_default_aae(work / "masker")
        cache = {"VEIL_CACHE_DIR": str(work / "cache")}
        aae = ["mask", "--masker", str(work / "masker"), "--data", str(archive), "--split", "train", "--force"]
        _timed(aae + ["--out", "warm-up.npz"], work, **cache)  # fills the decode cache
        figures = {f"mask_nproc{n}_s": best_seconds(lambda: _timed(aae + ["--out", f"nproc{n}.npz", "--nproc", str(n)],
                                                                   work, **cache), repeats) for n in (1, 2)}
        if (work / "nproc1.npz").read_bytes() != (work / "nproc2.npz").read_bytes():
            raise AssertionError("veil mask --nproc 2 wrote other bytes than one process")
        figures["mask_nproc2_speedup"] = figures["mask_nproc1_s"] / figures["mask_nproc2_s"]
        write_results(tmp, figures, seed=None, wall_s=time.time() - start, config={
            "data": str(archive), "split": "train", "aae": _default_aae_description(), "repeats": repeats,
            "cores": os.cpu_count(), "bytecode_cache": _bytecode_cache()})
    return figures


#: the stand-in for "a second CPU-bound job on the machine" in `veil bench demo`
_SPINNER = [sys.executable, "-c", "while True: pass"]


@register_benchmark("demo")
def bench_demo(json_path, force: bool = False) -> dict:
    """seconds of `veil demo` on an idle machine and beside a second CPU-bound process

    Figures `demo_idle_s` and `demo_loaded_s`: a whole `veil demo` process with nothing else running, then
    beside one CPU-bound process (a busy loop), and `loaded_over_idle`, their ratio. The threads are veil's own
    choice each time (see `veil.threads`). Run with nothing else on the machine."""
    with claim_output(json_path, force) as tmp, tempfile.TemporaryDirectory() as work:
        start = time.time()
        idle = _timed(["demo", "--out", "idle"], Path(work))
        spinner = subprocess.Popen(_SPINNER)
        try:
            time.sleep(1.0)  # let the scheduler see it before veil measures the idle cores
            loaded = _timed(["demo", "--out", "loaded"], Path(work))
        finally:
            spinner.kill()
            spinner.wait()
        figures = {"demo_idle_s": idle, "demo_loaded_s": loaded, "loaded_over_idle": loaded / idle}
        write_results(tmp, figures, seed=0, wall_s=time.time() - start, config={
            "command": "veil demo --out DIR (seed 0)", "load": "one process running `while True: pass`",
            "cores": os.cpu_count()})
    return figures


def _timed(args: list[str], cwd: Path, **env) -> float:
    start = time.perf_counter()
    _run_veil(args, 0, str(cwd), **env)
    return time.perf_counter() - start


def _extract_split(archive, split: str, folder: Path) -> int:
    """The split's JPEGs as `folder/<class>/<file>.jpg` (a user's image folder); returns how many."""
    count = 0
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if member.isfile() and len(parts) == 3 and parts[0] == split:
                target = folder / parts[1] / parts[2]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())
                count += 1
    return count


def _untrained_default_aae(folder: Path) -> None:
    from veil.maskers import AAEMasker

    noise = np.random.default_rng(0).random((64, 3, 32, 32), dtype=np.float32)
    AAEMasker(epochs=1, batch_size=32).fit(noise, progress=False).save(folder)


#: `veil bench train-masker`: the held-out MSE to reach, and what the latent must show at that moment
TARGET_MSE = 0.0035
LATENT_TARGETS = {"gauss_ks": ("at most", 0.05), "cat_used": ("at least", 20), "cat_mean_max_prob": ("at least", 0.9)}
THROUGHPUT_IMAGES = 4096


@register_benchmark("train-masker")
def train_masker_benchmark(json_path, data=None, split=None, classes=None, limit=None, params=None, seed: int = 0,
                           force: bool = False) -> dict:
    """seconds for the AAE masker to reach held-out MSE 0.0035 (CIFAR-10 train split), the latent's conformity
    then, and training images per second"""
    return bench_train_masker(_images(data, split, classes, limit, "train"), json_path, params or {}, seed=seed,
                              force=force)


def bench_train_masker(data: ImageSet, json_path, params: dict, seed: int = 0, force: bool = False) -> dict:
    """Train an AAE masker with `params` (AAEMasker's; the default recipe when empty) and time it. Figures:
    `time_to_mse_0035_s` (training seconds, each epoch with its held-out evaluation, until the first epoch whose
    held-out MSE is at most 0.0035; None when it never is), the latent's conformity at that epoch (`gauss_ks_at_target`,
    `cat_used_at_target`, `cat_mean_max_prob_at_target`; at the last epoch when the target is missed), and
    `images_per_s_b16` / `images_per_s_b128` (one epoch over 4,096 images at that batch size). Every epoch's figures
    go into the JSON too. Run with nothing else on the machine."""
    from veil.maskers import AAEMasker
    from veil.maskers.base import build_from_config

    masker = build_from_config(AAEMasker, {**params, "seed": seed}, "--params")  # refused before any output
    with claim_output(json_path, force) as tmp:
        start = time.time()
        masker.fit(data, progress=True)
        history, elapsed = masker.history_, np.cumsum([row["epoch_s"] for row in masker.history_])
        hit = next((i for i, row in enumerate(history) if row["holdout_mse"] <= TARGET_MSE), None)
        at = history[len(history) - 1 if hit is None else hit]
        figures = {"time_to_mse_0035_s": None if hit is None else float(elapsed[hit]),
                   "epochs_to_target": None if hit is None else hit + 1,
                   **{f"{name}_at_target": at[name] for name in LATENT_TARGETS},
                   "latent_targets_met": float(_latent_targets_met(at, masker.cat_dim)),
                   "final_holdout_mse": history[-1]["holdout_mse"], "train_s": float(elapsed[-1])}
        subset = ImageSet(data.images[:THROUGHPUT_IMAGES], None, source=data.source)
        for batch in (16, 128):
            run = AAEMasker(**{**params, "epochs": 1, "batch_size": batch, "seed": seed}).fit(subset, progress=False)
            figures[f"images_per_s_b{batch}"] = len(subset) * (1 - run.holdout) / run.history_[0]["epoch_s"]
        write_results(tmp, figures, seed=seed, wall_s=time.time() - start, config={
            "data": data.source, "images": len(data), "masker": {**masker.get_params(), "device": str(masker.device_)},
            "target_mse": TARGET_MSE, "latent_targets": {**LATENT_TARGETS, "cat_used": ("all", masker.cat_dim)},
            "timed": "the Ignite training epochs with their held-out evaluation; not the decode of the data",
            "throughput_images": THROUGHPUT_IMAGES}, details={"epochs": history})
    return figures


def _latent_targets_met(row: dict, cat_dim: int) -> bool:
    return row["gauss_ks"] <= 0.05 and row["cat_used"] >= cat_dim and row["cat_mean_max_prob"] >= 0.9


#: `veil bench train`: the masked vectors each classifier trains on and is scored on, and the runs (name: kind,
#: preset; None for the kind's defaults)
TRAIN_VECTORS = 10_000
TEST_VECTORS = 10_000
CLASSIFIER_RUNS = {"nn": ("nn", None), "nn_paper": ("nn", "paper"), "rf": ("rf", None), "adaboost": ("adaboost", None)}


@register_benchmark("train")
def train_benchmark(json_path, data=None, masker_dir=None, seed: int = 0, progress: bool = True,
                    force: bool = False) -> dict:
    """seconds and test accuracy of nn (default and paper recipe), rf and adaboost on 10,000 AAE vectors of
    CIFAR-10's train split"""
    return bench_train(data or defaults.CIFAR10, json_path, masker_dir=masker_dir, seed=seed, progress=progress,
                       force=force)


def bench_train(data, json_path, masker_dir=None, seed: int = 0, progress: bool = True, force: bool = False) -> dict:
    """Train nn (the default recipe and the paper's), rf and adaboost on 10,000 masked vectors of the train split (a
    stratified draw) and score each on up to 10,000 of the test split. Figures per run: `{run}_s` (the fit alone)
    and `{run}_accuracy` with its 95% Wilson interval (`_low`, `_high`). Without `masker_dir` the default AAE is
    first trained for one epoch on the whole train split. Run with nothing else on the machine."""

    with claim_output(json_path, force) as tmp:
        start = time.time()
        train, test = load(data, split="train"), load(data, split="test")
        masker, masker_config = _bench_masker(masker_dir, train, seed, progress)
        train, test = stratified_subsample(train, TRAIN_VECTORS, seed), stratified_subsample(test, TEST_VECTORS, seed)
        vectors, test_vectors = masker.transform(train), masker.transform(test)
        figures, params = {}, {}
        for name, (kind, preset) in CLASSIFIER_RUNS.items():
            run_figures, params[name] = _fit_and_score(name, kind, preset, (vectors, train.labels),
                                                       (test_vectors, test.labels), seed, progress)
            figures.update(run_figures)
        write_results(tmp, figures, seed=seed, wall_s=time.time() - start, config={
            "data": str(data), "train_vectors": len(train), "test_vectors": len(test),
            "vector_shape": list(vectors.shape[1:]), "masker": masker_config, "classifiers": params,
            "timed": "each classifier's fit (its validation epochs included); not masking or scoring"})
    return figures


def _bench_masker(masker_dir, train: ImageSet, seed: int, progress: bool):
    """The masker to make vectors with, and what the config says of it."""
    from veil.maskers import AAEMasker, load_masker

    if masker_dir is not None:
        masker = load_masker(masker_dir)
        return masker, {"dir": str(masker_dir), "method": masker.method, "fingerprint": masker.fingerprint}
    masker = AAEMasker(epochs=1, seed=seed).fit(train, progress=progress)
    return masker, {"trained_here": f"the default AAE, 1 epoch on the train split ({len(train)} images), no --masker",
                    "params": {k: v for k, v in masker.get_params().items() if k != "device"}}


def _fit_and_score(name: str, kind: str, preset: str | None, train: tuple, test: tuple, seed: int, progress: bool):
    """({name}_s, {name}_accuracy and its 95% Wilson interval), and the classifier's parameters."""
    from veil.metrics import proportion_interval
    from veil.classifiers import classifier_class, preset_params

    cls = classifier_class(kind)
    estimator = cls(**{**(preset_params(kind, preset) if preset else {}), "seed": seed})
    shown = {"progress": progress} if cls.trains_with_engine else {}
    fit_s = best_seconds(lambda: estimator.fit(*train, **shown), 1)
    correct = int((estimator.predict(test[0]) == test[1]).sum())
    low, high = proportion_interval(correct, len(test[1]))
    params = {k: v for k, v in estimator.get_params().items() if k not in cls.unsaved_params}
    return {f"{name}_s": fit_s, f"{name}_accuracy": correct / len(test[1]), f"{name}_accuracy_low": low,
            f"{name}_accuracy_high": high}, {"kind": kind, "preset": preset, **params}
