"""Undoing a keyed latent map from class statistics (against `aae-keyed`), threat a.

Threat model: ciphertext-only, with what a keyed AAE makes public: the victim's masked vectors with the labels that
travel with them, the shared base network (encoder and decoder, named by the masked set's configuration) and
labelled public images. No pair and no key. The victim's vectors are v = z M for an unknown orthogonal M (the key's
rotation and permutation) and the base encoder's latents z; the attacker encodes its public images with the same
base encoder (its own latents o, in z's space), so the two clouds differ by M alone, up to sampling:
1. the victim's covariance is M^T C M: the eigenvectors of the two covariances, paired by eigenvalue order, give M
   up to the sign of each axis;
2. each axis's sign is the one under which the classes' mean latents agree (the labels that travel with the set);
3. orthogonal Procrustes on the stacked class statistics (each class's centred mean, weighted by its share, and each
   principal axis scaled by its standard deviation) gives the final map, and the base decoder decodes.
Axes of nearly equal variance are confused with each other by sampling; that, and nothing else here, is what the key
still hides. Whether it hides the picture is measured by `veil report frontier` against the owner's decoding."""
from __future__ import annotations

import numpy as np

from veil.attacks.base import Attack, Knowledge, register_attack
from veil.attacks.latent_align import procrustes
from veil.attacks.latent_linear import shared_labels
from veil.errors import VeilError


@register_attack("key-procrustes")
class KeyProcrustesAttack(Attack):
    """Threat a against a keyed latent map over a shared network: eigen-alignment and Procrustes on class
    statistics (see the module)."""

    threats = ("a",)
    requires = {"keyed": True, "structure": "latent"}
    budget_fields = ("train_images",)
    image_sizes = ((32, 32),)  # the base AAE is the paper's 32x32 network

    def reconstruct(self, knowledge: Knowledge) -> np.ndarray:
        from veil.maskers.aae import AAEMasker

        base_dir = knowledge.config.get("base")
        if not base_dir:
            raise VeilError("the masked set names no base network (config.base): key-procrustes needs the shared "
                            "network")
        network = AAEMasker.load(base_dir)
        chosen = knowledge.public_indices()
        own = network.transform(knowledge.public.images[chosen]).astype(np.float64)
        victim = knowledge.masked.data.astype(np.float64)
        victim_labels, own_labels = shared_labels(knowledge, chosen)
        latent_map = class_statistics_map(victim, victim_labels, own, own_labels)
        self.details_.update({"public_latents": len(own), "classes": int(len(np.unique(victim_labels)))})
        return network.inverse_transform(((victim - victim.mean(0)) @ latent_map + own.mean(0)).astype(np.float32))


def class_statistics_map(victim: np.ndarray, victim_labels: np.ndarray, own: np.ndarray,
                         own_labels: np.ndarray) -> np.ndarray:
    """The orthogonal A with (victim - its mean) @ A ~ (own - its mean), from second moments and class means."""
    victim_c, own_c = victim - victim.mean(0), own - own.mean(0)
    victim_axes, victim_sd = _axes(victim_c)
    own_axes, own_sd = _axes(own_c)
    classes = np.intersect1d(np.unique(victim_labels), np.unique(own_labels))
    shares = np.array([np.mean(victim_labels == k) for k in classes])
    victim_means = np.array([victim_c[victim_labels == k].mean(0) for k in classes]) * np.sqrt(shares)[:, None]
    own_means = np.array([own_c[own_labels == k].mean(0) for k in classes]) * np.sqrt(shares)[:, None]
    agreement = ((victim_means @ victim_axes) * (own_means @ own_axes)).sum(0)
    victim_axes = victim_axes * np.where(agreement < 0, -1.0, 1.0)
    scale = np.sqrt(victim_sd * own_sd)[:, None]
    source = np.concatenate([victim_means, (victim_axes.T * scale)])
    target = np.concatenate([own_means, (own_axes.T * scale)])
    return procrustes(source, target)


def _axes(centred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Principal axes (columns) by decreasing variance, and their standard deviations."""
    values, vectors = np.linalg.eigh(np.cov(centred, rowvar=False))
    order = np.argsort(values)[::-1]
    return vectors[:, order], np.sqrt(np.maximum(values[order], 0.0))
