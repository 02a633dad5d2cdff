"""`veil report privacy`: every scheme at every strength the baselines use, attacked under every threat model that
applies, each attack searched to saturation, beside the accuracy each keeps.

Data: the train split is halved (stratified): the attacker's public images, and the data owner's own images, on
which the victim's AAE is trained and from which threat c's known pairs come; the victim is the test split (all
10,000 images), masked by the owner and scored. An attack reads the victim's plain images only to be scored. The
victim's key (every keyed scheme's, the random filters' included) is 32 random bytes drawn on the first run and
kept in the work folder (`victim.key`, mode 0600), never a key derived from the seed, which an attacker who knows
veil could enumerate. The victim's AAEs are trained here on the owner's images, one per victim seed, with the
recipe users get: `aae` is the default recipe exactly as README's `veil train-masker` example trains it, `aae_paper`
the paper preset (`--preset paper`); every run's config holds the victim masker's whole recipe. A "victim seed"
numbers a victim instance and names its folder; the AAE's own training seed is drawn from the operating system's
randomness, as `veil train-masker` draws a user's, and kept in its work folder (`veil.training.training_seed`).
No attacker's AAE can therefore share it by chance, as the attackers' small seeds once shared victim seeds 1 and 2.

Budgets: an attack's figure is taken at the budget where doubling it stops helping (`saturation`,
every point on every victim); a run whose search would pass its time cap first records `saturated` 0 and is a lower
bound wherever it is shown. A trained scheme's other victim seeds take the budget found for the report's own seed
(same recipe, other instance). The other strengths (etc4, scramble2, blur3, ...) keep the base budget, marked 0.

Threat c: the known pairs are always combined with a public prior, never used alone: `itn-prior` for the image
schemes (an ITN rehearsed on public images under secrets of the attacker's own, then fitted to the pairs) and
`latent-linear` for the AAE (the pairs fit a map into the attacker's own AAE). `itn` alone on the pairs stays
available to `veil attack`, but the report does not spend its budget on an attacker weaker by construction. A method
no public prior fits (`NO_PUBLIC_PRIOR`: the obfuscator, whose recipe is not an AAE's, so latent-linear's own AAE is
the wrong prior) is attacked under c by `itn` on the pairs as well.

Utility: one classifier family per input kind, at one budget: the masking paper's MLP for vectors (its plain
baseline sees the flattened pixels), paper 004's CNN for images (its baseline sees the plain images). A scheme's
utility kept is its accuracy over the same classifier's plain accuracy (`runs/plain_nn.json`, `runs/plain_cnn.json`).

Every run writes `runs/<scheme>/<attack>_<threat>.json` (and a PNG grid) as soon as it ends, and a run whose JSON
exists is not repeated; the saturation curves' points are kept under `--work`: an interrupted report continues where
it stopped. `privacy.json`, the plots and `report.md` are rebuilt from those files.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from veil import defaults
from veil.attacks import Budget, run_attack
from veil.attacks.base import ATTACKS, attack_class
from veil.attacks.run import Outcome
from veil.attacks.scoring import encoder_linkage, per_image
from veil.experiments.privacy.saturation import Saturation, Search, saturate, strength
from veil.metrics import proportion_interval, t_interval
from veil.attacks.semantic import public_classifier
from veil.classifiers import classifier_class, preset_params
from veil.data import ImageSet, load, stratified_split
from veil.errors import VeilError
from veil.io.output import claim_output, is_occupied
from veil.io.read import read_json
from veil.io.write import write_bytes
from veil.maskers.aae_numpy import public_recipe
from veil.maskers.base import masker_class
from veil.results import write_results

#: name in figures -> (masking method, options); a bare method name is that method's default strength
SCHEMES = {
    "aae": ("aae", {}), "aae_paper": ("aae", {"preset": "paper"}),
    "etc": ("etc", {"block": 16}), "etc4": ("etc", {"block": 4}),
    "le": ("le", {"block": 4}), "ele": ("ele", {"block": 4}), "pe": ("pe", {}),
    "scramble2": ("scramble", {"block": 2}), "scramble4": ("scramble", {"block": 4}),
    "scramble": ("scramble", {"block": 8}),
    **{f"{method}{k}" if k != 5 else method: (method, {"kernel": k})
       for method in ("blur", "randfilter", "iidfilter") for k in (3, 5, 7)},
}
PAIRS = (100, 1000, 10000)
#: the schemes whose figures are searched to saturation; the other strengths keep the base budget, marked as such
SATURATED = ("aae", "aae_paper", "etc", "le", "ele", "pe", "scramble", "blur", "randfilter", "iidfilter")
#: (attack, threat) runs the report leaves out: the ITN on known pairs alone, which `itn-prior` (images) and
#: `latent-linear` (the AAE) improve on by adding a public prior (see the module docstring)
WEAKER = {("itn", "c")}
#: masking methods that WEAKER does not apply to: no attack gives them a public prior of their own recipe
NO_PUBLIC_PRIOR = ("obfuscator",)
#: attacks the report does not run, and why (report.md says so): the victims' AAEs draw their training seeds at
#: random, as `veil train-masker` does, so guessing one among the small integers hits with probability ~ 2**-60
UNREPORTED = ("seed-guess",)
#: the schemes whose victim is a trained instance: attacked once per victim seed (`PrivacySetup.victim_seeds`)
TRAINED = ("aae", "aae_paper")


@dataclass(frozen=True)
class PrivacySetup:
    victim: int | None  # victim images scored (None: the whole test split)
    accuracy_train: int  # masked public images the utility classifier trains on
    accuracy_epochs: int
    pairs: tuple[int, ...]
    attack: Budget  # the base budget a saturation search starts from
    search: Search
    victim_seeds: tuple[int, ...]  # numbers of the victim AAEs, after the report's own seed (not training seeds)
    victim_aae_epochs: int | None  # None: the recipe's own epoch count (the README's train-masker example)

    @classmethod
    def make(cls, quick: bool) -> "PrivacySetup":
        if quick:
            return cls(200, 300, 1, (20, 100), Budget.quick(), Search.quick(), (0,), 2)
        return cls(None, 10000, 5, PAIRS, Budget(), Search(), (0, 1, 2), None)


def plan(scheme: str, pairs: tuple[int, ...] = PAIRS) -> list[tuple[str, str, int | None]]:
    """(attack, threat, known pairs) runs for a scheme: every attack that applies, under each of its threat models;
    threat c once per pair count; not the (attack, threat) pairs in WEAKER (`reported`), nor the UNREPORTED attacks.
    The GAN runs at each method's default strength only (it is the slowest)."""
    method = SCHEMES[scheme][0]
    return plan_method(method, pairs, gan=scheme == method)


def plan_method(method: str, pairs: tuple[int, ...], gan: bool = True) -> list[tuple[str, str, int | None]]:
    """`plan` for a masking method: every attack that applies to it (the GAN only with `gan`)."""
    runs = []
    for name in ATTACKS.names():
        cls = ATTACKS.get(name)
        if (name == "gan" and not gan) or name in UNREPORTED:
            continue
        for threat in (t for t in cls.threats if cls.applies_to(method, t) and reported(name, t, method)):
            runs += [(name, threat, n) for n in pairs] if threat == "c" else [(name, threat, None)]
    return runs


def reported(attack: str, threat: str, method: str) -> bool:
    """Whether the report runs `attack` under `threat` on `method`: not a WEAKER pair, except on a method no public
    prior fits (NO_PUBLIC_PRIOR)."""
    return (attack, threat) not in WEAKER or method in NO_PUBLIC_PRIOR


def run_name(attack: str, threat: str, pairs: int | None) -> str:
    return f"{attack}_{threat}{pairs or ''}"


def victim_folders(scheme: str, setup: PrivacySetup, seed: int) -> list[tuple[int, str]]:
    """(victim seed, folder under runs/) of each victim of `scheme`: a trained victim once per victim seed (the
    report's own seed in `<scheme>`, the others in `<scheme>/seed<N>`), a scheme's victim once."""
    seeds = [seed + offset for offset in setup.victim_seeds] if scheme in TRAINED else [seed]
    return [(victim_seed, scheme if victim_seed == seed else f"{scheme}/seed{victim_seed}") for victim_seed in seeds]


def run(out_dir, quick: bool = False, seed: int = 0, data: str | None = None, masker: str | None = None,
        work: str | None = None, schemes: str | None = None, assemble_only: bool = False,
        skip: str | None = None, force: bool = False) -> dict:
    """Run the planned attacks of `schemes` (default all) not run yet, except the run names in `skip` (such as
    `gan_a,itn_c100`), then rebuild the outputs from every run present; `assemble_only` runs nothing. The report
    lists the planned runs that are missing. An existing report folder is continued in place; `force` starts afresh
    beside it and at the end replaces what it wrote (and what earlier reports wrote), keeping other files."""
    chosen = chosen_schemes(schemes)
    setup = PrivacySetup.make(quick)
    out_dir, work_dir = Path(out_dir), Path(work or "runs/privacy")
    if not force and is_occupied(out_dir) and not (out_dir / "runs").is_dir():
        raise VeilError("exists and is not a privacy report folder (no runs/); choose a new --out", out_dir)
    with claim_output(out_dir, force, folder=True, writer="report privacy", reads=[masker, work_dir],
                      resume=not force, in_place=True) as out:
        if not assemble_only:
            public, owner, victim = load_sets(data or defaults.CIFAR10, setup, seed)
            classifier = public_classifier(public, setup.attack, seed, progress=True)
            context = PrivacyContext(out, work_dir, setup, seed, public, owner, victim, classifier, masker,
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


def load_sets(data: str, setup: PrivacySetup, seed: int) -> tuple[ImageSet, ImageSet, ImageSet]:
    """(public, owner, victim): the attacker's public images and the data owner's own images, disjoint stratified
    halves of the train split, and the owner's images under attack, the test split (a source without splits is
    halved first, its second half being the victim's)."""
    if data == "digits" or str(data).endswith(".npz"):
        whole = load(data)
        rest_idx, victim_idx = stratified_split(whole.labels, 0.5, seed)
        train, victim = whole.subset(rest_idx), whole.subset(victim_idx)
    else:
        train, victim = load(data, split="train"), load(data, split="test")
    public_idx, owner_idx = stratified_split(train.labels, 0.5, seed)
    if setup.victim is not None and setup.victim < len(victim):
        victim = victim.subset(stratified_split(victim.labels, setup.victim / len(victim), seed)[1])
    return train.subset(public_idx), train.subset(owner_idx), victim


class PrivacyContext:
    """One scheme at a time: the victim's masker, the accuracy it keeps, then every planned attack, each searched to
    saturation (`veil.experiments.privacy.saturation`) before its figure is taken on every victim."""

    def __init__(self, out_dir: Path, work_dir: Path, setup: PrivacySetup, seed: int, public: ImageSet, owner: ImageSet,
                 victim: ImageSet, classifier, masker_dir: str | None, skip: set[str] = frozenset()):
        self.out_dir, self.work_dir, self.setup, self.seed, self.skip = out_dir, work_dir, setup, seed, skip
        self.public, self.owner, self.victim = public, owner, victim
        self.classifier, self.masker_dir = classifier, masker_dir
        order = np.random.default_rng([seed, 7]).permutation(len(owner))
        self.leaked = owner.images[np.sort(order[:max(setup.pairs)])]  # threat c: the owner's other images
        self.measured: tuple[Budget, Outcome] | None = None  # the search's latest point, whole

    def victim_masker(self, scheme: str, victim_seed: int):
        """The victim's masker: its AAE, or the scheme built with the victim's key."""
        from veil.maskers.masking import masking_function as masker_for_masking

        method, options = SCHEMES[scheme]
        cls = masker_class(method)
        if cls.fits_on_data:
            return self.victim_aae(scheme, victim_seed)
        return masker_for_masking(method, secret=self.victim_secret() if cls.keyed else None, **options)

    def victim_secret(self) -> bytes:
        """The victim's key: random, drawn once and kept in the work folder (mode 0600), so that a report
        continued after an interruption masks with the same key."""
        from veil.keyfiles import read_secret, write_new_key

        path = self.work_dir / "victim.key"
        if not path.exists():
            self.work_dir.mkdir(parents=True, exist_ok=True)
            write_new_key(path)
        return read_secret(key_file=path)

    def victim_aae(self, scheme: str, victim_seed: int):
        """The --masker given (the default recipe, at the report's seed), or an AAE trained here on the owner's own
        images with the scheme's recipe, as README's train-masker example trains it (`aae`: the default recipe;
        `aae_paper`: the paper preset), in its own resumable work folder."""
        from veil.maskers import load_masker
        from veil.workflows import train_masker

        preset = SCHEMES[scheme][1].get("preset")
        given = self.masker_dir and preset is None and victim_seed == self.seed
        folder = Path(self.masker_dir) if given else self.work_dir / f"victim-{scheme}-seed{victim_seed}"
        if (folder / "manifest.json").exists():
            return load_masker(folder)
        if given:
            raise VeilError("not a masker folder (no manifest.json)", folder)
        return train_masker(self.owner, folder, epochs=self.setup.victim_aae_epochs, resume=True, preset=preset)

    def scheme(self, scheme: str) -> None:
        for victim_seed, folder in victim_folders(scheme, self.setup, self.seed):
            self.attack_victim(scheme, victim_seed, self.out_dir / "runs" / folder)

    def attack_victim(self, scheme: str, victim_seed: int, folder: Path) -> None:
        """The victim's accuracy and its planned runs not written yet; the victim's masker is not even loaded (or
        trained, when the work folder is gone) once all are written."""
        from veil.workflows import mask_images

        names = {planned: run_name(*planned) for planned in self.plan(scheme)}
        todo = [planned for planned, name in names.items()
                if name not in self.skip and not (folder / f"{name}.json").exists()]
        if (folder / "accuracy.json").exists() and not todo:
            return
        masker = self.victim_masker(scheme, victim_seed)
        masked = mask_images(masker, self.victim)
        if not (folder / "accuracy.json").exists():
            self.accuracy(scheme, masker, masked, folder / "accuracy.json")
        for attack, threat, pairs in todo:
            name = names[attack, threat, pairs]
            path = folder / f"{name}.json"
            print(f"[privacy] {scheme} (victim seed {victim_seed}): {attack} under threat {threat}"
                  + (f", {pairs} pairs" if pairs else ""), flush=True)
            known = (self.leaked[:pairs], masker.transform(self.leaked[:pairs])) if pairs else None
            oracle = masker if threat == "b" else None
            search = self.saturation(scheme, victim_seed, (attack, threat, pairs), masked, oracle, known)
            outcome = self.measure(attack, threat, masked, oracle, known, search.budget)
            outcome.figures["saturated"] = int(search.saturated)
            self.write_run(path, scheme, outcome, masked, masker, victim_seed, search)

    def plan(self, scheme: str) -> list[tuple[str, str, int | None]]:
        return plan(scheme, self.setup.pairs)

    def searched(self, scheme: str) -> bool:
        """Whether the scheme's runs are searched to saturation (SATURATED), or keep the base budget."""
        return scheme in SATURATED

    def measure(self, attack: str, threat: str, masked, oracle, known, budget: Budget) -> Outcome:
        """One attack at `budget` on every victim; the search's strongest point so far (`saturation.strength`) is
        kept whole, so that the point the search picks is the run's figure without training it again (a search
        resumed from its work folder measures it anew)."""
        if self.measured is not None and self.measured[0] == budget:
            return self.measured[1]
        outcome = run_attack(attack, threat, masked, self.victim, self.public, oracle=oracle, pairs=known,
                             seed=self.seed, budget=budget, classifier=self.classifier,
                             model_cache=self.work_dir / "attacker-models")
        if self.measured is None or strength(outcome.figures) > strength(self.measured[1].figures):
            self.measured = (budget, outcome)
        return outcome

    def saturation(self, scheme: str, victim_seed: int, planned: tuple, masked, oracle, known) -> Saturation:
        """The budget for one planned run's figure: searched for the schemes in SATURATED (a trained scheme's
        other victim seeds take the budget its search found for the report's own seed, which they share the recipe
        with); the base budget, unsaturated, for the other strengths."""
        attack, threat, _ = planned
        self.measured = None
        if not self.searched(scheme):
            return Saturation(self.setup.attack, 1, False, "strength variant: base budget, not searched", [])
        if victim_seed != self.seed and (found := self.searched_budget(scheme, run_name(*planned))):
            return found
        work = self.work_dir / "saturation" / f"{scheme}-seed{victim_seed}" / run_name(*planned)
        return saturate(lambda budget: self.measure(attack, threat, masked, oracle, known, budget).figures,
                        self.setup.attack, attack_class(attack).budget_fields, self.setup.search, work)

    def searched_budget(self, scheme: str, name: str) -> Saturation | None:
        """The saturation the report's own victim seed found for run `name` of `scheme` (None before it ran)."""
        path = self.out_dir / "runs" / scheme / f"{name}.json"
        if not path.exists():
            return None
        doc = read_json(path)
        budget = Budget(**{**doc["config"]["budget"],
                           "semantic_widths": tuple(doc["config"]["budget"]["semantic_widths"])})
        details = doc["details"]
        return Saturation(budget, details["scale"], bool(details["saturated"]),
                          f"the budget searched on victim seed {self.seed}: {details['reason']}", [])

    def utility_train(self) -> ImageSet:
        """The owner's own images that the third party's classifier learns from (masked, for a scheme)."""
        n = min(self.setup.accuracy_train, len(self.owner) - len(self.owner.class_names))
        return self.owner.subset(stratified_split(self.owner.labels, n / len(self.owner), self.seed)[1])

    def utility(self, model: str, train_x, train: ImageSet, test_x, params: dict | None = None) -> dict:
        """Accuracy (and its 95% interval) of `model` trained on train_x, scored on test_x against the victim's
        labels: the paper's MLP (its recipe, at batch 64) for vectors, paper 004's CNN for images. `correct` marks
        the victim images it classified right (a hex string of packed bits), for the paired bootstrap of the utility
        kept."""
        params = {**(preset_params("nn", "paper") if model == "nn" else {"widths": (32, 64)}), **(params or {}),
                  "batch_size": 64, "epochs": self.setup.accuracy_epochs}
        estimator = classifier_class(model)(seed=self.seed, **params)
        estimator.fit(train_x, train.labels, class_names=train.class_names, progress=False)
        correct = estimator.predict(test_x) == self.victim.labels
        low, high = proportion_interval(int(correct.sum()), len(self.victim))
        return {"accuracy": float(correct.mean()), "accuracy_low": low, "accuracy_high": high, "classifier": model,
                "params": params, "train_images": len(train), "correct": np.packbits(correct).tobytes().hex()}

    def baseline(self, masked) -> tuple[Path, str, dict]:
        """The plain baseline a scheme's accuracy is divided by: its run file, classifier and parameters (the same
        classifier family as on the masked data, `utility_model`, at its default widths)."""
        model = utility_model(masked.data)
        return self.out_dir / "runs" / f"plain_{model}.json", model, {}

    def plain_accuracy(self, model: str, path: Path, params: dict | None = None) -> None:
        """The baseline of `model` on plain images: the MLP on flattened pixels, the CNN on the images."""
        start, train = time.time(), self.utility_train()
        flat = (lambda images: images.reshape(len(images), -1)) if model == "nn" else (lambda images: images)
        result = self.utility(model, flat(train.images), train, flat(self.victim.images), params)
        write_results(path, {k: result[k] for k in ("accuracy", "accuracy_low", "accuracy_high")}, seed=self.seed,
                      wall_s=time.time() - start, config={**{k: result[k] for k in ("classifier", "params",
                                                                                    "train_images")},
                                                          "victim_images": len(self.victim)},
                      details={"correct": result["correct"]})

    def accuracy(self, scheme: str, masker, masked, path: Path) -> None:
        """The utility the scheme keeps (see `utility`), how much the masked images resemble the victim's, and what
        the masked form gives away to whoever holds the masking function: the owner's decoding (a trained AAE) and
        `encoder_linkage` (threat b's confirmation of an image among candidates, reconstruction-free)."""
        start, train = time.time(), self.utility_train()
        model = utility_model(masked.data)
        baseline, plain_model, plain_params = self.baseline(masked)
        if not baseline.exists():
            self.plain_accuracy(plain_model, baseline, plain_params)
        result = self.utility(model, masker.transform(train), train, masked.data)
        figures = {f"masked_{k}": result[k] for k in ("accuracy", "accuracy_low", "accuracy_high")}
        if masked.data.ndim == 4:
            figures["masked_ssim_median"] = float(np.median(per_image(self.victim.images, masked.data)["ssim"]))
        if masker.fits_on_data and masker.invertible:  # the data owner's own reconstruction, with the decoder
            owner = per_image(self.victim.images, masker.inverse_transform(masked.data))
            figures["owner_ssim_median"] = float(np.median(owner["ssim"]))
        figures.update(encoder_linkage(masker, self.victim.images, masked.data, self.victim.labels, self.seed))
        write_results(path, figures, seed=self.seed, wall_s=time.time() - start,
                      config={"scheme": scheme, "method": masked.method, "scheme_config": masked.meta.get("config"),
                              **{k: result[k] for k in ("classifier", "params", "train_images")},
                              "victim_images": len(self.victim), "plain_baseline": baseline.name},
                      details={"correct": result["correct"]})

    def write_run(self, path: Path, scheme: str, outcome: Outcome, masked, masker, victim_seed: int,
                  search: Saturation) -> None:
        """The run's JSON (its figures with `saturated`; the victim's masker configuration, for an AAE its whole
        recipe, under config, without the training seed, a secret; the saturation curve under details) and its PNG
        grid."""
        from veil.attacks.grid import attack_grid

        ssim = outcome.per_image["ssim"]
        q1, median, q3 = np.percentile(ssim, [25, 50, 75])
        spread = 1.5 * (q3 - q1)
        box = {"q1": q1, "med": median, "q3": q3, "mean": float(ssim.mean()),
               "whislo": float(ssim[ssim >= q1 - spread].min()), "whishi": float(ssim[ssim <= q3 + spread].max())}
        recipe = public_recipe(masker.recorded_config)
        config = {**outcome.config, "scheme_name": scheme, "victim_seed": victim_seed, "victim_masker": recipe}
        write_results(path, outcome.figures, seed=self.seed, wall_s=outcome.config["attack_s"], config=config,
                      details={**outcome.details, **search.record()}, ssim_box=box)
        show = outcome.scored[:6]
        attack_grid(path.with_suffix(".png"), self.victim.images[show], masked.data[show],
                    outcome.reconstructions[:len(show)],
                    f"{scheme}: {config['attack']}, threat {config['threat']}"
                    + (f" ({config['known_pairs']} pairs)" if config["known_pairs"] else "")
                    + f", median SSIM {outcome.figures['ssim_median']:.3f}")


def utility_model(data: np.ndarray) -> str:
    """One classifier family per input kind: the MLP for vectors, the CNN for images (plain or masked alike)."""
    return "nn" if data.ndim == 2 else "cnn"


def utility_kept(masked: dict, plain: dict, seed: int = 0, draws: int = 1000) -> dict:
    """Masked accuracy over plain accuracy of the same classifier on the same victim images, with a 95% paired
    bootstrap interval (victim images resampled, both classifiers scored on the same draw); nothing is clipped, so a
    scheme may keep more than all. `masked` and `plain` are the run files' documents."""
    def correct(doc):
        return np.unpackbits(np.frombuffer(bytes.fromhex(doc["details"]["correct"]), np.uint8))

    n = int(plain["config"]["victim_images"])
    hits, baseline = correct(masked)[:n], correct(plain)[:n]  # packed bits are padded to whole bytes
    rng = np.random.default_rng([seed, 31])
    ratios = [hits[drawn].mean() / baseline[drawn].mean() for drawn in (rng.integers(0, n, n) for _ in range(draws))]
    low, high = np.percentile(ratios, [2.5, 97.5])
    return {"utility_kept": float(hits.mean() / baseline.mean()), "utility_kept_low": float(low),
            "utility_kept_high": float(high)}


def missing_runs(out_dir: Path, setup: PrivacySetup, seed: int = 0) -> list[str]:
    """Planned runs (scheme[/seedN]/attack_threat) whose JSON is not in `out_dir`: a trained victim's runs once per
    victim seed."""
    return [f"{folder}/{run_name(*planned)}" for scheme in SCHEMES for _, folder in victim_folders(scheme, setup, seed)
            for planned in plan(scheme, setup.pairs)
            if not (out_dir / "runs" / folder / f"{run_name(*planned)}.json").exists()]


#: figures averaged over a trained scheme's victim seeds (the headline rows), each with a t interval over the seeds
#: cut to the range the figure can take
SEEDED_FIGURES = {"ssim": (-1.0, 1.0), "semantic": (0.0, 1.0), "linkage": (0.0, 1.0)}


def over_victim_seeds(folder: Path, scheme: str) -> dict:
    """For a scheme attacked once per victim seed (the report's own seed in `folder`, the others in `seedN/`): each
    run's mean over the seeds that have it (`{scheme}_{run}_{figure}_seeds`, with `_low`/`_high`, a t interval
    over seeds, and `{scheme}_{run}_victim_seeds`, how many), and `saturated` only if every seed's run saturated."""
    others = sorted(path for path in folder.glob("seed*") if path.is_dir())
    if not others:
        return {}
    figures = {}
    for path in sorted(folder.glob("*_*.json")):
        docs = [read_json(where / path.name)["figures"] for where in [folder, *others] if (where / path.name).exists()]
        prefix = f"{scheme}_{path.stem}"
        figures[f"{prefix}_victim_seeds"] = len(docs)
        for name, bounds in SEEDED_FIGURES.items():
            values = [doc[RUN_FIGURES[name]] for doc in docs if RUN_FIGURES[name] in doc]
            if len(values) > 1:
                low, high = t_interval(values, bounds)
                figures.update({f"{prefix}_{name}_seeds": float(np.mean(values)), f"{prefix}_{name}_seeds_low": low,
                                f"{prefix}_{name}_seeds_high": high})
        figures[f"{prefix}_saturated"] = int(all(doc.get("saturated", 0) == 1 for doc in docs))
    return figures


#: figures of a run copied into privacy.json as `{scheme}_{run}_{name}`
RUN_FIGURES = {"ssim": "ssim_median", "semantic": "semantic_accuracy", "blocks_correct": "blocks_correct",
               "linkage": "linkage", "saturated": "saturated"}


def assemble(out_dir: Path, setup: PrivacySetup, seed: int) -> dict:
    """privacy.json, the frontier and box plots, and report.md, from the run files present."""
    from veil.experiments.privacy.report import write_report
    from veil.experiments.privacy.verdicts import verdict_figures

    figures, runs = plain_figures(out_dir), {}
    for scheme in SCHEMES:
        if (out_dir / "runs" / scheme / "accuracy.json").exists():
            figures.update(scheme_figures(out_dir, scheme, runs))
    if not runs:
        raise VeilError("no attack runs found", out_dir / "runs")
    judged = [run["figures"] for run in runs.values() if "semantic_accuracy_plain" in run["figures"]]
    if judged:  # one judge per report: every run scores the same plain victim images with it
        figures.update({name: judged[0][name] for name in ("semantic_accuracy_plain", "semantic_chance")})
    verdicts, details = verdict_figures(figures, list(SCHEMES))
    figures.update(verdicts)
    sources = next(iter(runs.values()))["config"]
    write_results(out_dir / "privacy.json", figures, seed=seed, details=details,
                  config={"setup": {k: v for k, v in asdict(setup).items() if k != "attack"}, "budget": asdict(setup.attack),
                          "schemes": {name: {"method": m, **o} for name, (m, o) in SCHEMES.items()},
                          "victim": f"{sources['victim']} (test part), {sources['victim_scored']} images",
                          "public": f"{sources['public']} (train part)", "threat_c_pairs": "the victim's other "
                          "images (from the train part) masked with the victim's key or encoder",
                          "missing_runs": missing_runs(out_dir, setup, seed)})
    write_bytes(out_dir / "report.md", write_report(out_dir, figures, runs).encode())
    return figures


def plain_figures(out_dir: Path) -> dict:
    """`plain_accuracy_mlp` and `plain_accuracy_cnn` (with `_low`, `_high`): each utility classifier on plain images."""
    figures = {}
    for model, name in (("nn", "mlp"), ("cnn", "cnn")):
        path = out_dir / "runs" / f"plain_{model}.json"
        if path.exists():
            plain = read_json(path)["figures"]
            figures.update({f"plain_accuracy_{name}{end}": plain[f"accuracy{end}"] for end in ("", "_low", "_high")})
    return figures


def scheme_figures(out_dir: Path, scheme: str, runs: dict) -> dict:
    """A scheme's accuracy, utility kept and per-run figures; its runs' documents are added to `runs`."""
    folder = out_dir / "runs" / scheme
    accuracy = read_json(folder / "accuracy.json")
    figures = {f"{scheme}_accuracy{end}": accuracy["figures"][f"masked_accuracy{end}"] for end in ("", "_low", "_high")}
    baseline = out_dir / "runs" / accuracy["config"].get("plain_baseline", "-")
    if baseline.is_file() and "correct" in accuracy.get("details", {}):
        kept = utility_kept(accuracy, read_json(baseline))
        figures.update({f"{scheme}_{name}": value for name, value in kept.items()})
    if "owner_ssim_median" in accuracy["figures"]:
        figures[f"{scheme}_owner_ssim"] = accuracy["figures"]["owner_ssim_median"]
    figures.update({f"{scheme}_{name}": value for name, value in accuracy["figures"].items()
                    if name.startswith("encoder_linkage")})
    for path in sorted(folder.glob("*_*.json")):
        doc = runs[(scheme, path.stem)] = read_json(path)
        figures.update({f"{scheme}_{path.stem}_{name}": doc["figures"][key] for name, key in RUN_FIGURES.items()
                        if key in doc["figures"]})
    figures.update(over_victim_seeds(folder, scheme))
    for threat in "abc":
        best = [doc["figures"]["ssim_median"] for (s, _), doc in runs.items()
                if s == scheme and doc["config"]["threat"] == threat]
        if best:
            figures[f"{scheme}_best_{threat}_ssim"] = max(best)
            if threat == "c":
                figures[f"{scheme}_itn_c_ssim"] = max(best)
    return figures
