"""`veil report privacy`: every scheme at every strength the baselines use, attacked under every threat model that
applies, beside the accuracy each keeps.

Data: the victim is the CIFAR-10 test split (all 10,000 images), the public images are the train split; an attack
reads the victim's plain images only to be scored. Threat c's known pairs are other images of the victim's (taken
from the train split) masked under the victim's own key or encoder, so that all 10,000 test images are scored for
every n. Keys are a stand-in secret derived from the seed; the victim's AAE is trained here (or given with --masker).

Every run writes `runs/<scheme>/<attack>_<threat>.json` (and a PNG grid) as soon as it ends, and a run whose JSON
exists is not repeated: an interrupted report continues where it stopped. `privacy.json`, the plots and `report.md`
are rebuilt from those files.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from veil import defaults
from veil.attacks import Budget, run_attack
from veil.attacks.base import ATTACKS
from veil.attacks.run import Outcome
from veil.attacks.scoring import per_image
from veil.metrics import proportion_interval
from veil.attacks.semantic import public_classifier
from veil.classifiers import classifier_class, preset_params
from veil.data import ImageSet, load, stratified_split
from veil.errors import VeilError
from veil.io import claim_output, is_occupied, read_json, write_bytes
from veil.maskers.base import masker_class
from veil.maskers.keys import experiment_secret
from veil.results import write_results

#: name in figures -> (masking method, options); a bare method name is that method's default strength
SCHEMES = {
    "aae": ("aae", {}),
    "etc": ("etc", {"block": 16}), "etc4": ("etc", {"block": 4}),
    "le": ("le", {"block": 4}), "ele": ("ele", {"block": 4}), "pe": ("pe", {}),
    "scramble2": ("scramble", {"block": 2}), "scramble4": ("scramble", {"block": 4}),
    "scramble": ("scramble", {"block": 8}),
    **{f"{method}{k}" if k != 5 else method: (method, {"kernel": k})
       for method in ("blur", "randfilter", "iidfilter") for k in (3, 5, 7)},
}
PAIRS = (100, 1000, 10000)


@dataclass(frozen=True)
class Setup:
    victim: int | None  # victim images scored (None: the whole test split)
    accuracy_train: int  # masked public images the utility classifier trains on
    accuracy_epochs: int
    pairs: tuple[int, ...]
    attack: Budget

    @classmethod
    def make(cls, quick: bool) -> "Setup":
        if quick:
            return cls(200, 300, 1, (20, 100), Budget.quick())
        return cls(None, 10000, 5, PAIRS, Budget())


def plan(scheme: str, pairs: tuple[int, ...] = PAIRS) -> list[tuple[str, str, int | None]]:
    """(attack, threat, known pairs) runs for a scheme: every attack that applies, under each of its threat models;
    threat c once per pair count. The GAN runs at each method's default strength only (it is the slowest)."""
    method = SCHEMES[scheme][0]
    runs = []
    for name in ATTACKS.names():
        cls = ATTACKS.get(name)
        if name == "gan" and scheme != method:
            continue
        for threat in (t for t in cls.threats if cls.applies_to(method, t)):
            runs += [(name, threat, n) for n in pairs] if threat == "c" else [(name, threat, None)]
    return runs


def run_name(attack: str, threat: str, pairs: int | None) -> str:
    return f"{attack}_{threat}{pairs or ''}"


def run(out_dir, quick: bool = False, seed: int = 0, data: str | None = None, masker: str | None = None,
        work: str | None = None, schemes: str | None = None, assemble_only: bool = False,
        skip: str | None = None, force: bool = False) -> dict:
    """Run the planned attacks of `schemes` (default all) not run yet, except the run names in `skip` (such as
    `gan_a,itn_c100`), then rebuild the outputs from every run present; `assemble_only` runs nothing. The report
    lists the planned runs that are missing. An existing report folder is continued in place; `force` starts afresh
    beside it and at the end replaces what it wrote (and what earlier reports wrote), keeping other files."""
    chosen = chosen_schemes(schemes)
    setup = Setup.make(quick)
    out_dir, work_dir = Path(out_dir), Path(work or "runs/privacy")
    if not force and is_occupied(out_dir) and not (out_dir / "runs").is_dir():
        raise VeilError("exists and is not a privacy report folder (no runs/); choose a new --out", out_dir)
    with claim_output(out_dir, force, folder=True, writer="report privacy", reads=[masker, work_dir],
                      resume=not force, in_place=True) as out:
        if not assemble_only:
            public, victim = load_sets(data or defaults.CIFAR10, setup, seed)
            classifier = public_classifier(public, setup.attack, seed, progress=True)
            context = Context(out, work_dir, setup, seed, public, victim, classifier, masker,
                              skip={name.strip() for name in (skip or "").split(",") if name.strip()})
            for scheme in chosen:
                context.scheme(scheme)
        return assemble(out, setup, seed)


def chosen_schemes(schemes: str | None) -> list[str]:
    chosen = list(SCHEMES) if not schemes else [s.strip() for s in schemes.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCHEMES]
    if unknown:
        raise VeilError(f"unknown scheme(s) {', '.join(unknown)}; known: {', '.join(SCHEMES)}")
    return chosen


def load_sets(data: str, setup: Setup, seed: int) -> tuple[ImageSet, ImageSet]:
    """(public, victim): the train and test splits, disjoint (a source without splits is halved)."""
    if data == "digits" or str(data).endswith(".npz"):
        whole = load(data)
        public_idx, victim_idx = stratified_split(whole.labels, 0.5, seed)
        public, victim = whole.subset(public_idx), whole.subset(victim_idx)
    else:
        public, victim = load(data, split="train"), load(data, split="test")
    if setup.victim is not None and setup.victim < len(victim):
        victim = victim.subset(stratified_split(victim.labels, setup.victim / len(victim), seed)[1])
    return public, victim


class Context:
    """One scheme at a time: the victim's masker, the accuracy it keeps, then every planned attack."""

    def __init__(self, out_dir: Path, work_dir: Path, setup: Setup, seed: int, public: ImageSet, victim: ImageSet,
                 classifier, masker_dir: str | None, skip: set[str] = frozenset()):
        self.out_dir, self.work_dir, self.setup, self.seed, self.skip = out_dir, work_dir, setup, seed, skip
        self.public, self.victim, self.classifier, self.masker_dir = public, victim, classifier, masker_dir
        order = np.random.default_rng([seed, 7]).permutation(len(public))
        self.leaked = public.images[np.sort(order[:max(setup.pairs)])]  # threat c: the victim's other images

    def victim_masker(self, scheme: str):
        """The victim's masker: its AAE, or the scheme built with the experiment's stand-in key and seed."""
        from veil.workflows import masker_for_masking

        method, options = SCHEMES[scheme]
        cls = masker_class(method)
        if cls.fits_on_data:
            return self.victim_aae()
        secret = experiment_secret(self.seed) if cls.keyed else None
        seed = {"seed": self.seed} if "seed" in cls.options else {}
        return masker_for_masking(method, secret=secret, **options, **seed)

    def victim_aae(self):
        """The --masker given, or one trained here with the attacker's recipe for its own AAE (another seed)."""
        from veil.maskers import load_masker
        from veil.workflows import train_masker

        folder = Path(self.masker_dir) if self.masker_dir else self.work_dir / "aae-victim"
        if (folder / "manifest.json").exists():
            return load_masker(folder)
        if self.masker_dir:
            raise VeilError("not a masker folder (no manifest.json)", folder)
        budget = self.setup.attack
        train = self.public.images[np.random.default_rng([self.seed, 11]).permutation(len(self.public))
                                   [:budget.aae_images]]
        return train_masker(ImageSet(train, source=self.public.source), folder, epochs=budget.aae_epochs,
                            batch_size=budget.batch_size, seed=self.seed, resume=True,  # its own work folder
                            preset="paper")  # the recipe of the committed report

    def scheme(self, scheme: str) -> None:
        from veil.workflows import mask_images

        folder = self.out_dir / "runs" / scheme
        masker = self.victim_masker(scheme)
        masked = mask_images(masker, self.victim)
        if not (folder / "accuracy.json").exists():
            self.accuracy(scheme, masker, masked, folder / "accuracy.json")
        if not (self.out_dir / "runs" / "plain.json").exists():
            self.plain_accuracy(self.out_dir / "runs" / "plain.json")
        for attack, threat, pairs in plan(scheme, self.setup.pairs):
            path = folder / f"{run_name(attack, threat, pairs)}.json"
            if path.exists() or run_name(attack, threat, pairs) in self.skip:
                continue
            print(f"[privacy] {scheme}: {attack} under threat {threat}" + (f", {pairs} pairs" if pairs else ""),
                  flush=True)
            known = (self.leaked[:pairs], masker.transform(self.leaked[:pairs])) if pairs else None
            outcome = run_attack(attack, threat, masked, self.victim, self.public,
                                 oracle=masker if threat == "b" else None, pairs=known, seed=self.seed,
                                 budget=self.setup.attack, classifier=self.classifier)
            self.write_run(path, scheme, outcome, masked)

    def utility_train(self) -> ImageSet:
        n = min(self.setup.accuracy_train, len(self.public) - len(self.public.class_names))
        return self.public.subset(stratified_split(self.public.labels, n / len(self.public), self.seed)[1])

    def utility(self, model: str, train_x, train: ImageSet, test_x) -> dict:
        """Accuracy (and its 95% interval) of `model` trained on train_x, scored on test_x against the victim's
        labels: the paper's MLP (its recipe, at batch 64) for AAE vectors, paper 004's CNN for image-shaped data."""
        params = {**(preset_params("nn", "paper") if model == "nn" else {"widths": (32, 64)}), "batch_size": 64,
                  "epochs": self.setup.accuracy_epochs}
        estimator = classifier_class(model)(seed=self.seed, **params)
        estimator.fit(train_x, train.labels, class_names=train.class_names, progress=False)
        accuracy = float((estimator.predict(test_x) == self.victim.labels).mean())
        low, high = proportion_interval(int(round(accuracy * len(self.victim))), len(self.victim))
        return {"accuracy": accuracy, "accuracy_low": low, "accuracy_high": high, "classifier": model,
                "params": params, "train_images": len(train)}

    def plain_accuracy(self, path: Path) -> None:
        start, train = time.time(), self.utility_train()
        result = self.utility("cnn", train.images, train, self.victim.images)
        write_results(path, {k: result[k] for k in ("accuracy", "accuracy_low", "accuracy_high")}, seed=self.seed,
                      wall_s=time.time() - start, config={**{k: result[k] for k in ("classifier", "params",
                                                                                    "train_images")},
                                                          "victim_images": len(self.victim)})

    def accuracy(self, scheme: str, masker, masked, path: Path) -> None:
        """The utility the scheme keeps (see `utility`), and how much the masked images resemble the victim's."""
        start, train = time.time(), self.utility_train()
        result = self.utility("nn" if masked.data.ndim == 2 else "cnn", masker.transform(train), train, masked.data)
        figures = {f"masked_{k}": result[k] for k in ("accuracy", "accuracy_low", "accuracy_high")}
        if masked.data.ndim == 4:
            figures["masked_ssim_median"] = float(np.median(per_image(self.victim.images, masked.data)["ssim"]))
        if masker.fits_on_data:  # the data owner's own reconstruction, with the decoder
            owner = per_image(self.victim.images, masker.inverse_transform(masked.data))
            figures["owner_ssim_median"] = float(np.median(owner["ssim"]))
        write_results(path, figures, seed=self.seed, wall_s=time.time() - start,
                      config={"scheme": scheme, "method": masked.method, "scheme_config": masked.meta.get("config"),
                              **{k: result[k] for k in ("classifier", "params", "train_images")},
                              "victim_images": len(self.victim)})

    def write_run(self, path: Path, scheme: str, outcome: Outcome, masked) -> None:
        from veil.attacks.grid import attack_grid

        ssim = outcome.per_image["ssim"]
        q1, median, q3 = np.percentile(ssim, [25, 50, 75])
        spread = 1.5 * (q3 - q1)
        box = {"q1": q1, "med": median, "q3": q3, "mean": float(ssim.mean()),
               "whislo": float(ssim[ssim >= q1 - spread].min()), "whishi": float(ssim[ssim <= q3 + spread].max())}
        config = {**outcome.config, "scheme_name": scheme}
        write_results(path, outcome.figures, seed=self.seed, wall_s=outcome.config["attack_s"], config=config,
                      details=outcome.details, ssim_box=box)
        show = outcome.scored[:6]
        attack_grid(path.with_suffix(".png"), self.victim.images[show], masked.data[show],
                    outcome.reconstructions[:len(show)],
                    f"{scheme}: {config['attack']}, threat {config['threat']}"
                    + (f" ({config['known_pairs']} pairs)" if config["known_pairs"] else "")
                    + f", median SSIM {outcome.figures['ssim_median']:.3f}")


def missing_runs(out_dir: Path, setup: Setup) -> list[str]:
    """Planned runs (scheme/attack_threat) whose JSON is not in `out_dir`."""
    return [f"{scheme}/{run_name(*planned)}" for scheme in SCHEMES for planned in plan(scheme, setup.pairs)
            if not (out_dir / "runs" / scheme / f"{run_name(*planned)}.json").exists()]


def assemble(out_dir: Path, setup: Setup, seed: int) -> dict:
    """privacy.json, the frontier and box plots, and report.md, from the run files present."""
    from veil.experiments.privacy_report import write_report

    figures, runs = {}, {}
    for scheme in SCHEMES:
        folder = out_dir / "runs" / scheme
        if not (folder / "accuracy.json").exists():
            continue
        accuracy = read_json(folder / "accuracy.json")["figures"]
        figures[f"{scheme}_accuracy"] = accuracy["masked_accuracy"]
        figures[f"{scheme}_accuracy_low"] = accuracy["masked_accuracy_low"]
        figures[f"{scheme}_accuracy_high"] = accuracy["masked_accuracy_high"]
        if "owner_ssim_median" in accuracy:
            figures[f"{scheme}_owner_ssim"] = accuracy["owner_ssim_median"]
        for path in sorted(folder.glob("*_*.json")):
            if path.name == "accuracy.json":
                continue
            doc = read_json(path)
            runs[(scheme, path.stem)] = doc
            figures[f"{scheme}_{path.stem}_ssim"] = doc["figures"]["ssim_median"]
            if "semantic_accuracy" in doc["figures"]:
                figures[f"{scheme}_{path.stem}_semantic"] = doc["figures"]["semantic_accuracy"]
            if "blocks_correct" in doc["figures"]:
                figures[f"{scheme}_{path.stem}_blocks_correct"] = doc["figures"]["blocks_correct"]
        for threat in "abc":
            best = [doc["figures"]["ssim_median"] for (s, name), doc in runs.items()
                    if s == scheme and doc["config"]["threat"] == threat]
            if best:
                figures[f"{scheme}_best_{threat}_ssim"] = max(best)
                if threat == "c":
                    figures[f"{scheme}_itn_c_ssim"] = max(best)
    if not runs:
        raise VeilError("no attack runs found", out_dir / "runs")
    sources = next(iter(runs.values()))["config"]
    if (out_dir / "runs" / "plain.json").exists():
        figures["plain_accuracy"] = read_json(out_dir / "runs" / "plain.json")["figures"]["accuracy"]
    write_results(out_dir / "privacy.json", figures, seed=seed,
                  config={"setup": {k: v for k, v in asdict(setup).items() if k != "attack"}, "budget": asdict(setup.attack),
                          "schemes": {name: {"method": m, **o} for name, (m, o) in SCHEMES.items()},
                          "victim": f"{sources['victim']} (test part), {sources['victim_scored']} images",
                          "public": f"{sources['public']} (train part)", "threat_c_pairs": "the victim's other "
                          "images (from the train part) masked with the victim's key or encoder",
                          "missing_runs": missing_runs(out_dir, setup)})
    write_bytes(out_dir / "report.md", write_report(out_dir, figures, runs).encode())
    return figures
