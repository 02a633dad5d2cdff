"""What an attack's reconstructions reveal, measured against the victim's plain images (which the attack never saw).

Per image: MSE, PSNR (10 log10(1 / MSE), capped for exact reconstructions) and SSIM (scikit-image), summarised as
distributions (median and quartiles, as in paper 003's Fig 8). Semantic leakage: the accuracy, on the
reconstructions, of a classifier trained on plain public images; if it recognises them, privacy is gone even at a low
SSIM. Linkage (Carlini et al.'s criterion against InstaHide and NeuraCrypt): whether a reconstruction singles out its
own original among others of the same class. LPIPS is not measured: it needs pretrained network weights that cannot be
downloaded here.
"""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from veil.metrics import per_image_mse, proportion_interval

#: PSNR of an exact reconstruction is infinite; it is reported as this cap
PSNR_CAP = 100.0
#: a value counts as restored exactly when it is within half an 8-bit level
EXACT = 0.5 / 255
#: linkage: the true original and this many candidates in all (chance is 1 / LINKAGE_CANDIDATES)
LINKAGE_CANDIDATES = 100
#: how many times `encoder_linkage` masks each candidate when the masking draws fresh noise (averaged)
ENCODER_QUERIES = 16


def per_image(victim: np.ndarray, recon: np.ndarray) -> dict[str, np.ndarray]:
    """MSE, PSNR and SSIM of every image (both (N, 3, H, W) in [0, 1]; reconstructions are clipped to it)."""
    victim = np.asarray(victim, np.float64)
    recon = np.clip(np.asarray(recon, np.float64), 0.0, 1.0)
    ssim = np.array([structural_similarity(a, b, channel_axis=0, data_range=1.0) for a, b in zip(victim, recon)])
    mse = per_image_mse(victim, recon)
    with np.errstate(divide="ignore"):
        psnr = np.where(mse > 0, 10 * np.log10(1.0 / np.maximum(mse, 1e-300)), PSNR_CAP)
    return {"mse": mse, "psnr": np.minimum(psnr, PSNR_CAP), "ssim": ssim}


def summary(values: dict[str, np.ndarray]) -> dict[str, float]:
    """`ssim_median`, `ssim_q1`, `ssim_q3`, `ssim_mean`, likewise for psnr and mse."""
    figures = {}
    for name, array in values.items():
        q1, median, q3 = np.percentile(array, [25, 50, 75])
        figures.update({f"{name}_median": float(median), f"{name}_q1": float(q1), f"{name}_q3": float(q3),
                        f"{name}_mean": float(np.mean(array))})
    return figures


def blocks_correct(victim: np.ndarray, recon: np.ndarray, block: int) -> float:
    """Share of (image, block) pairs whose B x B block is restored exactly (every value within half a level)."""
    n, channels, (height, width) = len(victim), 3, victim.shape[-2:]
    error = np.abs(np.asarray(victim, np.float32) - np.clip(np.asarray(recon, np.float32), 0, 1))
    blocks = error.reshape(n, channels, height // block, block, width // block, block).max(axis=(1, 3, 5))
    return float((blocks < EXACT).mean())


def median_interval(values: np.ndarray, seed: int = 0, draws: int = 1000) -> tuple[float, float]:
    """95% bootstrap (percentile) interval of the median."""
    values = np.asarray(values)
    rng = np.random.default_rng(seed)
    medians = np.median(values[rng.integers(0, len(values), (draws, len(values)))], axis=1)
    return float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))


def linkage(victim: np.ndarray, recon: np.ndarray, labels: np.ndarray | None, seed: int = 0,
            candidates: int = LINKAGE_CANDIDATES) -> dict[str, float]:
    """The share of reconstructions whose nearest victim image, among the true original and `candidates` - 1 other
    victim images of its class (a seeded choice), is the true original, with its 95% Wilson interval
    (`linkage_low`, `linkage_high`) and the chance level (`linkage_chance`: the mean of 1 / candidates per image, so
    0.01 unless a class has fewer than 100 images).

    Nearest by pixel MSE (reconstructions clipped to [0, 1]): it needs no trained network, which would itself be one
    more attack choice, and it ranks candidates by the quantity the reconstruction attacks minimise. Candidates of the
    same class make the criterion about the image, not its label. Without labels (`labels` None) the candidates are
    drawn from the whole victim set: distinguishing images of other classes is easier, so the figure then errs
    towards more leakage. A tie with the true original counts as a share 1 / (tied + 1) of a hit."""
    recon = np.clip(np.asarray(recon, np.float32), 0.0, 1.0)
    return nearest_candidate(np.asarray(victim, np.float32), recon, labels, seed, candidates)


def encoder_linkage(masker, images: np.ndarray, masked: np.ndarray, labels: np.ndarray | None, seed: int = 0,
                    queries: int = ENCODER_QUERIES) -> dict[str, float]:
    """Linkage without a reconstruction, for an attacker who holds the masking function (threat b) and the candidate
    images: it masks each candidate itself and takes the one whose masked form is nearest (MSE) the victim's as its
    original. A masking with fresh noise is queried `queries` times (at least 2) per candidate and averaged, which
    an oracle allows; a deterministic one (two queries alike) is taken as it is. A deterministic masker therefore
    scores 1: its output fingerprints the image for whoever can compute it. Figures as `linkage`'s, prefixed
    `encoder_`."""
    reference = masker.transform(images).astype(np.float64)
    again = masker.transform(images).astype(np.float64)
    if not np.array_equal(reference, again):
        reference += again
        for _ in range(max(queries, 2) - 2):
            reference += masker.transform(images)
        reference /= max(queries, 2)
    found = nearest_candidate(reference.astype(np.float32), np.asarray(masked, np.float32), labels, seed,
                              LINKAGE_CANDIDATES)
    return {f"encoder_{name}": value for name, value in found.items()}


def nearest_candidate(originals: np.ndarray, guesses: np.ndarray, labels: np.ndarray | None, seed: int,
                      candidates: int) -> dict[str, float]:
    """`linkage`'s ranking: for each guess, whether its own original is the nearest (MSE) of `candidates` originals
    of its class."""
    groups = np.zeros(len(originals), int) if labels is None else np.asarray(labels)
    rng = np.random.default_rng([seed, 23])
    hits, chance = np.zeros(len(originals)), np.zeros(len(originals))
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        drawn = min(candidates, len(members)) - 1
        for position, index in enumerate(members):
            others = np.delete(members, position)[rng.choice(len(members) - 1, drawn, replace=False)]
            distance = per_image_mse(originals[np.concatenate([[index], others])], guesses[index][None])
            closer, tied = (distance[1:] < distance[0]).sum(), (distance[1:] == distance[0]).sum()
            hits[index] = 0.0 if closer else 1.0 / (tied + 1)
            chance[index] = 1.0 / (drawn + 1)
    low, high = proportion_interval(int(round(hits.sum())), len(originals))
    return {"linkage": float(hits.mean()), "linkage_low": low, "linkage_high": high,
            "linkage_chance": float(chance.mean())}
