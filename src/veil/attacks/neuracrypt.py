"""A NeuraCrypt-style attack on AAE masking, threat a (ciphertext-only: masked vectors, the architecture, public
images; no encoder).

Carlini et al. (arXiv 2108.07256) broke NeuraCrypt by simulating the unknown encoder with random encoders of their
own and learning what transfers from those to the real one. Here the attacker trains several AAEs of the victim's
architecture on public images (its "random encoders"), puts every latent space into a canonical frame that does
not depend on the run (principal axes by decreasing variance, signs fixed by skewness, unit variance; the same frame
is computed for the victim's vectors), and trains one decoder on the pooled (canonical latent, image) pairs of all
but one of its AAEs. The last one is held out: how well the decoder reads an encoder it never saw
(`held_out_encoder_mse`, on public images only) tells the attacker whether the approach can transfer at all.

Difference from Carlini et al.: their attacker holds the original images and learns a contrastive matcher that
pairs each encoding with its original. Under threat a there are no originals to match, so the transferable part
learned here is a decoder. What it achieves is reported whatever it is.
"""
from __future__ import annotations

import numpy as np

from veil.attacks.base import Knowledge, register_attack
from veil.attacks.itn import predict, train_regression, vector_decoder
from veil.attacks.latent_align import principal_axes
from veil.attacks.own_aae import OwnAAEAttack, own_aae
from veil.training import set_seed


@register_attack("neuracrypt")
class NeuraCryptAttack(OwnAAEAttack):
    budget_fields = OwnAAEAttack.budget_fields + ("simulated_encoders",)

    def reconstruct(self, knowledge: Knowledge) -> np.ndarray:
        budget = knowledge.budget
        images = knowledge.public_subset(budget.aae_images)
        runs = [own_aae(knowledge, self.progress, run) for run in range(budget.simulated_encoders)]
        latents = [canonical(run.transform(images)) for run in runs]
        *seen, held_out = latents
        set_seed(knowledge.seed)
        decoder = vector_decoder(knowledge.masked.data.shape[1])
        train_regression(decoder, np.concatenate(seen), np.tile(images, (len(seen), 1, 1, 1)), budget.aae_epochs,
                         budget.batch_size, knowledge.seed, self.progress)
        self.details_.update({
            "encoder_seeds": [run.config.seed for run in runs], "encoders_trained_on": len(seen),
            "held_out_encoder_mse": float(((predict(decoder, held_out) - images) ** 2).mean()),
            "seen_encoder_train_mse": float(((predict(decoder, seen[0]) - images) ** 2).mean()),
            "mean_image_mse": float(((images.mean(0) - images) ** 2).mean()),
        })
        return predict(decoder, canonical(knowledge.masked.data))


def canonical(latents: np.ndarray) -> np.ndarray:
    """Latents in a frame that does not depend on the AAE run: centred, rotated onto their principal axes (by
    decreasing variance, skewness >= 0 along each) and scaled to unit variance."""
    centred = latents.astype(np.float64) - latents.mean(0)
    projected = centred @ principal_axes(latents)
    return (projected / np.maximum(projected.std(0), 1e-8)).astype(np.float32)
