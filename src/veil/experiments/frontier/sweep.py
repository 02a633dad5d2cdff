"""`veil report frontier`: the privacy-trained obfuscator, the AAE's simplest knobs and the keyed AAE, swept along
their knobs and each point attacked as `veil report privacy` attacks a scheme (issue 26).

The points (`sweep`): the obfuscator along its privacy weight λ, its latent noise σ and its latent size (5 values
each; the other knobs at the family's centre), and two points of the adversarial route alone (no distance
correlation); the default AAE with Gaussian noise σ added at masking time (5 values) and with a smaller Gaussian
latent (5 values); the keyed AAE over the default AAE (its base network public). The headline points (`HEADLINE`)
are trained and attacked once per victim seed (two), the others once.

Why the obfuscator's centre has 10 numbers, not 64: probes on the owner's images alone (the CIFAR-10 test split
never read; obfuscators trained on 15,000 owner images, 2,000 other owner images as victims, ITN-b at the base
budget, unsaturated; a throwaway script, so these figures appear in no result) put the goal's region there.
Against a plain CNN (16, 32) at 0.571 and class means at SSIM 0.115, λ = 1 and 4 epochs gave accuracy, ITN-b
median SSIM and linkage of 0.548, 0.244, 0.149 at 64 numbers; 0.538, 0.184, 0.045 at 16; 0.510, 0.166, 0.035 at
10 (0.564, 0.188, 0.097 at 10 with λ = 0). At 8 epochs, as the sweep trains: 0.562, 0.162, 0.043 at 16 and 0.571,
0.156, 0.032 at 10; at 10, λ = 3 gave 0.544, 0.144, 0.024, σ = 0.25 0.535, 0.140, 0.025 and σ = 0.5 0.499, 0.128,
0.018; λ = 2 with σ = 0.25 gave 0.509, 0.134, 0.017 (the knobs combined cost accuracy faster than either alone, so
no combined point). The goal (0.95 of the CNN, SSIM within 0.03 of the class means, linkage 0.02) lies between
those, so λ and σ are swept at 10 with their values close together there, and the latent size from 8 to 64 (the
attacker's AAE-shaped models split a vector of under 40 numbers in half, `veil.attacks.own_aae.latent_split`, where
the AAE's recipe puts 20 in its categorical part).

Every point is measured exactly as `veil report privacy` measures a scheme (`PrivacyContext`, reused): the same data
split (public half, owner half, test split as victim), the same attacks that its capabilities make applicable, each
searched to saturation (`veil.experiments.privacy.saturation`), threat b with the victim's encoder as an oracle on
public images, threat c with 1,000 of the owner's other images as known pairs, the same linkage (100 same-class
candidates) and semantic judge. Under c the obfuscator is also attacked by the ITN on the pairs alone
(`protocol.NO_PUBLIC_PRIOR`): latent-linear's prior is an AAE of the victim's recipe, which the obfuscator's is not, and
on the first headline point it scored below the class means (median SSIM 0.107 against 0.115). Utility kept differs on
purpose: the masked vectors' MLP accuracy is divided by the accuracy of a plain CNN of the encoder's size (widths 16 and
32, the encoder's first two convolutions) trained on plain images at the same budget, because a learned encoder is
itself a feature extractor.

Resumable as `veil report privacy` is: every trained victim lives in its own folder under `--work`, every run's
JSON is written as it ends and not repeated, the saturation curves' points are kept under `--work`. A victim whose
runs are all written is skipped without its masker, so a run continued from its `runs/` alone (the work folder lost)
trains again only the victims it has still to attack.
`frontier.json`, the plots and `report.md` are rebuilt from the run files (`veil.experiments.frontier.report`).

Cost, estimated on the 2-core development machine (not measured whole): at the full budget one measurement of ITN-b or
mismatch-a on 10,000 victims takes about 100 to 120 s, so a search doubling to saturation stops by its 2,400 CPU-s cap
at x8 at most (about 1,500 CPU-s); seven runs per AAE point (eight for the keyed AAE and the obfuscator) over 29 points,
the headline points' second victims at the budget found, 21 obfuscators of 8 epochs (about 130 s an epoch), 7 AAEs and
the judge come to about 110 CPU-hours (150 if every search reaches its cap). That estimate counts each point's attacker
AAEs as its own; they are shared (`veil.attacks.own_aae`: one per latent size, budget and seed, kept under the work
folder), by the 12 obfuscator points of latent size 10 and by the AAE's 6 noise points and the keyed AAE, so the sweep
costs less, by an amount not measured. The default AAE's victims (`victim-aae-seed<N>`) are trained as the privacy
report trains its own (same recipe, data half and seeds): copied from its work folder into this one, they are loaded
instead of trained again. `--quick` (8 points, smoke budgets): 33 minutes of wall time here.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from veil import defaults
from veil.attacks.semantic import public_classifier
from veil.errors import VeilError
from veil.experiments.privacy.protocol import PrivacyContext, PrivacySetup, load_sets, plan_method
from veil.io.output import claim_output, is_occupied

#: the obfuscator's centre: every family varies one knob from it
OBFUSCATOR = {"latent_dim": 10, "privacy_weight": 1.0, "noise": 0.0, "dcor_weight": 1.0, "adversaries": 2,
              "reinit_every": 2}
LAMBDAS = (0.0, 1.0, 2.0, 3.0, 10.0)
OBFUSCATOR_NOISE = (0.1, 0.25, 0.35, 0.5, 1.0)
OBFUSCATOR_LATENTS = (8, 16, 24, 32, 64)
AAE_NOISE = (0.1, 0.25, 0.5, 1.0, 2.0)
AAE_GAUSS = (4, 8, 16, 48, 128)
#: the points trained and attacked once per victim seed
HEADLINE = ("obf-l2", "obf-l3", "obf-s0p25", "obf-s0p35", "aae-s0", "aae-s1", "aae-keyed")
#: the points of a --quick run (without --schemes): each family's centre or an extreme, one per knob
QUICK = ("obf-l0", "obf-l3", "obf-s0p35", "obf-d16", "aae-s0", "aae-s1", "aae-g16", "aae-keyed")
#: threat c's known pairs (the issue's 1,000)
PAIRS = (1000,)
#: the plain CNN utility is measured against: the obfuscator encoder's first two widths
BASELINE_WIDTHS = (16, 32)


@dataclass(frozen=True)
class Point:
    """One point of the sweep: its family, the knob and value it varies, the masking method and its parameters."""

    name: str
    family: str
    knob: str
    value: float
    method: str
    params: dict = field(default_factory=dict)
    headline: bool = False


def _name(value: float) -> str:
    return f"{value:g}".replace(".", "p")


def sweep() -> list[Point]:
    """Every point (see the module docstring); names are stable, as run folders are named after them."""
    def obfuscator(name, knob, value, **change):
        return Point(name, "obfuscator", knob, value, "obfuscator", {**OBFUSCATOR, **change})

    points = [obfuscator(f"obf-l{_name(v)}", "privacy_weight", v, privacy_weight=v) for v in LAMBDAS]
    points += [obfuscator(f"obf-s{_name(v)}", "noise", v, noise=v) for v in OBFUSCATOR_NOISE]
    points += [obfuscator(f"obf-d{v}", "latent_dim", v, latent_dim=v) for v in OBFUSCATOR_LATENTS]
    points += [obfuscator(f"obf-adv-l{_name(v)}", "privacy_weight", v, privacy_weight=v, dcor_weight=0.0)
               for v in (1.0, 10.0)]  # the adversarial route alone (issue 26: it fools its own adversaries only)
    points.append(Point("aae-s0", "aae-noise", "latent_noise", 0.0, "aae"))
    points += [Point(f"aae-s{_name(v)}", "aae-noise", "latent_noise", v, "aae", {"latent_noise": v}) for v in AAE_NOISE]
    points += [Point(f"aae-g{v}", "aae-latent", "gauss_dim", v, "aae", {"gauss_dim": v}) for v in AAE_GAUSS]
    points.append(Point("aae-keyed", "aae-keyed", "key", 1.0, "aae-keyed"))
    return [replace(p, headline=p.name in HEADLINE) for p in points]


@dataclass(frozen=True)
class FrontierSetup:
    """The privacy report's setup (subsets, budgets, saturation search) with threat c at `PAIRS`, the victims'
    training epochs and the victim seeds of the headline points."""

    privacy: PrivacySetup
    obfuscator_epochs: int
    aae_epochs: int | None  # None: the default recipe's
    headline_seeds: tuple[int, ...]

    @classmethod
    def make(cls, quick: bool) -> "FrontierSetup":
        privacy = PrivacySetup.make(quick)
        if quick:
            return cls(replace(privacy, pairs=(100,)), 2, 2, (0,))
        return cls(replace(privacy, pairs=PAIRS), 8, None, (0, 1))


def chosen_points(names: str | None, quick: bool = False) -> list[Point]:
    """The points named (comma-separated), else every point with the headline points first (a sweep that spans
    sessions has the goal's points measured before the rest), or `QUICK`'s for a quick run."""
    every = sweep()
    if not names:
        return [p for p in every if p.name in QUICK] if quick else sorted(every, key=lambda p: not p.headline)
    known = {p.name: p for p in every}
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise VeilError(f"unknown frontier point(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in chosen]


def run(out_dir, work: str | None = None, quick: bool = False, seed: int = 0, data: str | None = None,
        points: str | None = None, skip: str | None = None, privacy_report: str | None = None,
        assemble_only: bool = False, force: bool = False) -> dict:
    """Train and attack the chosen points (default all) not done yet, then rebuild frontier.json, the plots and
    report.md from every run present; `privacy_report`: a privacy report folder whose schemes are drawn beside the
    points. An existing frontier folder is continued in place; `force` starts afresh beside it."""
    from veil.experiments.frontier.report import assemble

    chosen = chosen_points(points, quick)
    setup = FrontierSetup.make(quick)
    out_dir, work_dir = Path(out_dir), Path(work or "runs/frontier")
    if not force and is_occupied(out_dir) and not (out_dir / "runs").is_dir():
        raise VeilError("exists and is not a frontier report folder (no runs/); choose a new --out", out_dir)
    with claim_output(out_dir, force, folder=True, writer="report frontier", reads=[work_dir, privacy_report],
                      resume=not force, in_place=True) as out:
        if not assemble_only:
            public, owner, victim = load_sets(data or defaults.CIFAR10, setup.privacy, seed)
            classifier = public_classifier(public, setup.privacy.attack, seed, progress=True)
            context = FrontierContext(out, work_dir, setup, seed, public, owner, victim, classifier,
                                      skip={name.strip() for name in (skip or "").split(",") if name.strip()})
            for point in chosen:
                context.point(point)
        return assemble(out, setup, seed, privacy_report=privacy_report)


class FrontierContext(PrivacyContext):
    """`PrivacyContext` with the sweep's points as its schemes: each point's victim is trained here (resumable, in
    its own folder under the work folder), all its runs are searched to saturation, and its utility is divided by
    the plain CNN of the encoder's size."""

    def __init__(self, out_dir: Path, work_dir: Path, setup: FrontierSetup, seed: int, public, owner, victim,
                 classifier, skip=frozenset()):
        super().__init__(out_dir, work_dir, setup.privacy, seed, public, owner, victim, classifier, None, skip)
        self.frontier = setup
        self.points = {p.name: p for p in sweep()}
        self.write_classmean()

    def write_classmean(self) -> None:
        """The class-mean baseline (see `report.classmean_ssim`), once per report."""
        from veil.experiments.frontier.report import CLASSMEAN, classmean_record
        from veil.results import write_results

        path = self.out_dir / "runs" / CLASSMEAN
        if not path.exists():
            figures, config = classmean_record(self.public, self.victim)
            write_results(path, figures, seed=self.seed, config=config)

    def point(self, point: Point) -> None:
        seeds = self.frontier.headline_seeds if point.headline else self.frontier.headline_seeds[:1]
        for victim_seed in (self.seed + offset for offset in seeds):
            folder = point.name if victim_seed == self.seed else f"{point.name}/seed{victim_seed}"
            self.attack_victim(point.name, victim_seed, self.out_dir / "runs" / folder)

    def plan(self, scheme: str) -> list[tuple[str, str, int | None]]:
        return plan_method(self.points[scheme].method, self.setup.pairs)

    def searched(self, scheme: str) -> bool:
        return True

    def baseline(self, masked) -> tuple[Path, str, dict]:
        """The plain CNN of the encoder's size (`BASELINE_WIDTHS`), at the utility budget."""
        widths = "x".join(map(str, BASELINE_WIDTHS))
        return self.out_dir / "runs" / f"plain_cnn{widths}.json", "cnn", {"widths": BASELINE_WIDTHS}

    def victim_masker(self, scheme: str, victim_seed: int):
        point = self.points[scheme]
        if point.method == "obfuscator":
            return self.trained(f"victim-{scheme}-seed{victim_seed}", "obfuscator",
                                epochs=self.frontier.obfuscator_epochs, **point.params)
        if point.method == "aae-keyed":
            from veil.maskers.base import masker_class

            self.trained(f"victim-aae-seed{victim_seed}", "aae", epochs=self.frontier.aae_epochs)
            return masker_class("aae-keyed")(self.victim_secret(), str(self.work_dir / f"victim-aae-seed{victim_seed}"))
        noise = point.params.get("latent_noise", 0.0)
        trained = {k: v for k, v in point.params.items() if k != "latent_noise"}
        folder = "victim-aae" + "".join(f"-{k}{v}" for k, v in sorted(trained.items())) + f"-seed{victim_seed}"
        masker = self.trained(folder, "aae", epochs=self.frontier.aae_epochs, **trained)
        masker.latent_noise = noise  # masking-time noise: the same trained network, noisier vectors
        return masker

    def trained(self, folder: str, method: str, **params):
        """The victim masker trained on the owner's images in `folder` under the work folder (loaded when done,
        resumed when interrupted), with a training seed drawn at random as a user's is (the victim's number only
        names the folder)."""
        from veil.maskers import load_masker
        from veil.workflows import train_masker

        where = self.work_dir / folder
        if (where / "manifest.json").exists():
            return load_masker(where)
        print(f"[frontier] training the victim {method} in {where} (resumed if interrupted)", flush=True)
        return train_masker(self.owner, where, resume=True, method=method, **params)
