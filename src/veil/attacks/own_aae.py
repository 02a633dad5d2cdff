"""An AAE of the victim's architecture, trained by the attacker on public images with a seed of its own: the
"decoder of another training run" of the masking paper's test, and the starting point of latent alignment.
Trained once per (public images, budget, seed) in a process and reused by the attacks that need it."""
from __future__ import annotations

from veil.attacks.base import Attack, Knowledge
from veil.maskers.aae import AAEConfig, AAEMasker

_TRAINED: dict[tuple, AAEMasker] = {}


def own_aae(knowledge: Knowledge, progress: bool = False, run: int = 0) -> AAEMasker:
    """The attacker's `run`-th AAE (seed: the attack seed + 1 + run, never the victim's training seed 0 by
    default)."""
    budget = knowledge.budget
    seed = knowledge.seed + 1 + run
    key = (knowledge.public.source, len(knowledge.public), budget.aae_images, budget.aae_epochs, budget.batch_size,
           seed, knowledge.masked.data.shape[1])
    if key not in _TRAINED:
        gauss = knowledge.masked.data.shape[1] - AAEConfig().cat_dim
        # the victim's recipe in `veil report privacy` (the attacker knows the algorithm)
        masker = AAEMasker(**{**AAEMasker.presets["paper"], "gauss_dim": gauss, "epochs": budget.aae_epochs,
                              "batch_size": budget.batch_size, "seed": seed})
        _TRAINED[key] = masker.fit(knowledge.public_subset(budget.aae_images), progress=progress)
    return _TRAINED[key]


class OwnAAEAttack(Attack):
    """An attack on AAE vectors under threat a that starts from AAEs the attacker trains itself."""

    threats = ("a",)
    schemes = ("aae",)
