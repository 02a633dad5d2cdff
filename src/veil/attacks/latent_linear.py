"""Linear latent maps against AAE masking: two AAEs trained with one recipe have latent spaces that are, to first
order, one linear map apart (two default-recipe runs on disjoint halves of CIFAR-10: a least-squares map fitted on
public images decodes the other run's test vectors at median SSIM 0.830, the owner's decoder 0.836). The attacker
trains its own AAE with the victim's recipe on public images, estimates the map from the victim's latent space into
its own, and decodes with its own decoder.

Threat a (ciphertext-only: the masked vectors with the labels that travel with them, the recipe, labelled public
images): no pairs, so the map is estimated from class-conditional moments. Both latent clouds are whitened (on their
principal subspace, one direction per `SAMPLES_PER_DIRECTION` vectors), which leaves an orthogonal map Q between them;
Q must carry each class's mean and covariance onto the same class's (Q m_k^v ~ m_k^o, Q C_k^v Q^T ~ C_k^o):
1. start, once per class k: pair the eigenvectors of class k's second moment in both spaces by eigenvalue order,
   each sign taken from the class means;
2. refine: gradient descent over orthogonal Q on the class-conditional moment loss
   sum_k share_k (||m_k^v Q - m_k^o||^2 + ||Q^T C_k^v Q - C_k^o||^2);
3. keep the start whose final moment loss is lowest: an unsupervised criterion, computed from latents alone (the
   victim's plain images are never seen).

Threat c (known pairs: (a) plus n (image, masked) pairs): the attacker encodes the pair images with its own encoder,
which gives (victim latent, own latent) pairs, and fits the map by ridge least squares shrunk toward the threat-a
estimate (the public prior): A = argmin ||X A - Y||^2 + lambda ||A - A_a||^2, lambda chosen by cross-validation on the
pairs, so that a hundred pairs already help and many pairs make the prior irrelevant.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from veil.attacks.base import Knowledge, register_attack
from veil.attacks.own_aae import OwnAAEAttack, own_aae
from veil.errors import VeilError

#: gradient steps on the moment loss, from each start
STEPS = 300
LEARNING_RATE = 0.01
#: at least this many victim (and public) vectors per kept principal direction: fewer give class covariances of
#: noise. Chosen on development images (CIFAR-10 train images outside every AAE's training set, masked by a victim
#: AAE; never the scored test images): 5, 10, 20, 40, 80, 160, 320 gave median SSIM 0.10, 0.11, 0.16, 0.23, 0.21,
#: 0.23, 0.18 for 1,000 vectors
SAMPLES_PER_DIRECTION = 40
RIDGE_GRID = np.logspace(-3, 3, 13)
FOLDS = 5


@dataclass(frozen=True)
class LatentMap:
    """x -> (x - source_mean) @ matrix + target_mean: victim latents into the attacker's latent space."""

    source_mean: np.ndarray
    matrix: np.ndarray
    target_mean: np.ndarray

    def __call__(self, latents: np.ndarray) -> np.ndarray:
        return (np.asarray(latents, np.float64) - self.source_mean) @ self.matrix + self.target_mean

    @property
    def rank(self) -> int:
        return int(np.linalg.matrix_rank(self.matrix))


@register_attack("latent-linear")
class LatentLinearAttack(OwnAAEAttack):
    """Threats a (class-conditional moment matching, no pairs) and c (ridge on the pairs toward the threat-a map);
    see the module."""

    threats = ("a", "c")
    budget_fields = OwnAAEAttack.budget_fields + ("train_images",)

    def reconstruct(self, knowledge: Knowledge) -> np.ndarray:
        attacker = own_aae(knowledge, self.progress)
        victim = knowledge.masked.data.astype(np.float64)
        chosen = knowledge.public_indices()
        own = attacker.transform(knowledge.public.images[chosen]).astype(np.float64)
        victim_labels, own_labels = shared_labels(knowledge, chosen)
        latent_map, loss = unpaired_map(victim, victim_labels, own, own_labels)
        self.details_.update({"decoder_seed": attacker.config.seed, "moment_loss": loss, "steps": STEPS,
                              "restarts": len(np.unique(victim_labels)), "rank": latent_map.rank})
        if knowledge.threat == "c":
            images, masked = knowledge.pairs
            latent_map, ridge = paired_map(np.asarray(masked, np.float64),
                                           attacker.transform(images).astype(np.float64), latent_map,
                                           knowledge.rng("latent-linear-pairs"))
            self.details_.update({"pairs": len(images), "ridge": ridge})
        return attacker.inverse_transform(latent_map(victim).astype(np.float32))


def shared_labels(knowledge: Knowledge, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The victim's and the chosen public images' labels as indices into one list of class names (all zeros, one
    class, when either set is unlabelled)."""
    masked, public = knowledge.masked, knowledge.public
    if masked.labels is None or public.labels is None:
        return np.zeros(len(masked), int), np.zeros(len(chosen), int)
    if set(masked.class_names) != set(public.class_names):
        raise VeilError(f"the victim's classes {list(masked.class_names)} differ from the public images' "
                        f"{list(public.class_names)}; the latent-linear attack matches class by class")
    names = sorted(masked.class_names)
    victim = np.array([names.index(masked.class_names[k]) for k in masked.labels])
    own = np.array([names.index(public.class_names[k]) for k in public.labels[chosen]])
    return victim, own


@dataclass(frozen=True)
class Whitening:
    """Centring, projection on the top principal directions and scaling to unit variance, and back."""

    mean: np.ndarray
    axes: np.ndarray  # (d, rank)
    scale: np.ndarray  # (rank,) standard deviations

    @classmethod
    def fit(cls, latents: np.ndarray, rank: int) -> "Whitening":
        mean = latents.mean(0)
        values, vectors = np.linalg.eigh(np.cov(latents - mean, rowvar=False))
        top = np.argsort(values)[::-1][:rank]
        return cls(mean, vectors[:, top], np.sqrt(np.maximum(values[top], 1e-12)))

    def forward(self) -> np.ndarray:
        return self.axes / self.scale

    def backward(self) -> np.ndarray:
        return (self.axes * self.scale).T


def unpaired_map(victim: np.ndarray, victim_labels: np.ndarray, own: np.ndarray, own_labels: np.ndarray,
                 ) -> tuple[LatentMap, float]:
    """Threat a's map (see the module) and its final moment loss."""
    classes = np.intersect1d(victim_labels, own_labels)
    rank = int(min(victim.shape[1], len(victim) // SAMPLES_PER_DIRECTION, len(own) // SAMPLES_PER_DIRECTION))
    if rank < 1:
        raise VeilError(f"{len(victim)} masked vectors are too few to estimate a latent map")
    white_v, white_o = Whitening.fit(victim, rank), Whitening.fit(own, rank)
    source = ClassMoments.of((victim - white_v.mean) @ white_v.forward(), victim_labels, classes)
    target = ClassMoments.of((own - white_o.mean) @ white_o.forward(), own_labels, classes)
    fits = [refine(joint_diagonal_start(source, target, weights), source, target) for weights in np.eye(len(classes))]
    rotation, loss = min(fits, key=lambda fit: fit[1])
    return LatentMap(white_v.mean, white_v.forward() @ rotation @ white_o.backward(), white_o.mean), loss


@dataclass(frozen=True)
class ClassMoments:
    """Per class: share, mean and covariance of (whitened) latents."""

    shares: np.ndarray  # (K,)
    means: np.ndarray  # (K, d)
    covariances: np.ndarray  # (K, d, d)

    @classmethod
    def of(cls, z: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> "ClassMoments":
        members = [z[labels == k] for k in classes]
        return cls(np.array([len(m) for m in members]) / len(z), np.stack([m.mean(0) for m in members]),
                   np.stack([np.atleast_2d(np.cov(m, rowvar=False)) if len(m) > 1 else np.zeros((z.shape[1],) * 2)
                             for m in members]))  # atleast_2d: np.cov of one direction is a scalar


def joint_diagonal_start(source: ClassMoments, target: ClassMoments, weights: np.ndarray) -> np.ndarray:
    """An orthogonal Q (whitened victim -> whitened own, row vectors) pairing the eigenvectors of the classes'
    `weights`-combined second moments by eigenvalue order, each sign chosen so that the class means agree. One class
    at a time (one-hot weights): a blend of all classes is the whitened identity, whose eigenvectors are noise."""
    def eigenvectors(moments):
        second = moments.covariances + moments.means[:, :, None] * moments.means[:, None, :]
        return np.linalg.eigh(np.tensordot(weights, second, axes=1))[1]

    ev, eo = eigenvectors(source), eigenvectors(target)
    signs = np.where(((source.means @ ev) * (target.means @ eo)).sum(0) < 0, -1.0, 1.0)
    return (ev * signs) @ eo.T


def refine(start: np.ndarray, source: ClassMoments, target: ClassMoments) -> tuple[np.ndarray, float]:
    """Gradient descent from `start` over orthogonal Q = start exp(A - A^T) on the class-conditional moment loss
    sum_k share_k (||m_k^v Q - m_k^o||^2 + ||Q^T C_k^v Q - C_k^o||^2); the final Q and loss."""
    start_t = torch.from_numpy(start)
    shares, means_v, covs_v, means_o, covs_o = (torch.from_numpy(a) for a in (
        target.shares, source.means, source.covariances, target.means, target.covariances))
    generator = torch.zeros_like(start_t, requires_grad=True)
    optimizer = torch.optim.Adam([generator], lr=LEARNING_RATE)

    def loss_of(rotation):
        means = ((means_v @ rotation - means_o) ** 2).sum(1)
        covariances = ((rotation.T @ covs_v @ rotation - covs_o) ** 2).sum((1, 2))
        return (shares * (means + covariances)).sum()

    for _ in range(STEPS):
        loss = loss_of(start_t @ torch.linalg.matrix_exp(generator - generator.T))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        rotation = start_t @ torch.linalg.matrix_exp(generator - generator.T)
        return rotation.numpy(), float(loss_of(rotation))


def paired_map(victim: np.ndarray, own: np.ndarray, prior: LatentMap, rng: np.random.Generator,
               ) -> tuple[LatentMap, float]:
    """Threat c's map: ridge least squares on the (victim latent, own latent) pairs, shrunk toward `prior`, the
    strength (relative to the pairs' mean variance) chosen by cross-validation on the pairs; and that strength."""
    x, y = victim - prior.source_mean, own - prior.target_mean
    scale = float((x ** 2).sum(1).mean()) / x.shape[1]
    folds = np.array_split(rng.permutation(len(x)), min(FOLDS, len(x)))

    def fit(rows, strength):
        gram = x[rows].T @ x[rows] + strength * scale * np.eye(x.shape[1])
        return np.linalg.solve(gram, x[rows].T @ y[rows] + strength * scale * prior.matrix)

    def held_out_error(strength):
        return sum(((x[f] @ fit(np.setdiff1d(np.arange(len(x)), f), strength) - y[f]) ** 2).sum() for f in folds)

    strength = float(min(RIDGE_GRID, key=held_out_error))
    return LatentMap(prior.source_mean, fit(np.arange(len(x)), strength), prior.target_mean), strength
