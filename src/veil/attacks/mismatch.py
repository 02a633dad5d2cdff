"""The masking paper's own privacy test: decode the victim's vectors with the decoder of another AAE training run
(the same architecture and recipe, another seed, trained on public images).

Threat a (ciphertext-only): the attacker holds the masked vectors, the architecture and public images, no secret.
It is the weakest attack here: it assumes that latent spaces of two runs line up by chance. They nearly do when the
two runs share a training seed, which `seed-guess` exploits."""
from __future__ import annotations

import numpy as np

from veil.attacks.base import Knowledge, register_attack
from veil.attacks.own_aae import OwnAAEAttack, own_aae


@register_attack("mismatch")
class MismatchAttack(OwnAAEAttack):

    def reconstruct(self, knowledge: Knowledge) -> np.ndarray:
        decoder_run = own_aae(knowledge, self.progress)
        self.details_.update({"decoder_seed": decoder_run.config.seed, "decoder_epochs": decoder_run.config.epochs,
                              "decoder_holdout_mse": decoder_run.report_.get("reconstruction_mse")})
        return decoder_run.inverse_transform(knowledge.masked.data)
