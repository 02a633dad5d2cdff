"""Latent alignment against AAE masking, threat a (ciphertext-only: masked vectors, the architecture, public images).

The attacker trains an AAE of the same architecture on public images, then looks for the map from the victim's
latent space onto its own without any pairs, and decodes with its own decoder. Both latents are pushed towards the
same priors (N(0, 1) and one-hot), so the map is taken to be orthogonal (Wasserstein-Procrustes, Grave et al. 2019):
1. start: align the principal axes of the two latent clouds, ordered by variance, signs fixed by skewness;
2. repeat: match victim vectors to the attacker's public latents one-to-one (optimal assignment on a sample), then
   refit the orthogonal map to the matched pairs (Procrustes, an SVD).
What this achieves is reported whatever it is: the priors make the latent distribution nearly rotation-invariant,
which is exactly what should defeat it.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from veil.attacks.base import Knowledge, register_attack
from veil.attacks.own_aae import OwnAAEAttack, own_aae

SAMPLE = 1000
ITERATIONS = 10


@register_attack("latent-align")
class LatentAlignAttack(OwnAAEAttack):
    budget_fields = OwnAAEAttack.budget_fields + ("train_images",)

    def reconstruct(self, knowledge: Knowledge) -> np.ndarray:
        attacker = own_aae(knowledge, self.progress)
        victim = knowledge.masked.data.astype(np.float64)
        own = attacker.transform(knowledge.public_subset()).astype(np.float64)
        rotation, cost = wasserstein_procrustes(victim, own, knowledge.rng("latent-align"))
        self.details_.update({"decoder_seed": attacker.config.seed, "matching_cost": cost, "sample": SAMPLE,
                              "iterations": ITERATIONS})
        return attacker.inverse_transform(((victim - victim.mean(0)) @ rotation + own.mean(0)).astype(np.float32))


def principal_axes(points: np.ndarray) -> np.ndarray:
    """Columns: principal axes by decreasing variance, each oriented so that the projections' skewness is >= 0."""
    centred = points - points.mean(0)
    _, vectors = np.linalg.eigh(np.cov(centred, rowvar=False))
    vectors = vectors[:, ::-1]
    skew = ((centred @ vectors) ** 3).mean(0)
    return vectors * np.where(skew < 0, -1.0, 1.0)


def procrustes(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The orthogonal R minimising ||source @ R - target||."""
    u, _, vt = np.linalg.svd(source.T @ target)
    return u @ vt


def wasserstein_procrustes(victim: np.ndarray, own: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """An orthogonal map of centred victim latents onto centred own latents, and the final mean matching cost."""
    victim_c, own_c = victim - victim.mean(0), own - own.mean(0)
    rotation = principal_axes(victim) @ principal_axes(own).T
    cost = float("nan")
    for _ in range(ITERATIONS):
        v = victim_c[rng.choice(len(victim_c), min(SAMPLE, len(victim_c)), replace=False)]
        o = own_c[rng.choice(len(own_c), min(SAMPLE, len(own_c)), replace=False)]
        mapped = v @ rotation
        distances = (mapped ** 2).sum(1)[:, None] + (o ** 2).sum(1)[None] - 2 * mapped @ o.T
        rows, cols = linear_sum_assignment(distances)
        cost = float(distances[rows, cols].mean())
        rotation = procrustes(v[rows], o[cols])
    return rotation, cost
