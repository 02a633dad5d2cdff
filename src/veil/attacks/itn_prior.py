"""The ITN with a public prior, threat c: known pairs are few, so the inverse first learns the scheme's general
inverse from public images masked under many secrets of the attacker's own (what threat a's ITN learns), and only
then fits the victim's n pairs, starting from it:

- the affine map: ridge regression of the pairs' residual after the pre-trained map, i.e. the least-squares map
  that stays closest to the pre-trained one (the strength chosen on a held-out tenth of the pairs, as the ITN does);
- the convolutional refinement: trained further on the pairs for the budget's epochs (a short fine-tune: training
  as many steps as on the public images, as `itn` does, overfits a few pairs and undoes the prior).

The ITN of threat c (`itn`) learns from the pairs alone; with this prior it starts where threat a's ends.
"""
from __future__ import annotations

import time

import numpy as np

from veil.attacks.base import Attack, Knowledge, register_attack
from veil.attacks.itn import (init_affine, own_key_pairs, predict, ridge_inverse, set_affine,
                              train_regression)
from veil.errors import VeilError
from veil.maskers.base import masker_class
from veil.models.inverse import InverseNet
from veil.training import set_seed


@register_attack("itn-prior")
class PriorITNAttack(Attack):
    """Threat c, on image schemes the attacker can simulate with a secret of its own (not a trained AAE)."""

    threats = ("c",)

    @classmethod
    def check_applies(cls, method: str, threat: str) -> None:
        super().check_applies(method, threat)
        if masker_class(method).fits_on_data:
            raise VeilError(f"the itn-prior attack simulates the scheme with secrets of its own; a {method} masker "
                            "cannot be simulated without training one (use --method itn)")

    def reconstruct(self, knowledge: Knowledge) -> np.ndarray:
        start = time.time()
        budget = knowledge.budget
        set_seed(knowledge.seed)
        network = InverseNet()
        public = knowledge.public_subset()
        own_masked = own_key_pairs(knowledge, public)
        self.details_["prior_ridge_strength"] = init_affine(network, own_masked, public, knowledge.rng("ridge"))
        network.affine.requires_grad_(False)
        train_regression(network, own_masked, public, budget.epochs, budget.batch_size, knowledge.seed,
                         self.progress)
        images, masked = (np.asarray(part, np.float32) for part in knowledge.pairs)
        self.details_["pair_ridge_strength"] = refit_affine(network, masked, images, knowledge.rng("pair-ridge"))
        train_regression(network, masked, images, budget.epochs, budget.batch_size, knowledge.seed, self.progress)
        self.details_.update({"public_images": len(public), "pairs": len(images), "pair_epochs": budget.epochs,
                              "train_s": round(time.time() - start, 1)})
        return predict(network, knowledge.masked.data)


def refit_affine(network: InverseNet, masked: np.ndarray, images: np.ndarray, rng: np.random.Generator) -> float:
    """Move the affine layer toward the pairs: add the ridge regression of what it leaves unexplained on them;
    returns the chosen ridge strength."""
    weight = network.affine.weight.detach().numpy().T.astype(np.float64)
    bias = network.affine.bias.detach().numpy().astype(np.float64)
    inputs, targets = masked.reshape(len(masked), -1), images.reshape(len(images), -1)
    change, shift, strength = ridge_inverse(inputs, targets - (inputs @ weight + bias), rng)
    set_affine(network, weight + change, bias + shift)
    return strength
