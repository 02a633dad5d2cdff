"""The model-key attack: read the key off a key-transformed model (`veil transform-model`,
`veil.classifiers.transform`).

A transformed model's patch embedding is the plain model's with its columns permuted by the key's shuffle and
sign-flipped by its inversions (scaled by the plain model's standardisation), and a ViT's position embeddings are the
plain ones permuted by the key's block order. It attacks a model, not a masked set, so it runs under none of the data
threat models a/b/c (`veil.attacks.base.THREATS`) but under its own (`MODEL_THREATS`):

- base: the attacker holds the transformed model and the plain model it was made from, as when the plain model is a
  public pretrained one (the setting of Kiya et al.). Each transformed column is matched to the plain column it is a
  signed copy of (largest |cosine|, one-to-one by an assignment), its sign read off the cosine; each position
  embedding to the plain one it equals. Exact, in milliseconds, for any key the transformation accepts.
- public: the plain model was trained privately and is not given. The attacker knows the architecture and the scheme
  (never the key) and trains a model of its own on public images of the same kind. Its weights are not the victim's
  (hidden units come in another order and mix), so columns cannot be matched one to one; what survives is what does
  not depend on the hidden basis: the Gram matrix of the embedding's columns (W^T W, unchanged by any rotation of the
  hidden units) and of the position embeddings. Each column is matched by the sorted magnitudes of its Gram row,
  signs by the leading eigenvector of the agreement of the two Gram matrices (up to one global sign, set so that
  fewer values are inverted), blocks likewise by their position embeddings' Gram rows. The scheme's public
  description is used too: a scheme that never inverts values (block scrambling) or never moves blocks (LE) has
  those parts of the key known, as a key of the attacker's own shows.

Figures: the share of the key recovered (`key_share`: of an image's values, those whose source and inversion the
recovered key gets right; and its parts `blocks_share`, `shuffle_share`, `inversions_share`), the median SSIM of the
victim's encrypted images decrypted with the recovered key against the originals (`ssim_median`; `masked_ssim_median`
for the encrypted images themselves), and the seconds the recovery took (`seconds`). The victim's key is read only to
encrypt the victim's images and to score the recovered key; the attack itself never sees it.
"""
from __future__ import annotations

import secrets
import time
from typing import ClassVar

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

import veil.attacks.scoring as scoring
from veil.attacks.base import register_attack
from veil.classifiers.base import load_classifier
from veil.classifiers.images import ImageClassifier, channels_first_shape
from veil.classifiers.transform import BlockCipher, block_cipher, block_positions, patch_embedding, value_cipher
from veil.data import ImageSet
from veil.errors import VeilError
from veil.io.output import claim_output
from veil.maskers.masking import masking_function
from veil.models.vit import ViT
from veil.results import write_results

MODEL_THREATS = {
    "base": "the key-transformed model and the plain model it was made from (a public pretrained model); no key",
    "public": "the key-transformed model only (its plain model trained privately); the attacker trains a model of "
              "the same architecture on public images of the same kind; no key",
}


@register_attack("model-key")
class ModelKeyAttack:
    """Recover the key of a key-transformed model under one of `MODEL_THREATS` (see the module). It reads models,
    not a masked set: `threats` is empty, so the privacy protocol's plan of data attacks never includes it."""

    threats: ClassVar[tuple[str, ...]] = ()
    budget_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check_applies(cls, method: str, threat: str) -> None:
        raise VeilError("the model-key attack reads a key-transformed model, not a masked set: give --model "
                        "(the transformed one), --base and --key-file (for scoring), see `veil attack --help`")

    @staticmethod
    def recover(transformed: ImageClassifier, reference: ImageClassifier, threat: str) -> BlockCipher:
        """The key of `transformed`, as a `BlockCipher`, from `reference`: the plain model it came from (threat
        base) or the attacker's own plain model (threat public)."""
        if threat not in MODEL_THREATS:
            raise VeilError(f"the model-key attack runs under threat {' or '.join(MODEL_THREATS)}, got {threat!r}")
        columns, positions = embeddings(transformed, scaled=False)
        reference_columns, reference_positions = embeddings(reference, scaled=True)
        match = match_exact if threat == "base" else match_gram
        shuffle, inverted = match(columns, reference_columns)
        moves_blocks, inverts = scheme_steps(transformed)
        if positions is None or not moves_blocks:  # ConvMixer's transformations never move blocks
            order = np.arange(transformed_blocks(transformed))
        else:
            order, _ = match(positions, reference_positions, signed=False)
        return BlockCipher(transformed.key_transform_["block"], order, shuffle, inverted & inverts)


def scheme_steps(transformed: ImageClassifier) -> tuple[bool, bool]:
    """Whether the scheme moves values between blocks and whether it inverts values, read off its cipher under a
    random key of the attacker's own: what the scheme's public description tells any attacker."""
    made = transformed.key_transform_
    shape, block = tuple(made["image_shape"]), made["block"]
    own = masking_function(made["method"], secret=secrets.token_bytes(32), block=block)
    perm, mask = value_cipher(own, shape)
    blocks = np.empty(perm.size, np.int64)
    blocks[block_positions(shape, block)] = np.arange(transformed_blocks(transformed))[:, None]
    return bool((blocks[perm] != blocks).any()), bool(mask.any())


def transformed_blocks(model: ImageClassifier) -> int:
    _, height, width = channels_first_shape(model.input_shape_)
    block = model.key_transform_["block"]
    return (height // block) * (width // block)


def embeddings(model: ImageClassifier, scaled: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(patch-embedding columns as rows: (3*P*P, dim), divided by the model's per-channel std when `scaled`;
    a ViT's position embeddings without the class token: (patches, dim), else None)."""
    network, standardize = model.module_.network, model.module_.standardize
    embed = patch_embedding(network)
    weight = embed.weight.detach().double().cpu().reshape(embed.out_channels, 3, -1)
    if scaled:
        weight = weight / standardize.std.detach().double().cpu().reshape(1, 3, 1)
    columns = weight.reshape(embed.out_channels, -1).T.numpy()
    positions = network.position.detach().double().cpu()[0, 1:].numpy() if isinstance(network, ViT) else None
    return columns, positions


def _unit_rows(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def match_exact(transformed: np.ndarray, reference: np.ndarray, signed: bool = True):
    """Row u of `transformed` is +-(a multiple of) row `source[u]` of `reference`: one-to-one by the largest
    |cosine|; the sign (when `signed`) is the cosine's. Returns (source, inverted)."""
    cosine = _unit_rows(transformed) @ _unit_rows(reference).T
    _, source = linear_sum_assignment(-(np.abs(cosine) if signed else cosine))
    inverted = cosine[np.arange(len(source)), source] < 0 if signed else np.zeros(len(source), bool)
    return source, inverted


def match_gram(transformed: np.ndarray, reference: np.ndarray, signed: bool = True):
    """Rows matched through what does not depend on the hidden basis: each row's sorted |cosine| with every other
    row of its own matrix (one-to-one by an assignment), then signs from the leading eigenvector of the agreement of
    the two cosine matrices, the global sign set so that fewer rows are inverted. Returns (source, inverted)."""
    own, other = _unit_rows(transformed) @ _unit_rows(transformed).T, _unit_rows(reference) @ _unit_rows(reference).T
    signature = np.sort(np.abs(own) if signed else own, axis=1)
    reference_signature = np.sort(np.abs(other) if signed else other, axis=1)
    cost = cdist(signature, reference_signature, "sqeuclidean")
    _, source = linear_sum_assignment(cost)
    if not signed:
        return source, np.zeros(len(source), bool)
    agreement = own * other[np.ix_(source, source)]
    leading = np.linalg.eigh(agreement)[1][:, -1]
    inverted = leading < 0
    return source, (~inverted if inverted.sum() > len(inverted) / 2 else inverted)


def key_shares(recovered: BlockCipher, true: BlockCipher) -> dict[str, float]:
    """Shares of the key recovered: `key_share` (of an image's values, those whose block, place in the block and
    inversion are all right), and its parts."""
    blocks = recovered.order == true.order
    values = (recovered.shuffle == true.shuffle) & (recovered.inverted == true.inverted)
    return {"key_share": float(blocks.mean() * values.mean()), "blocks_share": float(blocks.mean()),
            "shuffle_share": float((recovered.shuffle == true.shuffle).mean()),
            "inversions_share": float((recovered.inverted == true.inverted).mean())}


def decrypt(cipher: BlockCipher, encrypted: np.ndarray) -> np.ndarray:
    """uint8 (N, 3, H, W) images encrypted by `cipher` -> the plain images (with another key, another scramble)."""
    n, shape = len(encrypted), encrypted.shape[1:]
    by_block = block_positions(shape, cipher.block)
    target = by_block[cipher.order][:, cipher.shuffle]  # where each encrypted value goes in the plain image
    flips = np.where(cipher.inverted, np.uint8(255), np.uint8(0))
    plain = np.empty((n, by_block.size), np.uint8)
    plain[:, target.reshape(-1)] = (encrypted.reshape(n, -1)[:, by_block] ^ flips).reshape(n, -1)
    return plain.reshape(encrypted.shape)


def attack_model(transformed_dir, reference_dir, threat: str, victim: ImageSet, secret: bytes) -> tuple[dict, dict]:
    """Recover the key of the model in `transformed_dir` from the model in `reference_dir` under `threat`, and
    score it: the figures (see the module) and the configuration behind them."""
    transformed, reference = load_classifier(transformed_dir), load_classifier(reference_dir)
    made = getattr(transformed, "key_transform_", None)
    if not made:
        raise VeilError("is not a key-transformed model (made by `veil transform-model`)", transformed_dir)
    if reference.fingerprint_ or channels_first_shape(reference.input_shape_) != tuple(made["image_shape"]):
        raise VeilError(f"must be a plain model of {tuple(made['image_shape'])} images, as the transformed one "
                        "was made from", reference_dir)
    scheme = masking_function(made["method"], secret=secret, block=made["block"])
    if scheme.fingerprint != transformed.fingerprint_:
        raise VeilError("the key given is not the one this model was transformed with", transformed_dir)
    figures = score_recovery(transformed, reference, threat, scheme, victim_pixels(victim, tuple(made["image_shape"])))
    config = {"attack": "model-key", "threat": threat, "threat_model": MODEL_THREATS[threat],
              "model": str(transformed_dir), "reference": str(reference_dir), "architecture": transformed.kind,
              "scheme": made["method"], "block": made["block"], "image_shape": made["image_shape"],
              "fingerprint": transformed.fingerprint_, "victim": victim.source}
    return figures, config


def score_recovery(transformed: ImageClassifier, reference: ImageClassifier, threat: str, scheme,
                   plain: np.ndarray) -> dict:
    """Recover the key of `transformed` (made with `scheme`) from `reference` under `threat`, timed, and score it on
    the uint8 images `plain`: key shares, SSIM of the decrypted images, seconds."""
    start = time.perf_counter()
    recovered = ModelKeyAttack.recover(transformed, reference, threat)
    seconds = time.perf_counter() - start
    shape = tuple(plain.shape[1:])
    encrypted = scheme.transform(plain)
    truth = plain / np.float32(255)

    def ssim(images: np.ndarray) -> float:
        return float(np.median(scoring.per_image(truth, images / np.float32(255))["ssim"]))

    return {**key_shares(recovered, block_cipher(scheme, shape, recovered.block)),
            "ssim_median": ssim(decrypt(recovered, encrypted)), "masked_ssim_median": ssim(encrypted),
            "seconds": seconds, "n_scored": len(plain)}


def victim_pixels(victim: ImageSet, shape: tuple[int, int, int]) -> np.ndarray:
    """The victim's images as uint8 (N, 3, H, W), which must be of the model's shape."""
    images = victim.images
    if tuple(images.shape[1:]) != shape:
        raise VeilError(f"the victim's images are {tuple(images.shape[1:])}, the model takes {shape}", victim.source)
    return images if images.dtype == np.uint8 else np.clip(np.rint(images * 255), 0, 255).astype(np.uint8)


def model_key_files(transformed_dir, reference_dir, threat: str, victim: ImageSet, secret: bytes, json_file,
                    seed: int = 0, force: bool = False) -> dict:
    """`veil attack --method model-key`: the figures of `attack_model`, written as a results JSON to a new file
    `json_file` (`force` replaces one)."""
    with claim_output(json_file, force, reads=[transformed_dir, reference_dir]) as tmp:
        figures, config = attack_model(transformed_dir, reference_dir, threat, victim, secret)
        write_results(tmp, figures, seed=seed, config=config)
    return figures
