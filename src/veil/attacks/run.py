"""Run one attack under one threat model and measure what it reveals: the library behind `veil attack`."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import veil.attacks.scoring as scoring
from veil.attacks.base import THREATS, Budget, Knowledge, attack_class, check_grants
from veil.attacks.grid import attack_grid
from veil.attacks.semantic import semantic_accuracy
from veil.metrics import proportion_interval
from veil.data import ImageSet
from veil.errors import VeilError
from veil.io.output import claim_output
from veil.masked import MaskedSet
from veil.shards import load_masked
from veil.maskers.base import Masker, masker_class
from veil.results import write_results


@dataclass
class Outcome:
    """Figures (the contract names first), per-image metrics, the reconstructions and what the attack spent."""

    figures: dict
    per_image: dict
    reconstructions: np.ndarray
    scored: np.ndarray  # indices of the victim images that were scored (all but threat c's known pairs)
    details: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)


def run_attack(method: str, threat: str, masked: MaskedSet, victim: ImageSet, public: ImageSet,
               oracle: Masker | None = None, pairs: int | tuple | None = None, seed: int = 0,
               budget: Budget | None = None, classifier=None, progress: bool = False,
               model_cache: Path | None = None) -> Outcome:
    """Attack `masked` (the victim's masked set) and score the result against `victim` (its plain images, in the
    same order). `pairs`: under threat c, either a number n of the victim's own (image, masked) pairs to reveal
    (those images are then not scored) or an explicit (images, masked) tuple. `classifier`: trained on plain
    public images, for semantic leakage (see `attacks.semantic`). `model_cache`: see `Knowledge.model_cache`."""
    budget = budget or Budget()
    check_grants(threat, oracle is not None, pairs is not None)
    attack = attack_class(method)(progress=progress)
    attack.check_applies(masked.method, threat)
    if len(victim) != len(masked):
        raise VeilError(f"{len(victim)} victim images for {len(masked)} masked samples; --victim must be the images "
                        "that were masked, in the same order")
    check_sizes(victim, public, masked)
    attack.check_size(victim.size)
    scored = np.arange(len(victim))
    known = pairs
    if isinstance(pairs, (int, np.integer)):
        scored, known = reveal_pairs(victim, masked, int(pairs), seed)
    knowledge = Knowledge(threat, masked.subset(scored), public, oracle=oracle, pairs=known, seed=seed, budget=budget,
                          model_cache=model_cache)
    start = time.time()
    recon = attack.reconstruct(knowledge)
    attack_s = time.time() - start
    truth = victim.subset(scored)
    values = scoring.per_image(truth.images, recon)
    figures = contract_figures(values, truth, recon, masked.subset(scored), classifier)
    config = {"attack": method, "threat": threat, "threat_model": THREATS[threat], "scheme": masked.method,
              "scheme_config": masked.meta.get("config", {}), "fingerprint": masked.fingerprint,
              "victim": victim.source, "victim_scored": len(scored), "public": public.source,
              "public_images": len(public), "known_pairs": None if known is None else len(known[0]),
              "budget": asdict(budget), "attack_s": round(attack_s, 1)}
    return Outcome(figures, values, recon, scored, dict(attack.details_), config)


def check_sizes(victim: ImageSet, public: ImageSet, masked: MaskedSet) -> None:
    """The victim's images, the public ones and the masked set's images must share one size."""
    recorded = masked.data.shape[2:] if masked.data.ndim == 4 else masked.meta.get("image_shape", [3, *victim.size])[1:]
    for what, size in (("public images", public.size), ("masked set's images", tuple(recorded))):
        if tuple(size) != victim.size:
            raise VeilError(f"the {what} are {size[0]}x{size[1]}, the victim's {victim.size[0]}x{victim.size[1]}; "
                            "give --size to load them at the masked size")


def reveal_pairs(victim: ImageSet, masked: MaskedSet, n: int, seed: int) -> tuple[np.ndarray, tuple]:
    """n of the victim's own pairs, chosen at random; the other images are the ones scored."""
    if not 0 < n < len(victim):
        raise VeilError(f"--pairs must be between 1 and {len(victim) - 1} (the rest of the victim set is scored), "
                        f"got {n}")
    chosen = np.zeros(len(victim), bool)
    chosen[np.random.default_rng(seed).choice(len(victim), n, replace=False)] = True
    return np.flatnonzero(~chosen), (victim.images[chosen], masked.data[chosen])


def contract_figures(values: dict, truth: ImageSet, recon: np.ndarray, masked: MaskedSet, classifier) -> dict:
    summary = scoring.summary(values)
    figures = {name: summary[name] for name in ("ssim_median", "ssim_q1", "ssim_q3", "psnr_median", "mse_median")}
    low, high = scoring.median_interval(values["ssim"])
    figures.update({"ssim_median_low": low, "ssim_median_high": high, "ssim_mean": summary["ssim_mean"]})
    figures.update(scoring.linkage(truth.images, recon, truth.labels))
    if classifier is not None and truth.labels is not None:
        accuracy = semantic_accuracy(classifier, recon, truth.labels, truth.class_names)
        hits = int(round(accuracy * len(truth)))
        low, high = proportion_interval(hits, len(truth))
        figures.update({"semantic_accuracy": accuracy, "semantic_accuracy_low": low, "semantic_accuracy_high": high,
                        "semantic_accuracy_plain": semantic_accuracy(classifier, truth.images, truth.labels,
                                                                     truth.class_names),
                        "semantic_chance": 1.0 / len(truth.class_names)})
    scheme = masker_class(masked.method)
    if scheme.structure == "blocks":
        block = masked.meta.get("config", {}).get("block", scheme.default_block)
        figures["blocks_correct"] = scoring.blocks_correct(truth.images, recon, block)
    if masked.data.ndim == 4:
        figures["masked_ssim_median"] = float(np.median(scoring.per_image(truth.images, masked.data)["ssim"]))
    figures["n_scored"] = len(truth)
    return figures


def fill_attack_folder(folder: Path, outcome: Outcome, victim: ImageSet, masked: MaskedSet, seed: int) -> None:
    """`attack.json` (figures, meta, config, details) and `grid.png` (victim, masked, reconstruction rows)."""
    show = outcome.scored[:8]
    config = outcome.config
    write_results(folder / "attack.json", outcome.figures, seed=seed, config=config, details=outcome.details)
    attack_grid(folder / "grid.png", victim.images[show], masked.data[show], outcome.reconstructions[:len(show)],
                f"{config['attack']} on {config['scheme']}, threat {config['threat']}: median SSIM "
                f"{outcome.figures['ssim_median']:.3f}")


def victim_oracle(masked: MaskedSet, masked_file, masker_dir=None, secret: bytes | None = None) -> Masker:
    """Threat b's access to the victim's masking function: its trained encoder (an AAE's; the decoder is never
    read), its keyed scheme under its secret, or a masker without a secret rebuilt from the set's configuration. It
    must match the set's fingerprint."""
    from veil.maskers.base import load_masker

    cls = masker_class(masked.method)
    if cls.fits_on_data:
        if masker_dir is None:
            raise VeilError(f"threat b against {masked.method} needs the victim's encoder: --masker DIR")
        oracle = load_masker(masker_dir, public_only=True)
    elif cls.keyed:
        if secret is None:
            raise VeilError(f"threat b against {masked.method} needs the victim's key (--key-file or --key-env), "
                            "used as a black-box masking oracle")
        oracle = cls(secret, **masked.meta.get("config", {}))
    else:
        if masker_dir is not None or secret is not None:
            raise VeilError(f"{masked.method} has no key or masker folder; its oracle is rebuilt from the set's "
                            "configuration")
        oracle = cls(**masked.meta.get("config", {}))
    if oracle.fingerprint != masked.fingerprint:
        raise VeilError("the encoder or key given does not match the fingerprint the set was masked with",
                        masked_file)
    return oracle


def attack_files(method: str, threat: str, masked_file, victim: ImageSet, public: ImageSet, out_dir,
                 masker_dir=None, secret: bytes | None = None, pairs: int | None = None, seed: int = 0,
                 budget: Budget | None = None, progress: bool = True, force: bool = False,
                 model_cache: Path | None = None) -> dict:
    """`veil attack`: load the masked set, grant what the threat model allows, attack, score, write the output (a
    new folder; `force`: into an existing one, see `veil.io.output.claim_output`). `model_cache`: see
    `Knowledge.model_cache`."""
    from veil.attacks.semantic import public_classifier

    # under threat b, `victim_oracle` names what the scheme's oracle needs (a key, an encoder, or nothing)
    check_grants(threat, threat == "b" or masker_dir is not None or secret is not None, pairs is not None)
    masked = load_masked(masked_file)
    attack_class(method).check_applies(masked.method, threat)
    with claim_output(out_dir, force, folder=True, writer="attack", reads=[masker_dir]) as tmp:  # before a long run
        oracle = victim_oracle(masked, masked_file, masker_dir, secret) if threat == "b" else None
        budget = budget or Budget()
        classifier = public_classifier(public, budget, seed, progress) if public.labels is not None else None
        outcome = run_attack(method, threat, masked, victim, public, oracle, pairs, seed, budget, classifier,
                             progress, model_cache)
        fill_attack_folder(tmp, outcome, victim, masked, seed)
    return outcome.figures
