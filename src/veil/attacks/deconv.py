"""Deconvolution of a random filter (`randfilter`), using the scheme's structure: one unknown K x K linear filter,
applied with reflect-101 borders to every channel of every image. Masking is then a known linear operator up to
K * K numbers, so the attack estimates those numbers and inverts the operator.

- c, known pairs: each masked pair is linear in the kernel, so least squares over the pairs gives it exactly (K * K
  unknowns, thousands of equations per pair).
- a, ciphertext-only (blind deconvolution): inside the borders the masked images are the plain ones filtered, so
  their second-order statistics are the kernel's autocorrelation applied to those of natural images, which public
  images give. Both are taken after a Laplacian (filters commute), which makes natural images nearly white and the
  fit well conditioned. The kernel whose autocorrelation fits best (gradient descent from many random starts) is the
  victim's up to sign and a 180-degree rotation; the sign is the one under which the public mean image, filtered,
  looks like the masked mean image, and the rotation the one whose reconstructions have sparser gradients (the
  wrong one leaves an all-pass phase error that spreads edges out).

The inverse is the linear minimum-mean-square-error estimate under the public images' mean and covariance (all
3 x 32 x 32 values at once, so colour correlations fill in what the filter suppresses), with the exact operator of the
estimated kernel, borders included. Its noise level (how far the kernel estimate is trusted) is chosen on the known
pairs under c, and under a on a victim of the attacker's own: public images it masks with a random kernel of its own
and attacks blindly in the same way (that run's kernel error is reported too). The victim's kernel is never known to
the attack, and the kernel it estimates is kept on the attack (`kernel_`), never in its outputs.
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy import sparse
from scipy.linalg import cho_factor, cho_solve

from veil.attacks.base import Attack, Knowledge, register_attack
from veil.errors import VeilError
from veil.schemes.filters import filter_images

SIDE = 32
#: noise levels tried, relative to the masked values' mean variance under the prior
NOISE_LEVELS = (1e-6, 1e-4, 1e-3, 1e-2, 1e-1)
#: the prior covariance is shrunk this much toward its mean variance, so that few public images still give a
#: full-rank prior
SHRINK = 1e-3
LAPLACIAN = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], np.float64)
#: random starts of the blind fit per kernel weight (64 starts in all missed the global fit for one k = 7 kernel in
#: four), and its most steps
STARTS_PER_WEIGHT, STEPS = 5, 3000
#: the fit stops when its summed loss over all starts gains less than this share over CHECK_EVERY steps (the best
#: start alone may stall in a local minimum while another is still descending past it)
CONVERGED, CHECK_EVERY = 1e-3, 100
#: known pairs whose normal equations are summed at once
PAIR_CHUNK = 64
#: masked images whose reconstructions decide the kernel's orientation, and that score the noise levels
PROBE = 200


@register_attack("deconv")
class DeconvAttack(Attack):
    """Threats a (blind: the masked set and public images) and c (the kernel by least squares from the pairs)."""

    threats = ("a", "c")
    #: one unknown filter shared by every image: a keyed filter that is not drawn per image
    requires = {"structure": "filter", "keyed": True, "per_image": False}
    budget_fields = ("train_images",)  # the public images whose statistics the blind fit matches
    #: the inverse uses the public images' covariance over all 3 x 32 x 32 values (3072^2; 150528^2 at 224x224)
    image_sizes = ((SIDE, SIDE),)

    def reconstruct(self, knowledge: Knowledge) -> np.ndarray:
        start = time.time()
        size = knowledge.config.get("kernel")
        if size is None:
            raise VeilError("the masked set does not record its kernel size (meta config 'kernel')")
        masked = np.asarray(knowledge.masked.data, np.float32)
        public = knowledge.public_subset()
        if knowledge.threat == "c":
            images, pair_masked = (np.asarray(part, np.float32) for part in knowledge.pairs)
            kernel = kernel_from_pairs(images, pair_masked, size)
            inverse = ImagePrior(public).inverse(kernel)
            noise = inverse.best_noise(pair_masked[:PROBE], images[:PROBE])
            self.details_["pair_residual"] = relative_residual(images, pair_masked, kernel)
        else:
            noise, own_error = own_victim_noise(public, size, min(len(masked), len(public) // 2),
                                                knowledge.rng("own-victim"))
            prior = ImagePrior(public)
            kernel, residual = blind_kernel(masked, public, size, knowledge.rng("deconv"))
            kernel = orient(kernel, masked, prior, noise)
            inverse = prior.inverse(kernel)
            self.details_.update({"fit_residual": residual, "own_victim_kernel_error": own_error})
        self.kernel_ = kernel
        self.details_.update({"kernel": size, "noise_level": noise, "public_images": len(public),
                              "attack_s": round(time.time() - start, 1)})
        return np.clip(inverse(masked, noise), 0.0, 1.0)


def own_victim_noise(public: np.ndarray, size: int, held: int, rng: np.random.Generator) -> tuple[float, float]:
    """Threat a's noise level, chosen on a victim of the attacker's own: `held` public images (kept out of the
    prior) masked with a random kernel of its own and attacked blindly; and that run's kernel error."""
    own_victim, prior_images = public[:held], public[held:]
    own_kernel = rng.standard_normal((size, size)).astype(np.float32)
    own_masked = filter_images(own_victim, own_kernel)
    prior = ImagePrior(prior_images)
    estimate = orient(blind_kernel(own_masked, prior_images, size, rng)[0], own_masked, prior)
    noise = prior.inverse(estimate).best_noise(own_masked[:PROBE], own_victim[:PROBE])
    return noise, kernel_error(estimate, own_kernel)


def kernel_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Relative error of a kernel estimate, up to the ambiguities blind deconvolution cannot see (sign, rotation)."""
    candidates = [s * k for s in (1, -1) for k in (estimate, np.rot90(estimate, 2))]
    return float(min(np.linalg.norm(c - truth) for c in candidates) / np.linalg.norm(truth))


# ------------------------------------------------------------------------------------------ threat c: least squares


def kernel_from_pairs(images: np.ndarray, masked: np.ndarray, size: int) -> np.ndarray:
    """The K x K kernel that best maps the images to their masked versions (least squares): masking is linear in the
    kernel, one column per kernel weight (the images filtered with that weight alone). The normal equations are
    summed over chunks of pairs, so that any number of pairs fits in memory."""
    unit = np.eye(size * size, dtype=np.float32).reshape(-1, size, size)
    gram, moment = np.zeros((size * size, size * size)), np.zeros(size * size)
    for start in range(0, len(images), PAIR_CHUNK):
        chunk = images[start:start + PAIR_CHUNK]
        design = np.stack([filter_images(chunk, k).ravel() for k in unit], axis=1).astype(np.float64)
        gram += design.T @ design
        moment += design.T @ masked[start:start + PAIR_CHUNK].ravel().astype(np.float64)
    return np.linalg.solve(gram, moment).reshape(size, size).astype(np.float32)


def relative_residual(images: np.ndarray, masked: np.ndarray, kernel: np.ndarray) -> float:
    return float(np.linalg.norm(filter_images(images, kernel) - masked) / np.linalg.norm(masked))


# -------------------------------------------------------------------------------------------------- threat a: blind


def blind_kernel(masked: np.ndarray, public: np.ndarray, size: int, rng: np.random.Generator,
                 steps: int = STEPS) -> tuple[np.ndarray, float]:
    """The kernel (up to sign and a 180-degree rotation) whose autocorrelation, applied to the public images'
    Laplacian autocorrelation, best fits the masked images' (inside the borders); and the fit's relative residual."""
    half, lag = size // 2, 2 * size
    target = autocorrelation(laplacian(masked[:, :, half:SIDE - half, half:SIDE - half]), lag)
    natural = autocorrelation(laplacian(public), lag + size - 1)
    scale = float(target[lag, lag] / natural[lag + size - 1, lag + size - 1]) ** 0.5 / size
    generator = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))
    restarts = STARTS_PER_WEIGHT * size * size
    kernels = (torch.randn(restarts, 1, size, size, generator=generator, dtype=torch.float64) * scale)
    kernels.requires_grad_(True)
    optimizer = torch.optim.Adam([kernels], lr=0.02 * scale * size)
    norm = (target ** 2).sum()
    previous = np.inf
    for step in range(steps):
        loss = ((modelled_autocorrelation(kernels, natural) - target) ** 2).sum((1, 2)) / norm
        if step % CHECK_EVERY == 0:
            if float(loss.detach().sum()) > previous * (1 - CONVERGED):
                break
            previous = float(loss.detach().sum())
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()
    loss, kernels = loss.detach(), kernels.detach()
    best = int(loss.argmin())
    return kernels[best, 0].numpy().astype(np.float32), float(loss[best]) ** 0.5


def laplacian(images: np.ndarray) -> torch.Tensor:
    """Every channel of every image through a 3 x 3 Laplacian (valid part): (N * C, H - 2, W - 2), float64."""
    flat = torch.from_numpy(np.ascontiguousarray(images, np.float64)).reshape(-1, 1, *images.shape[-2:])
    return F.conv2d(flat, torch.from_numpy(LAPLACIAN)[None, None])[:, 0]


def autocorrelation(maps: torch.Tensor, lag: int) -> torch.Tensor:
    """Mean over positions and maps of m(p) m(p + d) for every shift |d| <= lag (each shift over the positions
    where both lie inside): (2 lag + 1, 2 lag + 1)."""
    count, height, width = maps.shape
    shape = (height + lag, width + lag)
    spectrum = torch.fft.rfft2(maps - maps.mean(), s=shape)
    sums = torch.fft.irfft2((spectrum * spectrum.conj()).sum(0), s=shape)
    ones = torch.fft.rfft2(torch.ones(1, height, width, dtype=maps.dtype), s=shape)
    overlaps = torch.fft.irfft2(ones * ones.conj(), s=shape)[0]
    centred = torch.fft.fftshift(sums / (overlaps.clamp(min=1) * count))
    row, col = shape[0] // 2, shape[1] // 2
    return centred[row - lag:row + lag + 1, col - lag:col + lag + 1]


def modelled_autocorrelation(kernels: torch.Tensor, natural: torch.Tensor) -> torch.Tensor:
    """The masked maps' autocorrelation if the kernels (R, 1, K, K) filtered maps of autocorrelation `natural`."""
    restarts, _, size, _ = kernels.shape
    own = F.conv2d(kernels.reshape(1, restarts, size, size), kernels, padding=size - 1, groups=restarts)[0]
    return F.conv2d(natural[None, None], own[:, None])[0]


def orient(kernel: np.ndarray, masked: np.ndarray, prior: "ImagePrior", noise: float = 1e-3) -> np.ndarray:
    """Of the four kernels blind deconvolution cannot tell apart (sign, 180-degree rotation): the sign under which
    the filtered public mean image correlates positively with the masked mean image, and the rotation whose
    reconstructions of a few masked images have the sparsest gradients."""
    sign = 1.0 if np.vdot(filter_images(prior.mean[None], kernel)[0], masked.mean(0)) >= 0 else -1.0
    candidates = [sign * kernel, sign * np.rot90(kernel, 2).copy()]
    return min(candidates, key=lambda k: gradient_spread(prior.inverse(k)(masked[:PROBE], noise)))


def gradient_spread(images: np.ndarray) -> float:
    """Mean absolute gradient over its root mean square: lower for sparser (more natural) gradients."""
    gradients = np.concatenate([np.diff(images, axis=-1).ravel(), np.diff(images, axis=-2).ravel()])
    return float(np.abs(gradients).mean() / np.sqrt((gradients ** 2).mean()))


# ---------------------------------------------------------------------------------------------------- the inverse


class ImagePrior:
    """The public images' mean and covariance over all 3 x 32 x 32 values, under which a filter is inverted."""

    def __init__(self, images: np.ndarray):
        flat = np.asarray(images, np.float64).reshape(len(images), -1)
        self.mean = flat.mean(0).reshape(images.shape[1:]).astype(np.float32)
        centred = flat - flat.mean(0)
        self.covariance = centred.T @ centred / len(flat)
        self.covariance[np.diag_indices_from(self.covariance)] += SHRINK * np.trace(self.covariance) / len(centred.T)

    def inverse(self, kernel: np.ndarray) -> "FilterInverse":
        return FilterInverse(self, kernel)


class FilterInverse:
    """E[image | masked] under an `ImagePrior`, for masked = filter(image) + white noise; the noise level (relative
    to the masked values' mean variance) says how far the kernel is trusted."""

    def __init__(self, prior: ImagePrior, kernel: np.ndarray):
        operator = sparse.kron(sparse.identity(3), filter_operator(kernel), format="csr")
        self.mean = prior.mean.ravel().astype(np.float64)
        self.offset = operator @ self.mean
        self.gain = np.ascontiguousarray((operator @ prior.covariance).T)  # covariance @ operator', sparse
        self.system = operator @ self.gain

    def __call__(self, masked: np.ndarray, noise: float) -> np.ndarray:
        system = self.system.copy()
        system[np.diag_indices_from(system)] += noise * np.trace(system) / len(system)
        residual = masked.reshape(len(masked), -1).T - self.offset[:, None]
        estimate = self.mean[:, None] + self.gain @ cho_solve(cho_factor(system), residual)
        return estimate.T.reshape(masked.shape).astype(np.float32)

    def best_noise(self, masked: np.ndarray, images: np.ndarray) -> float:
        """The noise level whose reconstructions of these masked images are closest to their plain images."""
        return min(NOISE_LEVELS, key=lambda noise: float(((self(masked, noise) - images) ** 2).mean()))


def filter_operator(kernel: np.ndarray) -> sparse.csr_matrix:
    """The filter on one 32 x 32 channel as a sparse (1024, 1024) matrix, borders included: its response to each
    pixel."""
    impulses = np.eye(SIDE * SIDE, dtype=np.float32).reshape(-1, 1, SIDE, SIDE)
    responses = filter_images(impulses, np.asarray(kernel, np.float32)).reshape(SIDE * SIDE, -1)
    return sparse.csr_matrix(responses.T.astype(np.float64))
