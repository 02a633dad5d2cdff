"""The ITN with a public prior, threat c. Known pairs are few; `itn` under c learns both its parts from them alone.
This variant first teaches the convolutional refinement from public images, by rehearsing threat c under secrets of
the attacker's own: for each own secret it masks a group of public images, fits the ITN's ridge map on n of them (n
as many as it knows of the victim's) and applies it to the others; the refinement learns, over all those secrets,
to turn an n-pair ridge estimate (and the masked image) into the image, i.e. the scheme's general inverse structure.
Then, as `itn` does, the victim's n pairs give the affine map (ridge regression) and fine-tune the refinement (as
many steps as over the public images), which now starts from the prior instead of from the identity.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from veil.attacks.base import Attack, Knowledge, register_attack
from veil.attacks.itn import (OWN_KEYS, equal_steps_epochs, init_affine, predict, ridge_inverse,
                              train_regression)
from veil.models.inverse import InverseNet
from veil.training import set_seed


@register_attack("itn-prior")
class PriorITNAttack(Attack):
    """Threat c, on image schemes the attacker can simulate with a secret of its own (not a trained AAE)."""

    threats = ("c",)
    requires = {"fits_on_data": False}  # simulated with secrets of its own: a trained AAE cannot be
    budget_fields = ("train_images", "epochs")
    image_sizes = ((32, 32),)  # InverseNet's affine map over all 3x32x32 values

    def reconstruct(self, knowledge: Knowledge) -> np.ndarray:
        start = time.time()
        budget = knowledge.budget
        images, masked = (np.asarray(part, np.float32) for part in knowledge.pairs)
        set_seed(knowledge.seed)
        network = InverseNet()
        inputs, targets, secrets = rehearsals(knowledge, len(images))
        prior_epochs = equal_steps_epochs(len(targets), budget.train_images, budget.epochs, budget.batch_size)
        train_regression(Refinement(network), inputs, targets, prior_epochs, budget.batch_size, knowledge.seed,
                         self.progress)
        self.details_["ridge_strength"] = init_affine(network, masked, images, knowledge.rng("ridge"))
        network.affine.requires_grad_(False)
        pair_epochs = equal_steps_epochs(len(images), budget.train_images, budget.epochs, budget.batch_size)
        train_regression(network, masked, images, pair_epochs, budget.batch_size, knowledge.seed, self.progress)
        self.details_.update({"pairs": len(images), "own_secrets": secrets, "rehearsed_images": len(targets),
                              "prior_epochs": prior_epochs, "pair_epochs": pair_epochs,
                              "train_s": round(time.time() - start, 1)})
        return predict(network, knowledge.masked.data)


def rehearsals(knowledge: Knowledge, pairs: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Threat c rehearsed on public images under secrets of the attacker's own: for each secret, a group of public
    images masked, `pairs` of them fitting a ridge map, the others estimated by it. Returns the refinement's inputs
    (the estimate and the masked image, 6 channels), its targets (the images) and the number of secrets."""
    public = knowledge.public_subset()
    pairs = min(pairs, len(public) // 2)
    secrets = max(1, min(OWN_KEYS, len(public) // (2 * pairs)))
    rng = knowledge.rng("rehearsal")
    inputs, targets = [], []
    for group in np.array_split(public, secrets):
        masked = knowledge.own_masker(rng).transform(group)
        known, rest = slice(0, pairs), slice(pairs, None)
        weight, bias, _ = ridge_inverse(masked[known].reshape(pairs, -1), group[known].reshape(pairs, -1), rng)
        estimate = (masked[rest].reshape(len(group[rest]), -1) @ weight + bias).reshape(group[rest].shape)
        inputs.append(np.concatenate([estimate, masked[rest]], axis=1).astype(np.float32))
        targets.append(group[rest])
    return np.concatenate(inputs), np.concatenate(targets), secrets


class Refinement(torch.nn.Module):
    """An ITN's refinement alone: (affine estimate, masked image) -> the estimate plus the refinement's correction,
    as in `InverseNet.forward`."""

    def __init__(self, network: InverseNet):
        super().__init__()
        self.refine = network.refine

    def forward(self, estimate_and_masked: torch.Tensor) -> torch.Tensor:
        return estimate_and_masked[:, :3] + self.refine(estimate_and_masked)
