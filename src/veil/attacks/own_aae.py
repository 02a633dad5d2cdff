"""An AAE of the victim's recipe, trained by the attacker on public images with a seed of its own: the "decoder of
another training run" of the masking paper's test, and the starting point of the latent attacks.
Trained once per (public images, recipe, budget, seed) in a process and reused by the attacks that need it."""
from __future__ import annotations

from dataclasses import fields

from veil.attacks.base import Attack, Knowledge
from veil.maskers.aae import AAEConfig, AAEMasker

_TRAINED: dict[tuple, AAEMasker] = {}
#: what the attacker never copies from a recorded recipe: its own seed, and the budget's epochs
NOT_RECIPE = ("seed", "epochs")


def victim_recipe(knowledge: Knowledge) -> dict:
    """The victim's training recipe (the attacker knows the algorithm): the recipe the masked set records (an AAE's
    masked set records it without the seed, `veil.maskers.aae_numpy.public_recipe`), else `AAEMasker()`'s defaults,
    which README's train-masker example trains; the latent size always follows the masked vectors."""
    recipe = knowledge.masked.meta.get("recipe", knowledge.config)
    recorded = {name: value for name, value in recipe.items()
                if name in {f.name for f in fields(AAEConfig)} and name not in NOT_RECIPE}
    gauss = knowledge.masked.data.shape[1] - recorded.get("cat_dim", AAEConfig.cat_dim)
    return {**recorded, "gauss_dim": gauss}


def own_aae(knowledge: Knowledge, progress: bool = False, run: int = 0) -> AAEMasker:
    """The attacker's `run`-th AAE (seed: the attack seed + 1 + run, never the victim's training seed 0 by
    default), trained for the budget's `aae_epochs` on `aae_images` public images."""
    budget = knowledge.budget
    seed = knowledge.seed + 1 + run
    recipe = victim_recipe(knowledge)
    key = (knowledge.public.source, len(knowledge.public), budget.aae_images, budget.aae_epochs,
           tuple(sorted(recipe.items())), seed)
    if key not in _TRAINED:
        masker = AAEMasker(**{**recipe, "epochs": budget.aae_epochs, "seed": seed})
        _TRAINED[key] = masker.fit(knowledge.public_subset(budget.aae_images), progress=progress)
    return _TRAINED[key]


class OwnAAEAttack(Attack):
    """An attack on AAE vectors under threat a that starts from AAEs the attacker trains itself."""

    threats = ("a",)
    requires = {"structure": "latent"}
    budget_fields = ("aae_images", "aae_epochs")
    image_sizes = ((32, 32),)  # the AAE is the paper's 32x32 network
