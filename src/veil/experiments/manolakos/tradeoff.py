"""`veil reproduce tradeoff`: the other published schemes on CIFAR-10 at CPU budgets.

Parts (`--parts a,b`; all by default), each writing its own JSON so a long run can be done piece by piece: run
again with `--parts c --force` into the same folder, and the report covers the JSONs already there too (`--parts
report --force` runs nothing and only rewrites the report):
- `convmixer`: ConvMixer on plain vs EtC-encrypted images (paper 003), same epochs -> convmixer_etc.json
- `jpeg`: the same ConvMixer on EtC images that went through JPEG at QF 85 and 80 (Table III), and on the uncompressed
  EtC images as their reference, all on the same (fewer) training images -> jpeg.json
- `scramble`: paper 004's CNN on plain vs 8x8-scrambled images, and the descrambler-CNN -> scramble.json
- `curves`: the CNN's accuracy vs strength of blur, random filter, i.i.d. random filter and scrambling (paper 004's
  Figs 5, 7, 9, 11) -> tradeoff.json and tradeoff.png
- `compress`: JPEG (QF 85, 80) and PNG file sizes of every image of the source (both splits), plain and under each
  keyed scheme with the first seed's stand-in key (paper 003's Table IV; `veil.experiments.kiya2022.compress`) ->
  compress.json and compress.md
Then report.md (every figure present in the folder) and examples.png (one image of each of six classes under each
scheme).

The budgets are far below the papers' (300 epochs for ConvMixer): subsets of the CIFAR-10 train split, a few epochs,
and small models (`BUDGETS`); the test subset comes from the test split. Plain and masked runs of one comparison
always share data, model, epochs, augmentation and seed. ConvMixer trains with paper 003's timm augmentation
(RandAugment 2 ops at magnitude 9, random erasing 0.25, mixup 0.8, CutMix 1.0), the same for every arm, applied to
the (plain, encrypted or JPEG-compressed) training images as paper 003 did.

Every comparison runs once per seed (`seeds`; by default the budget's number of seeds from `seed` up: 0, 1, 2 for
`full` and `gpu`, 0 alone for `quick`); a seed picks the training and test subsets, the stand-in key and the
initialisation. With several seeds each JSON holds every figure per seed (`<figure>_seed<s>`), and under the
figure's own name their mean, with its 95% t interval over seeds (`<figure>_lo`, `<figure>_hi`). The `full` budget
(ConvMixer and JPEG runs 10,000 x 10 epochs, the JPEG runs' uncompressed reference being the ConvMixer comparison's
EtC run, curves 2,500 x 3) is sized for about 90 minutes for all parts and 3 seeds with `--jobs 2` on 2 cores
(`compress`, one pass over CIFAR-10's 60,000 images whatever the budget, takes about 90 s of it).
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from veil import defaults
from veil.classifiers import classifier_class
from veil.experiments.kiya2022.compress import compress_into, jpeg_roundtrip
from veil.data import (ImageSet, limit_indices, load, stratified_split, stratified_subsample, to_float_images,
                       to_uint8_images)
from veil.devices import fix_threads
from veil.errors import VeilError
from veil.experiments import register_protocol
from veil.experiments.claims import Claim, claims_table, write_claims
from veil.experiments.kiya2022.claims import kiya_claims
from veil.experiments.manolakos.claims import manolakos_claims, strength_trends
from veil.experiments.run_accuracy import accuracy, difference, figure_interval
from veil.io.read import read_json
from veil.io.write import private_dir, write_bytes
from veil.metrics import t_interval
from veil.maskers.base import masker_class
from veil.keyfiles import experiment_secret
from veil.experiments.plots import scheme_examples, tradeoff
from veil.results import write_results
from veil.training import progress_mode
from veil.threads import available_cores

PARTS = ("convmixer", "jpeg", "scramble", "curves", "compress")
CURVES = {"blur": (3, 5, 7), "randfilter": (3, 5, 7), "iidfilter": (3, 5, 7), "scramble": (2, 4, 8)}
JPEG_QUALITIES = (85, 80)
#: paper 003's timm augmentation, given to every ConvMixer run (both arms of each comparison)
AUGMENT = {"mixup": 0.8, "cutmix": 1.0, "randaugment": 2, "randaugment_magnitude": 9.0, "erasing": 0.25}
#: figures that are the same for every seed, kept once
SEED_INVARIANT = ("epochs",)


@dataclass(frozen=True)
class TradeoffBudget:
    """Training images and epochs of each comparison (plain and masked runs of one comparison share them)."""
    n_test: int
    convmixer_train: int
    convmixer_epochs: int
    jpeg_train: int
    cnn_train: int
    cnn_epochs: int
    curve_train: int
    curve_epochs: int
    convmixer: dict  # ConvMixer architecture and training options (augmentation)
    cnn: dict
    batch_size: int = 64
    seeds: int = 3  # how many seeds by default
    name: str = ""  # the key of BUDGETS (recorded in every JSON)


BUDGETS = {
    # a CPU-budget ConvMixer (paper 003: ConvMixer-256/8, patch 1, kernel 9, 300 epochs, with timm's augmentation)
    # and CNN widths; JPEG runs on as many training images as the ConvMixer comparison, whose EtC run is their
    # uncompressed reference. 3 seeds in about 90 minutes with --jobs 2 on 2 cores (the 1-seed run of 50,000 x 10
    # ConvMixer images took 3255 s; 10,000 x 10 is about 650 s a seed)
    "full": TradeoffBudget(2000, 10000, 10, 10000, 5000, 5, 2500, 3,
                   {"dim": 128, "depth": 4, "kernel": 9, "patch": 4, **AUGMENT}, {"widths": [16, 32]}),
    # paper 003's ConvMixer-256/8 (patch 1, kernel 9) for a GPU: the whole train and test splits, 25 epochs
    "gpu": TradeoffBudget(10000, 50000, 25, 50000, 50000, 20, 50000, 10,
                  {"dim": 256, "depth": 8, "kernel": 9, "patch": 1, **AUGMENT}, {"widths": [32, 64]}),
    # a smoke run, one seed unless told
    "quick": TradeoffBudget(100, 200, 1, 200, 200, 1, 100, 1,
                    {"dim": 16, "depth": 1, "kernel": 3, "patch": 4, **AUGMENT}, {"widths": [4, 8]}, 32, seeds=1),
}


@register_protocol("tradeoff")
def run(out_dir, quick: bool = False, seed: int = 0, data: str | None = None, parts: str | None = None,
        jobs: int = 1, budget: str | None = None, work: str | None = None, seeds=None) -> dict:
    """`jobs`: how many runs of a comparison train at once, each in its own process (one per core suits a CPU).
    `budget`: a name of BUDGETS (default "full", or "quick" with `quick`). `seeds`: the seeds to run (default: the
    budget's number of seeds from `seed` up). Every run checkpoints each epoch under `work` (default runs/tradeoff),
    in a folder of its data, budget, seed, part and run, and a later call resumes it."""
    if jobs < 1:
        raise VeilError(f"--jobs must be at least 1, got {jobs}")
    name = budget or ("quick" if quick else "full")
    if name not in BUDGETS:
        raise VeilError(f"unknown budget {name!r}; budgets are {', '.join(BUDGETS)}")
    chosen = chosen_parts(parts)
    chosen_budget = replace(BUDGETS[name], name=name)
    seed_list = chosen_seeds(seeds, seed, chosen_budget)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source = data or defaults.CIFAR10
    experiments = [Experiment(train, test, chosen_budget, s, out_dir, jobs,
                              Path(work or "runs/tradeoff") / run_folder(source, chosen_budget, s))
                   for s, (train, test) in zip(seed_list, load_train_test(source, chosen_budget, seed_list))]
    figures = {}
    for part in chosen:
        done = compress_part(source, seed_list[0], out_dir) if part == "compress" else run_part(experiments, part)
        figures.update({f"{part}/{name}": value for name, value in done.items()})
    scheme_examples(out_dir / "examples.png", example_rows(example_images(experiments[0].test), experiments[0].secret))
    write_bytes(out_dir / "report.md", report(out_dir, chosen_budget, seed_list).encode())
    return figures


run.parts = (*PARTS, "report")  # what --parts may narrow it to (`report`: only rewrite report.md)


def run_folder(data: str, budget: TradeoffBudget, seed: int) -> str:
    """The checkpoint folder of a run: a resumed run finds only checkpoints of the same data, budget and seed (how
    many other seeds the call runs does not matter)."""
    sizes = {key: value for key, value in asdict(budget).items() if key != "seeds"}
    digest = hashlib.sha256(json.dumps([str(data), sizes, seed], sort_keys=True).encode()).hexdigest()
    return f"{budget.name}-seed{seed}-{digest[:10]}"


def chosen_seeds(seeds, seed: int, budget: TradeoffBudget) -> tuple[int, ...]:
    chosen = tuple(range(seed, seed + budget.seeds)) if seeds is None else tuple(seeds)
    if not chosen or len(set(chosen)) != len(chosen) or any(not isinstance(s, int) or s < 0 for s in chosen):
        raise VeilError(f"seeds must be distinct integers from 0 up, got {seeds!r}")
    return chosen


def chosen_parts(parts: str | None, known: tuple[str, ...] = PARTS) -> tuple[str, ...]:
    """The parts `--parts` names, of a protocol's `known` parts, in the order given; `report` names none."""
    chosen = known if not parts else tuple(p.strip() for p in parts.split(",") if p.strip())
    unknown = set(chosen) - set(known) - {"report"}
    if unknown:
        raise VeilError(f"unknown part(s) {', '.join(sorted(unknown))}; parts are {', '.join(known)} "
                        "(and `report`: only rewrite the report)")
    return tuple(part for part in chosen if part != "report")


def has_splits(data: str) -> bool:
    """Whether a source has train and test splits (scikit-learn's digits and an .npz have none)."""
    return not (data == "digits" or str(data).endswith(".npz"))


def load_train_test(data: str, budget: TradeoffBudget, seeds) -> list[tuple[ImageSet, ImageSet]]:
    """Per seed, the train split and a stratified subset of the test split (a source without splits is split 5:1
    by the seed first); the source is read once."""
    if not has_splits(data):
        whole = load(data)
        splits = [[whole.subset(part) for part in stratified_split(whole.labels, 1 / 6, seed)] for seed in seeds]
    else:
        splits = [(load(data, split="train"), load(data, split="test"))] * len(seeds)
    return [(train, stratified_subsample(test, budget.n_test, seed)) for (train, test), seed in zip(splits, seeds)]


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


def train_runs(specs: dict, jobs: int) -> dict:
    """{name: the arguments of `train_and_score`} -> {name: its figures}, `jobs` runs at a time, each in its own
    process (spawned, on its share of the idle cores) when more than one."""
    if jobs == 1 or len(specs) == 1:
        return {name: train_and_score(*spec) for name, spec in specs.items()}
    threads = max(1, available_cores() // jobs)
    with ProcessPoolExecutor(min(jobs, len(specs)), mp_context=multiprocessing.get_context("spawn"),
                             initializer=fix_threads, initargs=(threads,)) as pool:
        futures = {name: pool.submit(train_and_score, *spec) for name, spec in specs.items()}
        return {name: future.result() for name, future in futures.items()}


@dataclass
class PartOutcome:
    """One seed's run of a part: its JSON's name, figures, runs and training size, and what else the JSON records."""
    file: str
    figures: dict
    runs: dict
    n_train: int
    extra: dict = field(default_factory=dict)


def run_part(experiments: list[Experiment], part: str) -> dict:
    """`part` for every seed (one Experiment each), written to one JSON (with several seeds, each figure per seed,
    and their mean with its 95% t interval); its figures."""
    start = time.time()
    outcomes = {experiment.seed: getattr(experiment, part)() for experiment in experiments}
    first, seeds, outcome = experiments[0], list(outcomes), next(iter(outcomes.values()))
    runs = outcome.runs if len(seeds) == 1 else {f"{name}_seed{seed}": run for seed, each in outcomes.items()
                                                for name, run in each.runs.items()}
    figures = combine_seeds({seed: each.figures for seed, each in outcomes.items()})
    doc = write_results(first.out_dir / outcome.file, figures, seed=seeds[0] if len(seeds) == 1 else seeds,
                        wall_s=time.time() - start, config={
                            "seeds": seeds, "n_train": outcome.n_train, "n_test": len(first.test),
                            "budget": asdict(first.budget), "runs": runs, **outcome.extra})
    if part == "curves":
        plot_curves(first.out_dir / "tradeoff.png", doc)
    return figures


def compress_part(data: str, seed: int, out_dir: Path) -> dict:
    """The `compress` part: file sizes of every image of `data` (both splits) under `seed`'s stand-in key, as
    `veil compress-report` writes them; its figures."""
    split = "test+train" if has_splits(data) else None
    images = load(data, split=split, require_labels=False)
    return compress_into(out_dir, images, experiment_secret(seed), seed, split=split)


def combine_seeds(per_seed: dict[int, dict]) -> dict:
    """{seed: figures} -> one seed's figures as they are; of several, each per seed (`<name>_seed<s>`) and their
    mean under the name itself, with its 95% t interval (`<name>_lo`, `<name>_hi`). An accuracy's interval is
    clipped to [0, 1]: over 3 seeds a t interval is wide, and an accuracy outside [0, 1] is no value it can take."""
    if len(per_seed) == 1:
        return next(iter(per_seed.values()))
    figures = {}
    for name in next(iter(per_seed.values())):
        values = [each[name] for each in per_seed.values()]
        if name in SEED_INVARIANT:
            figures[name] = values[0]
            continue
        low, high = t_interval(values)
        if name.endswith("_accuracy"):
            low, high = max(low, 0.0), min(high, 1.0)
        figures.update({name: float(np.mean(values)), f"{name}_lo": low, f"{name}_hi": high,
                        **{f"{name}_seed{seed}": value for seed, value in zip(per_seed, values)}})
    return figures


def plot_curves(path: Path, doc: dict) -> None:
    """tradeoff.png: each scheme's accuracy against its strength, with 95% intervals (over seeds when several)."""
    figures = doc["figures"]
    series = {method: (list(sizes), [figures[f"{method}_{s}_accuracy"] for s in sizes],
                       [figure_interval(doc, f"{method}_{s}_accuracy") for s in sizes]) for method, sizes in CURVES.items()}
    low, high = figure_interval(doc, "plain_accuracy")
    seeds = len(doc["config"]["seeds"])
    tradeoff(path, series, "kernel / block size K", f"test accuracy (95% {'t' if seeds > 1 else 'Wilson'} interval)",
             f"CNN on CIFAR-10 ({doc['config']['n_train']} train, {figures['epochs']:.0f} epochs, {seeds} seed"
             f"{'s' if seeds > 1 else ''}); plain {figures['plain_accuracy']:.2f} [{low:.2f}, {high:.2f}]")


class Experiment:
    """Mask, train, score, for one seed: one method per part."""

    def __init__(self, train: ImageSet, test: ImageSet, budget: TradeoffBudget, seed: int, out_dir: Path, jobs: int,
                 work_dir: Path):
        self.train, self.test, self.budget, self.seed, self.out_dir = train, test, budget, seed, out_dir
        self.jobs, self.work_dir = jobs, work_dir
        self.secret = experiment_secret(seed)

    def masker(self, method: str, size: int | None = None):
        """`method` at strength `size` (its block or kernel size), keyed with this seed's stand-in key."""
        cls = masker_class(method)
        strength = {"block" if "block" in cls.options else "kernel": size}
        return cls(self.secret, **strength) if cls.keyed else cls(**strength)

    def subset(self, n: int) -> ImageSet:
        return stratified_subsample(self.train, n, self.seed)

    def accuracies(self, part: str, runs: dict, train: ImageSet, epochs: int, folders: dict | None = None) -> dict:
        """{name: (model, arch, masked train images, masked test images)} -> {name: figures of that run}: each model
        trained on its masked training images and scored on its masked test images, `self.jobs` at a time, each in
        the work folder `folders` names (default: the part's own)."""
        common = (train.labels, list(train.class_names), self.test.labels, epochs, self.budget.batch_size, self.seed,
                  progress_mode() is not None)
        folders = {name: self.work_dir / part / name for name in runs} | (folders or {})
        return train_runs({name: (*spec, folders[name], *common) for name, spec in runs.items()}, self.jobs)

    def convmixer(self) -> PartOutcome:
        etc, model = self.masker("etc"), self.budget.convmixer
        train, epochs = self.subset(self.budget.convmixer_train), self.budget.convmixer_epochs
        runs = self.accuracies("convmixer", {"plain": ("convmixer", model, train.images, self.test.images),
                                "etc": ("convmixer", model, etc.transform(train), etc.transform(self.test))}, train, epochs)
        plain, encrypted = runs["plain"]["accuracy"], runs["etc"]["accuracy"]
        figures = {"plain_accuracy": plain, "etc_accuracy": encrypted, "ratio": encrypted / plain, "epochs": epochs}
        return PartOutcome("convmixer_etc.json", figures, runs, len(train),
                           {"model": model, "etc_block": etc.config["block"]})

    def jpeg(self) -> PartOutcome:
        etc, model = self.masker("etc"), self.budget.convmixer
        train, epochs = self.subset(self.budget.jpeg_train), self.budget.convmixer_epochs
        train_px, test_px = (etc.encrypt(to_uint8_images(s.images)) for s in (train, self.test))
        specs = {f"etc_jpeg{q}": ("convmixer", model, to_float_images(jpeg_roundtrip(train_px, q)),
                                  to_float_images(jpeg_roundtrip(test_px, q))) for q in JPEG_QUALITIES}
        # the uncompressed reference on as many training images (Table III compares at one training size): on the
        # ConvMixer comparison's training size it is that comparison's EtC run, resumed from its folder, not retrained
        specs["etc_uncompressed"] = ("convmixer", model, etc.transform(train), etc.transform(self.test))
        shared = self.budget.jpeg_train == self.budget.convmixer_train
        runs = self.accuracies("jpeg", specs, train, epochs,
                               {"etc_uncompressed": self.work_dir / "convmixer" / "etc"} if shared else None)
        figures = {f"{name}_accuracy": run["accuracy"] for name, run in runs.items()}
        figures["epochs"] = epochs
        return PartOutcome("jpeg.json", figures, runs, len(train),
                       {"model": model, "etc_block": etc.config["block"], "reference_shared_with_convmixer": shared})

    def scramble(self) -> PartOutcome:
        scrambler, model = self.masker("scramble", 8), self.budget.cnn
        train, epochs = self.subset(self.budget.cnn_train), self.budget.cnn_epochs
        train_x, test_x = scrambler.transform(train), scrambler.transform(self.test)
        runs = self.accuracies("scramble", {"cnn_plain": ("cnn", model, train.images, self.test.images),
                                "cnn_scramble8": ("cnn", model, train_x, test_x),
                                "descrambler_scramble8": ("descrambler-cnn", {**model, "block": 8}, train_x, test_x)},
                               train, epochs)
        figures = {f"{name}_accuracy": run["accuracy"] for name, run in runs.items()}
        figures["epochs"] = epochs
        return PartOutcome("scramble.json", figures, runs, len(train), {"model": model})

    def curves(self) -> PartOutcome:
        train, epochs, model = self.subset(self.budget.curve_train), self.budget.curve_epochs, self.budget.cnn
        specs = {"plain": ("cnn", model, train.images, self.test.images)}
        for method, sizes in CURVES.items():
            for size in sizes:
                masker = self.masker(method, size)
                specs[f"{method}_{size}"] = ("cnn", model, masker.transform(train), masker.transform(self.test))
        runs = self.accuracies("curves", specs, train, epochs)
        figures = {f"{name}_accuracy": run["accuracy"] for name, run in runs.items()}
        figures["epochs"] = epochs
        return PartOutcome("tradeoff.json", figures, runs, len(train), {"model": model})


def example_images(test: ImageSet) -> np.ndarray:
    """The six images examples.png shows, one from each of six classes: the test split is listed class by class,
    so its first six would all be airplanes."""
    return test.images[limit_indices(6, len(test), test.labels)]


def example_rows(images: np.ndarray, secret: bytes) -> dict:
    """One row per scheme, for examples.png."""
    rows = {"plain": images}
    for method, size in (("etc", 16), ("etc", 4), ("le", 4), ("ele", 4), ("pe", None), ("scramble", 8)):
        rows[f"{method}" + (f" B={size}" if size else "")] = masker_class(method)(secret, block=size).transform(images)
    for method in ("blur", "randfilter", "iidfilter"):
        cls = masker_class(method)
        rows[f"{method} K=5"] = (cls(secret, kernel=5) if cls.keyed else cls(kernel=5)).transform(images)
    return rows


#: the JSONs the papers' claims are checked on
DOCS = ("convmixer_etc", "jpeg", "scramble", "tradeoff", "compress")


def baseline_claims(docs: dict) -> list[Claim]:
    """Both papers' claims, in the report's order; `docs` maps each name of DOCS to its JSON (or None)."""
    return kiya_claims(docs) + manolakos_claims(docs)


#: each JSON the report shows, and the run its accuracies are compared with (None: none)
REPORTED = {"convmixer_etc.json": "plain", "jpeg.json": "etc_uncompressed", "scramble.json": "cnn_plain",
            "tradeoff.json": "plain", "compress.json": None, "bench_encrypt.json": None}
CLAIMS_RULE = ("Each claim as the paper states it, checked by code on this folder's JSON (also in `claims.json`). "
               "With several seeds, each accuracy is the mean over seeds with its 95% t interval over seeds, and a "
               "difference or ratio of two runs is paired by seed: the mean of the per-seed differences or ratios "
               "with its t interval (n - 1 degrees of freedom). With one seed, accuracies carry 95% Wilson intervals "
               "over the test images, and a difference or ratio of two runs a normal interval from their binomial "
               "errors. Levels: held when our interval meets the paper's value; a miss is a shortfall or an "
               "overshoot, or \"no difference\" when the two runs compared are indistinguishable (the interval holds "
               "1 for a ratio, 0 for a difference). Comparisons: held when the whole interval is on the paper's "
               "side; an interval across zero is \"no difference\".")


def report(out_dir: Path, budget: TradeoffBudget, seeds) -> str:
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
             f"{budget.n_test} test images from the test split; seeds {', '.join(map(str, seeds))}. ConvMixer "
             f"{budget.convmixer}, the augmentation the same for both arms of every comparison and applied to the "
             f"(plain, encrypted or compressed) training images, as paper 003 did; CNN {budget.cnn}. Each section "
             "names the run that wrote it, with that run's own sizes and seeds.", ""]
    for name, reference in REPORTED.items():
        if (out_dir / name).exists():
            lines += json_section(name, read_json(out_dir / name), reference)
    if docs["tradeoff"]:
        lines += ["## Accuracy against strength (paper 004's Figs 5, 7, 9, 11; its text gives no numbers, only the blur's "
                  "direction, checked above)",
                  "", *strength_trends(docs["tradeoff"]), ""]
    lines += checks(out_dir)
    lines += ["![trade-off curves](tradeoff.png)", "", "![examples](examples.png)", ""]
    return "\n".join(lines)


def json_section(name: str, doc: dict, reference: str | None) -> list[str]:
    """One JSON's figures (with several seeds: their means, each seed's value beside), each accuracy with its 95%
    interval and, beside a reference run, the difference from it: "above", "below" or "no difference" (its interval,
    paired by seed when there are several, holds 0)."""
    seeds = doc.get("config", {}).get("seeds", [])
    lines = [f"## {name}", "", _run_line(doc), "",
             "| figure | value | 95% interval | per seed | vs " + (reference or "-") + " |", "|---|---|---|---|---|"]
    figures = {key: value for key, value in doc["figures"].items() if value is not None}
    for key, value in figures.items():
        if key.endswith(("_lo", "_hi")) or key.rsplit("_seed", 1)[-1].isdigit():
            continue
        interval = (figure_interval(doc, key) if f"{key}_lo" in figures or key.endswith("_accuracy")
                    else None)
        per_seed = ", ".join(f"{figures[f'{key}_seed{seed}']:.3f}" for seed in seeds if f"{key}_seed{seed}" in figures)
        lines.append(f"| {key} | {_number(value)} | " + (f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")
                     + f" | {per_seed} | {_versus(doc, key, reference)} |")
    return lines + [""]


def _run_line(doc: dict) -> str:
    """Which run wrote a JSON: its command, commit, machine, seeds and time, and its data sizes (a comparison's training and
    test images; the images of compress-report or the `compress` part)."""
    meta, config = doc["meta"], doc.get("config", {})
    seeds = config.get("seeds", [meta["seed"]])  # another command's JSON has one seed, in its meta
    sizes = (f", {config['n_train']} training / {config['n_test']} test images" if "n_train" in config
             else f", {config['images']} images" if "images" in config else "")
    return (f"Run: `{meta['command']}` at commit `{meta['commit']}` on {meta['machine']}, seeds "
            f"{', '.join(map(str, seeds))}, {meta['wall_s']:.0f} s{sizes}.")


def _versus(doc: dict, key: str, reference: str | None) -> str:
    name = key.removesuffix("_accuracy")
    if reference is None or name in (key, reference) or f"{reference}_accuracy" not in doc["figures"]:
        return ""
    value, (low, high) = difference(accuracy(doc, name), accuracy(doc, reference))
    verdict = "above" if low > 0 else "below" if high < 0 else "no difference"
    return f"{verdict} ({value:+.3f} [{low:+.3f}, {high:+.3f}])"


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
