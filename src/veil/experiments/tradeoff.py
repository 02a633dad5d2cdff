"""`veil reproduce tradeoff`: the other published schemes on CIFAR-10 at CPU budgets.

Parts (`--parts a,b`; all by default), each writing its own JSON so a long run can be done piece by piece
(`--parts report` runs nothing and only rewrites the report):
- `convmixer`: ConvMixer on plain vs EtC-encrypted images (paper 003), same epochs -> convmixer_etc.json
- `jpeg`: the same ConvMixer on EtC images that went through JPEG at QF 85 and 80 (Table III), and on the uncompressed
  EtC images as their reference, all on the same (fewer) training images -> jpeg.json
- `scramble`: paper 004's CNN on plain vs 8x8-scrambled images, and the descrambler-CNN -> scramble.json
- `curves`: the CNN's accuracy vs strength of blur, random filter, i.i.d. random filter and scrambling (paper 004's
  Figs 5, 7, 9, 11) -> tradeoff.json and tradeoff.png
Then report.md (every figure present in the folder) and examples.png (one image under each scheme).

The budgets are far below the papers' (300 epochs for ConvMixer): subsets of the CIFAR-10 train split, a few epochs,
and small models (`BUDGETS`); the test subset comes from the test split. Plain and masked runs of one comparison
always share data, model, epochs and seed. Keys are a fixed stand-in derived from the seed.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from veil import defaults
from veil.classifiers import classifier_class
from veil.experiments.compress import jpeg_roundtrip
from veil.data import ImageSet, load, stratified_split, to_float_images, to_uint8_images
from veil.devices import fix_threads
from veil.errors import VeilError
from veil.experiments import register_protocol
from veil.experiments.baseline_claims import DOCS, baseline_claims, strength_trends
from veil.experiments.claims import claims_table, write_claims
from veil.io import private_dir, read_json, write_bytes
from veil.metrics import accuracy_interval
from veil.maskers.base import masker_class
from veil.maskers.keyed import KeyedMasker
from veil.maskers.keys import experiment_secret
from veil.experiments.plots import scheme_examples, tradeoff
from veil.results import write_results
from veil.training import progress_mode
from veil.threads import available_cores

PARTS = ("convmixer", "jpeg", "scramble", "curves")
CURVES = {"blur": (3, 5, 7), "randfilter": (3, 5, 7), "iidfilter": (3, 5, 7), "scramble": (2, 4, 8)}
JPEG_QUALITIES = (85, 80)


@dataclass(frozen=True)
class Budget:
    """Training images and epochs of each comparison (plain and masked runs of one comparison share them)."""
    n_test: int
    convmixer_train: int
    convmixer_epochs: int
    jpeg_train: int
    cnn_train: int
    cnn_epochs: int
    curve_train: int
    curve_epochs: int
    convmixer: dict  # ConvMixer architecture and training options (mixup / CutMix)
    cnn: dict
    batch_size: int = 64
    name: str = ""  # the key of BUDGETS (recorded in every JSON)


BUDGETS = {
    # a CPU-budget ConvMixer (paper 003: ConvMixer-256/8, patch 1, kernel 9, 300 epochs, mixup 0.8 and CutMix 1.0,
    # the timm defaults it trained EtC images with) and CNN widths
    "full": Budget(2000, 50000, 10, 20000, 5000, 5, 3000, 4,
                   {"dim": 128, "depth": 4, "kernel": 9, "patch": 4, "mixup": 0.8, "cutmix": 1.0}, {"widths": [16, 32]}),
    # paper 003's ConvMixer-256/8 (patch 1, kernel 9) for a GPU: the whole train and test splits, 25 epochs; JPEG runs
    # on as many training images as their uncompressed reference
    "gpu": Budget(10000, 50000, 25, 50000, 50000, 20, 50000, 10,
                  {"dim": 256, "depth": 8, "kernel": 9, "patch": 1, "mixup": 0.8, "cutmix": 1.0}, {"widths": [32, 64]}),
    # a smoke run
    "quick": Budget(100, 200, 1, 200, 200, 1, 100, 1,
                    {"dim": 16, "depth": 1, "kernel": 3, "patch": 4, "mixup": 0.8, "cutmix": 1.0}, {"widths": [4, 8]},
                    32),
}


@register_protocol("tradeoff")
def run(out_dir, quick: bool = False, seed: int = 0, data: str | None = None, parts: str | None = None,
        jobs: int = 1, budget: str | None = None, work: str | None = None) -> dict:
    """`jobs`: how many runs of a comparison train at once, each in its own process (one per core suits a CPU).
    `budget`: a name of BUDGETS (default "full", or "quick" with `quick`). Every run checkpoints each epoch under
    `work` (default runs/tradeoff), in a folder of its data, budget, seed, part and run, and a later call resumes it."""
    if jobs < 1:
        raise VeilError(f"--jobs must be at least 1, got {jobs}")
    name = budget or ("quick" if quick else "full")
    if name not in BUDGETS:
        raise VeilError(f"unknown budget {name!r}; budgets are {', '.join(BUDGETS)}")
    chosen = chosen_parts(parts)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen_budget = replace(BUDGETS[name], name=name)
    train, test = load_train_test(data or defaults.CIFAR10, chosen_budget, seed)
    work_dir = Path(work or "runs/tradeoff") / run_folder(data or defaults.CIFAR10, chosen_budget, seed)
    experiment = Experiment(train, test, chosen_budget, seed, out_dir, jobs, work_dir)
    figures = {}
    for part in chosen:
        figures.update({f"{part}/{name}": value for name, value in getattr(experiment, part)().items()})
    scheme_examples(out_dir / "examples.png", example_rows(test.images[:6], experiment.secret))
    write_bytes(out_dir / "report.md", report(out_dir, chosen_budget).encode())
    return figures


run.parts = (*PARTS, "report")  # what --parts may narrow it to (`report`: only rewrite report.md)


def run_folder(data: str, budget: Budget, seed: int) -> str:
    """The checkpoint folder of a run: a resumed run finds only checkpoints of the same data, budget and seed."""
    digest = hashlib.sha256(json.dumps([str(data), asdict(budget), seed], sort_keys=True).encode()).hexdigest()
    return f"{budget.name}-seed{seed}-{digest[:10]}"


def chosen_parts(parts: str | None) -> tuple[str, ...]:
    chosen = PARTS if not parts else tuple(p.strip() for p in parts.split(",") if p.strip())
    unknown = set(chosen) - set(PARTS) - {"report"}
    if unknown:
        raise VeilError(f"unknown part(s) {', '.join(sorted(unknown))}; parts are {', '.join(PARTS)} "
                        "(and `report`: only rewrite report.md and examples.png)")
    return tuple(part for part in chosen if part != "report")


def load_train_test(data: str, budget: Budget, seed: int) -> tuple[ImageSet, ImageSet]:
    """Stratified subsets of the train and test splits (a source without splits is split 5:1 first)."""
    if data == "digits" or str(data).endswith(".npz"):
        whole = load(data)
        train_idx, test_idx = stratified_split(whole.labels, 1 / 6, seed)
        train, test = whole.subset(train_idx), whole.subset(test_idx)
    else:
        train, test = load(data, split="train"), load(data, split="test")
    return train, subsample(test, budget.n_test, seed)


def subsample(images: ImageSet, n: int, seed: int) -> ImageSet:
    if n >= len(images):
        return images
    return images.subset(stratified_split(images.labels, n / len(images), seed)[1])


def train_and_score(model: str, arch: dict, train_x, test_x, work_dir: Path, labels, class_names, test_labels,
                    epochs: int, batch_size: int, seed: int, progress: bool) -> dict:
    """One run of a comparison (a module-level function, so that worker processes can run it), checkpointed in
    `work_dir` and resumed from there."""
    start = time.time()
    estimator = classifier_class(model)(seed=seed, epochs=epochs, batch_size=batch_size, **arch)
    estimator.fit(train_x, labels, class_names=class_names, work_dir=private_dir(work_dir), resume=True,
                  progress=progress)
    figures = estimator.evaluate(test_x, test_labels)
    return {"accuracy": figures["accuracy"], "best_epoch": estimator.best_epoch_, "params": estimator.get_params(),
            "n_train": len(train_x), "n_test": len(test_x),
            "train_s": round(time.time() - start, 1), "history": estimator.history_}


class Experiment:
    """Mask, train, score: one method per part."""

    def __init__(self, train: ImageSet, test: ImageSet, budget: Budget, seed: int, out_dir: Path, jobs: int,
                 work_dir: Path):
        self.train, self.test, self.budget, self.seed, self.out_dir = train, test, budget, seed, out_dir
        self.jobs, self.work_dir = jobs, work_dir
        self.secret = experiment_secret(seed)

    def masker(self, method: str, size: int | None = None):
        cls = masker_class(method)
        if issubclass(cls, KeyedMasker):
            return cls(self.secret, block=size)
        return cls(kernel=size, seed=self.seed)

    def subset(self, n: int) -> ImageSet:
        return subsample(self.train, n, self.seed)

    def accuracies(self, part: str, runs: dict, train: ImageSet, epochs: int) -> dict:
        """{name: (model, arch, masked train images, masked test images)} -> {name: figures of that run}: each model
        trained on its masked training images and scored on its masked test images, `self.jobs` at a time."""
        common = (train.labels, list(train.class_names), self.test.labels, epochs, self.budget.batch_size, self.seed,
                  progress_mode() is not None)
        folders = {name: self.work_dir / part / name for name in runs}
        if self.jobs == 1 or len(runs) == 1:
            return {name: train_and_score(*spec, folders[name], *common) for name, spec in runs.items()}
        threads = max(1, available_cores() // self.jobs)
        with ProcessPoolExecutor(min(self.jobs, len(runs)), mp_context=multiprocessing.get_context("spawn"),
                                 initializer=fix_threads, initargs=(threads,)) as pool:
            futures = {name: pool.submit(train_and_score, *spec, folders[name], *common) for name, spec in runs.items()}
            return {name: future.result() for name, future in futures.items()}

    def write(self, name: str, figures: dict, start: float, runs: dict, train: ImageSet, **extra) -> dict:
        write_results(self.out_dir / name, figures, seed=self.seed, wall_s=time.time() - start,
                      n_train=len(train), n_test=len(self.test), budget=asdict(self.budget), runs=runs, **extra)
        return figures

    def convmixer(self) -> dict:
        start = time.time()
        etc, model = self.masker("etc"), self.budget.convmixer
        train, epochs = self.subset(self.budget.convmixer_train), self.budget.convmixer_epochs
        runs = self.accuracies("convmixer", {"plain": ("convmixer", model, train.images, self.test.images),
                                "etc": ("convmixer", model, etc.transform(train), etc.transform(self.test))}, train, epochs)
        plain, encrypted = runs["plain"]["accuracy"], runs["etc"]["accuracy"]
        figures = {"plain_accuracy": plain, "etc_accuracy": encrypted, "ratio": encrypted / plain, "epochs": epochs}
        return self.write("convmixer_etc.json", figures, start, runs, train, model=model, etc_block=etc.config["block"])

    def jpeg(self) -> dict:
        start = time.time()
        etc, model = self.masker("etc"), self.budget.convmixer
        train, epochs = self.subset(self.budget.jpeg_train), self.budget.convmixer_epochs
        train_px, test_px = (etc.encrypt(to_uint8_images(s.images)) for s in (train, self.test))
        specs = {f"etc_jpeg{q}": ("convmixer", model, to_float_images(jpeg_roundtrip(train_px, q)),
                                  to_float_images(jpeg_roundtrip(test_px, q))) for q in JPEG_QUALITIES}
        # the uncompressed reference on as many training images (Table III compares at one training size)
        specs["etc_uncompressed"] = ("convmixer", model, to_float_images(train_px), to_float_images(test_px))
        runs = self.accuracies("jpeg", specs, train, epochs)
        figures = {f"{name}_accuracy": run["accuracy"] for name, run in runs.items()}
        figures["epochs"] = epochs
        return self.write("jpeg.json", figures, start, runs, train, model=model, etc_block=etc.config["block"])

    def scramble(self) -> dict:
        start = time.time()
        scrambler, model = self.masker("scramble", 8), self.budget.cnn
        train, epochs = self.subset(self.budget.cnn_train), self.budget.cnn_epochs
        train_x, test_x = scrambler.transform(train), scrambler.transform(self.test)
        runs = self.accuracies("scramble", {"cnn_plain": ("cnn", model, train.images, self.test.images),
                                "cnn_scramble8": ("cnn", model, train_x, test_x),
                                "descrambler_scramble8": ("descrambler-cnn", {**model, "block": 8}, train_x, test_x)},
                               train, epochs)
        figures = {f"{name}_accuracy": run["accuracy"] for name, run in runs.items()}
        figures["epochs"] = epochs
        return self.write("scramble.json", figures, start, runs, train, model=model)

    def curves(self) -> dict:
        start = time.time()
        train, epochs, model = self.subset(self.budget.curve_train), self.budget.curve_epochs, self.budget.cnn
        specs = {"plain": ("cnn", model, train.images, self.test.images)}
        for method, sizes in CURVES.items():
            for size in sizes:
                masker = self.masker(method, size)
                specs[f"{method}_{size}"] = ("cnn", model, masker.transform(train), masker.transform(self.test))
        runs = self.accuracies("curves", specs, train, epochs)
        figures = {f"{name}_accuracy": run["accuracy"] for name, run in runs.items()}
        figures["epochs"] = epochs
        accuracy = {name: (figures[f"{name}_accuracy"], accuracy_interval(figures[f"{name}_accuracy"], len(self.test)))
                    for name in runs}
        series = {method: (list(sizes), *zip(*(accuracy[f"{method}_{s}"] for s in sizes))) for method, sizes in CURVES.items()}
        plain, (low, high) = accuracy["plain"]
        tradeoff(self.out_dir / "tradeoff.png", series, "kernel / block size K", "test accuracy (95% Wilson interval)",
                 f"CNN on CIFAR-10 ({len(train)} train, {epochs} epochs); plain {plain:.2f} [{low:.2f}, {high:.2f}]")
        return self.write("tradeoff.json", figures, start, runs, train, model=model)


def example_rows(images: np.ndarray, secret: bytes) -> dict:
    """One row per scheme, for examples.png."""
    rows = {"plain": images}
    for method, size in (("etc", 16), ("etc", 4), ("le", 4), ("ele", 4), ("pe", None), ("scramble", 8)):
        rows[f"{method}" + (f" B={size}" if size else "")] = masker_class(method)(secret, block=size).transform(images)
    for method in ("blur", "randfilter", "iidfilter"):
        rows[f"{method} K=5"] = masker_class(method)(kernel=5).transform(images)
    return rows


#: each JSON the report shows, and the run its accuracies are compared with (None: none)
REPORTED = {"convmixer_etc.json": "plain", "jpeg.json": "etc_uncompressed", "scramble.json": "cnn_plain",
            "tradeoff.json": "plain", "compress.json": None, "bench_encrypt.json": None}
CLAIMS_RULE = ("Each claim as the paper states it, checked by code on this folder's JSON (also in `claims.json`). "
               "Accuracies carry 95% Wilson intervals over the test images; a difference or ratio of two runs, a "
               "normal interval from their binomial errors. Levels: held when our interval meets the paper's value; "
               "a miss is a shortfall or an overshoot. Comparisons: held when the whole interval is on the paper's "
               "side; an interval across zero is \"no difference\".")


def report(out_dir: Path, budget: Budget) -> str:
    """Markdown of every result JSON present in `out_dir`, opening with the papers' claims (also written to
    claims.json)."""
    docs = {name: read_json(out_dir / f"{name}.json") if (out_dir / f"{name}.json").exists() else None
            for name in DOCS}
    claims = baseline_claims(docs)
    write_claims(out_dir / "claims.json", claims, seed=next((d["meta"]["seed"] for d in docs.values() if d), None),
                 runs={name: d["meta"] for name, d in docs.items() if d})
    lines = ["# Other published schemes on CIFAR-10 at CPU budgets (`veil reproduce tradeoff`)", "",
             *claims_table(claims, "The papers' claims in these runs", CLAIMS_RULE),
             f"Budgets of this report's call (training images x epochs): ConvMixer {budget.convmixer_train} x "
             f"{budget.convmixer_epochs} (JPEG runs {budget.jpeg_train} x {budget.convmixer_epochs}), "
             f"CNN {budget.cnn_train} x {budget.cnn_epochs}, curves {budget.curve_train} x {budget.curve_epochs}; "
             f"{budget.n_test} test images from the test split. ConvMixer {budget.convmixer}; CNN {budget.cnn}. "
             "Each section names the run that wrote it, with that run's own sizes.", ""]
    for name, reference in REPORTED.items():
        if (out_dir / name).exists():
            lines += _json_section(name, read_json(out_dir / name), reference)
    if docs["tradeoff"]:
        lines += ["## Accuracy against strength (paper 004's Figs 5, 7, 9, 11; not checked: no numbers in its text)",
                  "", *strength_trends(docs["tradeoff"]), ""]
    lines += checks(out_dir)
    lines += ["![trade-off curves](tradeoff.png)", "", "![examples](examples.png)", ""]
    return "\n".join(lines)


def _json_section(name: str, doc: dict, reference: str | None) -> list[str]:
    """One JSON's figures, each accuracy with its Wilson interval and, beside a reference run, "above", "below" or
    "no difference" (the intervals overlap)."""
    meta = doc["meta"]
    lines = [f"## {name}", "", f"Run: `{meta['command']}` at commit `{meta['commit']}`, seed {meta['seed']}, "
             f"{meta['wall_s']:.0f} s" + (f", {doc['n_train']} training / {doc['n_test']} test images"
                                          if "n_train" in doc else "") + ".", "",
             "| figure | value | 95% interval | vs " + (reference or "-") + " |", "|---|---|---|---|"]
    figures = {key: value for key, value in doc["figures"].items() if value is not None}
    base = f"{reference}_accuracy" if reference else None
    for key, value in figures.items():
        interval = accuracy_interval(value, doc["n_test"]) if key.endswith("_accuracy") and "n_test" in doc else None
        versus = (_versus(interval, accuracy_interval(figures[base], doc["n_test"]))
                  if interval and base in figures and key != base else "")
        lines.append(f"| {key} | {_number(value)} | " + (f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")
                     + f" | {versus} |")
    return lines + [""]


def _versus(ours: tuple[float, float], reference: tuple[float, float]) -> str:
    if ours[0] > reference[1]:
        return "above"
    if ours[1] < reference[0]:
        return "below"
    return "no difference"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def checks(out_dir: Path) -> list[str]:
    """veil's own targets (not the papers'), met or not."""
    targets = [("convmixer_etc.json", "ratio", 0.95, "ConvMixer accuracy on EtC >= 0.95 x plain, same epochs"),
               ("bench_encrypt.json", "etc_images_per_s", 20000, "EtC encrypts >= 20k images/s")]
    lines = ["## veil's own targets", ""]
    for name, figure, threshold, claim in targets:
        if (out_dir / name).exists():
            value = read_json(out_dir / name)["figures"][figure]
            lines.append(f"- {claim}: {figure} = {_number(value)} -> {'met' if value >= threshold else 'NOT met'}")
    return lines + [""]
