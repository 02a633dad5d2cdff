"""An AAE of the victim's recipe, trained by the attacker on public images with a seed of its own: the "decoder of
another training run" of the masking paper's test, and the starting point of the latent attacks.

Trained once per (training images, recipe, epochs, seed) and reused by the attacks that need it: kept in memory for
the process and, when the attacker has a model cache (`Knowledge.model_cache`; a report's work folder), on disk, so
that a report resumed in a new process loads its AAEs instead of training them again. These AAEs come from public
images and the attacker's own seeds only: they hold nothing of the victim's. A resumed report thus pays for its AAEs
what one uninterrupted process would have paid, which keeps where its saturation searches stop (their time cap
counts CPU seconds) independent of where the sessions were cut."""
from __future__ import annotations

import copy
import hashlib
import shutil
from dataclasses import fields
from pathlib import Path

import numpy as np

from veil.attacks.base import Attack, Knowledge
from veil.errors import VeilError
from veil.io.write import write_json
from veil.maskers.aae import AAEConfig, AAEMasker

_TRAINED: dict[tuple, AAEMasker] = {}
#: what the attacker never copies from a recorded recipe: its own seed, and the budget's epochs
NOT_RECIPE = ("seed", "epochs")
#: recipe fields that act when masking, not in training: one trained AAE serves every value, each caller getting a
#: copy that applies its own (the frontier's noise points share their attacker's AAEs as they share the victim's)
MASKING_TIME = ("latent_noise",)
#: in a cached AAE's folder beside the AAE itself: the key it was trained for
TRAINED_FILE = "trained.json"


def victim_recipe(knowledge: Knowledge) -> dict:
    """The victim's training recipe (the attacker knows the algorithm): the recipe the masked set records (an AAE's
    masked set records it without the seed, `veil.maskers.aae_numpy.public_recipe`), else `AAEMasker()`'s defaults,
    which README's train-masker example trains; the latent size always follows the masked vectors, split as the
    recipe records it or else by `latent_split`."""
    recipe = knowledge.masked.meta.get("recipe", knowledge.config)
    recorded = {name: value for name, value in recipe.items()
                if name in {f.name for f in fields(AAEConfig)} and name not in NOT_RECIPE}
    dim = knowledge.masked.data.shape[1]
    cat = recorded["cat_dim"] if "cat_dim" in recorded else latent_split(dim)[1]
    return {**recorded, "gauss_dim": dim - cat, "cat_dim": cat}


def recipe_split(knowledge: Knowledge) -> tuple[int, int]:
    """The masked vectors' (Gaussian, categorical) sizes, as the victim's recipe splits them (the attacker knows it)."""
    recipe = victim_recipe(knowledge)
    return recipe["gauss_dim"], recipe["cat_dim"]


def latent_split(dim: int) -> tuple[int, int]:
    """(Gaussian, categorical) sizes of an AAE-shaped model for vectors of `dim` numbers whose split is not recorded
    (an obfuscator's): the default recipe's 20 categories, but never more than half the vector, so that an
    obfuscator's 16 numbers give 8 and 8 instead of no Gaussian part at all."""
    if dim < 2:
        raise VeilError(f"vectors of {dim} number(s) are too short for an AAE-shaped attacker (2 at least)")
    cat = min(AAEConfig.cat_dim, dim // 2)
    return dim - cat, cat


def own_aae(knowledge: Knowledge, progress: bool = False, run: int = 0, seed: int | None = None) -> AAEMasker:
    """The attacker's `run`-th AAE (seed: `seed`, else the attack seed + 1 + run), trained for the budget's
    `aae_epochs` on `aae_images` public images, or reused (from memory, else from the model cache)."""
    budget = knowledge.budget
    seed = knowledge.seed + 1 + run if seed is None else seed
    recipe = victim_recipe(knowledge)
    trained = {name: value for name, value in recipe.items() if name not in MASKING_TIME}
    images = knowledge.public_subset(budget.aae_images)
    digest = hashlib.sha256(np.ascontiguousarray(images).data).hexdigest()
    key = (digest, budget.aae_epochs, tuple(sorted(trained.items())), seed)
    if key not in _TRAINED:
        folder = None if knowledge.model_cache is None else cache_folder(knowledge.model_cache, key)
        if folder is not None and (folder / TRAINED_FILE).exists():
            _TRAINED[key] = AAEMasker.load(folder)
        else:
            masker = AAEMasker(**{**trained, "epochs": budget.aae_epochs, "seed": seed})
            _TRAINED[key] = masker.fit(images, progress=progress)
            if folder is not None:
                keep(masker, key, folder)
    return with_masking_time(_TRAINED[key], recipe)


def with_masking_time(masker: AAEMasker, recipe: dict) -> AAEMasker:
    """`masker` itself, or a copy sharing its networks that applies the recipe's masking-time fields."""
    changed = {name: recipe[name] for name in MASKING_TIME if name in recipe and recipe[name] != getattr(masker, name)}
    if not changed:
        return masker
    applied = copy.copy(masker)
    for name, value in changed.items():
        setattr(applied, name, value)
    return applied


def cache_folder(cache: Path, key: tuple) -> Path:
    return cache / "own-aae" / hashlib.sha256(repr(key).encode()).hexdigest()[:24]


def keep(masker: AAEMasker, key: tuple, folder: Path) -> None:
    """Save the AAE under a temporary name, then move it into place, so that an interrupted save is never read
    back as a trained AAE (the folder appears whole, `TRAINED_FILE` included, or not at all)."""
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)  # this key's save, interrupted in an earlier process
    masker.save(partial)
    write_json(partial / TRAINED_FILE, {"key": repr(key)})
    partial.rename(folder)


class OwnAAEAttack(Attack):
    """An attack on AAE vectors under threat a that starts from AAEs the attacker trains itself."""

    threats = ("a",)
    requires = {"structure": "latent"}
    budget_fields = ("aae_images", "aae_epochs")
    image_sizes = ((32, 32),)  # the AAE is the paper's 32x32 network
