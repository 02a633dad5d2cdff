"""Guess the victim AAE's training seed: train an AAE of the victim's recipe on public images under each seed a user
is likely to have typed (0, 1, 2, ...), keep the one whose latent space the victim's vectors fit best, and decode the
vectors with its decoder.

Threat a (ciphertext-only): the masked vectors with the labels that travel with them, the recipe the masked set
records, public images; no secret. Two AAEs of one recipe and one seed, trained on different images, have latent
spaces that nearly line up (measured on CIFAR-10, default recipe: the decoder of an attacker's AAE of the victim's
seed reconstructs the victim's test images at median SSIM 0.567, one of another seed at 0.033), so a seed that can be
guessed is a leak. The guess is checked without the victim's images: a nearest-centroid classifier fitted on the
public images' latents under the guessed AAE is scored on the victim's vectors and their labels (near chance when
the spaces do not line up); an unlabelled set is scored by how close its vectors lie to the public latents.

Against a seed drawn by `veil train-masker` (63 random bits, its default) a hit has probability at most
guessed_seeds / 2**63: this is the attack on a user who typed `--seed`, and on maskers trained before the default
was random (seed 0)."""
from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestCentroid, NearestNeighbors

from veil.attacks.base import Knowledge, register_attack
from veil.attacks.own_aae import OwnAAEAttack, own_aae

#: victim vectors an unlabelled set is scored on (nearest public latent), enough to rank the guesses
UNLABELLED_SCORED = 1000


@register_attack("seed-guess")
class SeedGuessAttack(OwnAAEAttack):

    budget_fields = ("aae_images", "aae_epochs", "guessed_seeds")

    def reconstruct(self, knowledge: Knowledge) -> np.ndarray:
        indices = knowledge.public_indices(knowledge.budget.aae_images)  # the images each guessed AAE learnt from
        public = (knowledge.public.images[indices], None if knowledge.public.labels is None
                  else knowledge.public.labels[indices])
        scores = {seed: fit_score(knowledge, own_aae(knowledge, self.progress, seed=seed), *public)
                  for seed in range(knowledge.budget.guessed_seeds)}
        best = max(scores, key=scores.get)
        self.details_.update({"guessed_seed": best, "seed_scores": {str(s): v for s, v in scores.items()},
                              "score": "label accuracy of public latent centroids" if has_labels(knowledge)
                              else "minus the median distance to the nearest public latent"})
        return own_aae(knowledge, seed=best).inverse_transform(knowledge.masked.data)


def has_labels(knowledge: Knowledge) -> bool:
    return knowledge.masked.labels is not None and knowledge.public.labels is not None


def fit_score(knowledge: Knowledge, guessed, images: np.ndarray, labels: np.ndarray | None) -> float:
    """How well the victim's vectors fit the latent space of the guessed AAE (higher: better), from public images (and
    their labels) and the labels that travel with the masked set."""
    public = guessed.transform(images)
    victim = knowledge.masked.data
    if has_labels(knowledge):
        centroids = NearestCentroid().fit(public, labels)
        return float(np.mean(centroids.predict(victim) == knowledge.masked.labels))
    sample = knowledge.rng("seed-guess").choice(len(victim), min(len(victim), UNLABELLED_SCORED), replace=False)
    distances, _ = NearestNeighbors(n_neighbors=1).fit(public).kneighbors(victim[sample])
    return -float(np.median(distances))
