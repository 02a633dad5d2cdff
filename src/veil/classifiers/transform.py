"""Key-transformed models: a ViT or ConvMixer trained on plain images, turned with the key into one that classifies
the images encrypted with that key exactly as the plain model classifies the plain ones, with no retraining
(Kiya et al., "Image and model transformation with secret key for vision transformer", IEICE 2023; Iijima & Kiya,
ConvMixer, arXiv 2207.11939).

Why it is exact. With the patch size P equal to the encryption block B, the model first maps each P x P patch x
to `W (x - mean) / std + b` (one patch embedding shared by all patches). A keyed scheme that treats every block
alike moves each encrypted value u of a block from plain value `shuffle[u]` of some plain block, inverted
(p -> 255 - p, on [0, 1]: 1 - x) where `inverted[u]`; so `x[shuffle[u]] = s[u] x'[u] + inverted[u]` with
s = -1 where inverted, +1 elsewhere. Hence the embedding of the plain patch is that of the encrypted one under

    W'[:, u] = s[u] W[:, shuffle[u]] / std,
    b' = b + sum_u inverted[u] W[:, shuffle[u]] / std - sum_v W[:, v] mean / std

(the classifier's per-channel standardisation folded in; the transformed model's own is the identity). Block
scrambling moves whole patches: a ViT's encoder is permutation-equivariant apart from its position embeddings, so
permuting those (encrypted position j gets the embedding of plain position order[j]) makes the token set exactly
the plain one; its class token's output, and so every logit, is unchanged up to float rounding.

What cannot be made exact is refused, in one line saying why:
- operations that differ from block to block (EtC's per-block rotation and flip, negative-positive and colour order;
  ELE's per-block shuffle and inversion; PE's per-pixel inversion and colour order): one shared patch embedding
  would need a different W' for every block;
- block scrambling under a ConvMixer: its depthwise convolutions mix neighbouring patches, and moving the patches
  changes who neighbours whom;
- a patch size other than the block size, and models other than a ViT or a ConvMixer.
Which key is which is read off the scheme itself, never off its name: the scheme encrypts a few probe images, which
give its permutation and inversion of the values (`value_cipher`), and these are checked block by block.

The transformed model is a secret-bearing artifact: its patch embedding is the plain one permuted and sign-flipped
by the key, and its position embeddings the plain ones permuted, so whoever also holds the plain (base) model reads
the key off the weights (`veil attack --method model-key`, `veil.attacks.model_key`). Its folder and files are
created owner-only (0700, 0600), and its manifest says so (`extra.key_transform`); the key itself is written
nowhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from veil.classifiers.base import load_classifier
from veil.classifiers.images import ImageClassifier, channels_first_shape
from veil.errors import VeilError
from veil.io.output import claim_output
from veil.io.write import make_private
from veil.maskers.masking import masking_function
from veil.models.convmixer import ConvMixer
from veil.models.vit import ViT

#: what the manifest of a transformed model says about it
SECRET_BEARING = ("secret-bearing: the key's block order, shuffle and inversions can be read off these weights by "
                  "whoever holds the plain model they came from (veil attack --method model-key); keep this folder "
                  "as secret as the key file")
#: what a probe image's values count in: one uint8 digit of a value's position per probe
DIGIT = 256


@dataclass(frozen=True)
class BlockCipher:
    """A keyed scheme's encryption, at one image size, as the same operation on every B x B block: encrypted block j
    is plain block `order[j]` with its 3*B*B values (channels-first order: channel, row, column) shuffled, encrypted
    value u being plain value `shuffle[u]`, and inverted (p -> 255 - p) where `inverted[u]`."""

    block: int
    order: np.ndarray
    shuffle: np.ndarray
    inverted: np.ndarray

    @property
    def scrambles_blocks(self) -> bool:
        return not np.array_equal(self.order, np.arange(len(self.order)))


def value_cipher(scheme, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(perm, mask) of `encrypted.flat = plain.flat[perm] ^ mask` for (3, H, W) uint8 images, read off the scheme by
    encrypting probes: a black image gives the mask, and images whose values are the base-256 digits of each value's
    position give the permutation."""
    size = int(np.prod(shape))
    positions = np.arange(size).reshape(shape)
    digits = int(np.ceil(np.log(max(size, 2)) / np.log(DIGIT)))
    probes = np.stack([np.zeros(shape, np.uint8)] + [(positions // DIGIT ** k % DIGIT).astype(np.uint8)
                                                     for k in range(digits)])
    encrypted = np.asarray(scheme.transform(probes)).reshape(len(probes), size)
    mask = encrypted[0]
    perm = sum((encrypted[1 + k] ^ mask).astype(np.int64) * DIGIT ** k for k in range(digits))
    return perm, mask


def block_cipher(scheme, shape: tuple[int, int, int], block: int) -> BlockCipher:
    """The scheme's encryption of (3, H, W) images as one operation on every block (see `BlockCipher`); a key that
    moves values between blocks, inverts other than p -> 255 - p, or treats blocks differently is refused."""
    perm, mask = value_cipher(scheme, shape)
    by_block = block_positions(shape, block)  # flat positions, grouped (blocks, values of a block)
    source = np.argsort(by_block.reshape(-1))  # flat position -> its (block, value) index
    source_block, source_value = np.divmod(source[perm[by_block]], by_block.shape[1])
    mask = mask[by_block]
    name = f"this {scheme.method} key (block {block})"
    if not (source_block == source_block[:, :1]).all():
        raise VeilError(f"{name} moves values from one block into another: no model transformation undoes that")
    if not np.isin(mask, (0, 255)).all():
        raise VeilError(f"{name} changes values by other than p -> 255 - p, which no linear map undoes")
    if not ((source_value == source_value[0]).all() and (mask == mask[0]).all()):
        raise VeilError(f"{name} shuffles, turns or inverts each block differently: one patch embedding shared by "
                        "all blocks cannot undo per-block operations exactly, so no transformed model exists for it")
    return BlockCipher(block, source_block[:, 0], source_value[0], mask[0] == 255)


def block_positions(shape: tuple[int, int, int], block: int) -> np.ndarray:
    """Flat positions of a (3, H, W) image as (blocks in raster order, 3*B*B values in channel, row, column order)."""
    channels, height, width = shape
    rows, columns = height // block, width // block
    grid = np.arange(channels * height * width).reshape(channels, rows, block, columns, block)
    return grid.transpose(1, 3, 0, 2, 4).reshape(rows * columns, channels * block * block)


def patch_embedding(network: torch.nn.Module) -> torch.nn.Conv2d:
    """The patch-embedding convolution of a ViT or ConvMixer; any other architecture is refused."""
    if isinstance(network, ViT):
        return network.embed
    if isinstance(network, ConvMixer):
        return network.net[0]
    raise VeilError(f"only a ViT or a ConvMixer (a patch embedding) can be key-transformed, not a "
                    f"{type(network).__name__}")


def check_patch(network: torch.nn.Module, block: int) -> None:
    """Refuse a model that is not a ViT or ConvMixer, or whose patch size is not the key's block size."""
    patch = patch_embedding(network).kernel_size[0]
    if patch != block:
        raise VeilError(f"the model's patch size ({patch}) is not the key's block size ({block}): a patch then "
                        "mixes parts of several blocks and no weight permutation undoes the encryption")


def check_transformable(network: torch.nn.Module, cipher: BlockCipher) -> None:
    """Refuse what `check_patch` refuses, and block scrambling under a ConvMixer."""
    check_patch(network, cipher.block)
    if isinstance(network, ConvMixer) and cipher.scrambles_blocks:
        raise VeilError("this key scrambles the blocks, and a ConvMixer's depthwise convolutions see neighbouring "
                        "patches: moving the patches changes their neighbours, which no weight permutation undoes")


@torch.no_grad()
def transform_network(standardized, cipher: BlockCipher) -> None:
    """Turn a `StandardizedNetwork` trained on plain images into one for images encrypted by `cipher`, in place
    (the formulas are in the module docstring; computed in float64)."""
    network, standardize = standardized.network, standardized.standardize
    check_transformable(network, cipher)
    embed = patch_embedding(network)
    dim, area = embed.out_channels, cipher.block * cipher.block
    std = standardize.std.double().reshape(3).repeat_interleave(area)  # per value of a patch, channel-major
    mean = standardize.mean.double().reshape(3).repeat_interleave(area)
    weight = embed.weight.double().reshape(dim, -1) / std  # the standardisation folded in
    device = embed.weight.device
    shuffle, inverted = (torch.as_tensor(part, device=device) for part in (cipher.shuffle, cipher.inverted))
    sign = 1.0 - 2.0 * inverted.double()
    bias = embed.bias.double() + weight[:, shuffle] @ inverted.double() - weight @ mean
    embed.weight.copy_((weight[:, shuffle] * sign).reshape(embed.weight.shape))
    embed.bias.copy_(bias)
    standardize.mean.zero_()
    standardize.std.fill_(1.0)
    if isinstance(network, ViT):
        order = torch.cat([torch.zeros(1, dtype=torch.long), 1 + torch.as_tensor(cipher.order)]).to(device)
        network.position.copy_(network.position[:, order])


def transform_classifier(model: ImageClassifier, scheme) -> ImageClassifier:
    """`model` (trained on plain images) turned, in place, into the model for images encrypted by `scheme`: it then
    expects `scheme`'s fingerprint, and its manifest names the method and block and that it bears the key."""
    if model.fingerprint_:
        raise VeilError(f"the model was trained on masked data ({model.fingerprint_[:20]}...); transform-model "
                        "starts from a model trained on plain images")
    if scheme.structure != "blocks" or not scheme.keyed:
        raise VeilError(f"{scheme.method} is not a keyed block scheme; transform-model takes a key for one")
    check_patch(model.module_.network, scheme.block)
    shape = channels_first_shape(model.input_shape_)
    cipher = block_cipher(scheme, shape, scheme.block)
    transform_network(model.module_, cipher)
    model.fingerprint_ = scheme.fingerprint
    model.key_transform_ = {"method": scheme.method, "block": scheme.block, "image_shape": list(shape),
                            "block_scrambling": cipher.scrambles_blocks, "secret_bearing": SECRET_BEARING}
    return model


def transform_model(model_dir, out_dir, method: str, secret: bytes, block: int | None = None,
                    force: bool = False) -> ImageClassifier:
    """`veil transform-model`: load the plain model in `model_dir`, transform it for the keyed scheme `method` under
    `secret` (block: the model's patch size unless given) and save it as a new, owner-only model folder `out_dir`
    that `veil evaluate` and `veil serve` read like any other (`force` replaces an existing one)."""
    model = load_classifier(model_dir)
    if not isinstance(model, ImageClassifier) or "patch" not in model.arch_defaults:
        raise VeilError(f"holds a {model.kind} model; transform-model takes a ViT or ConvMixer", model_dir)
    scheme = masking_function(method, secret=secret, block=model.patch if block is None else block)
    transform_classifier(model, scheme)
    with claim_output(out_dir, force, folder=True, writer="transform-model", reads=[model_dir]) as tmp:
        model.save(tmp)
        for path in [Path(tmp), *Path(tmp).iterdir()]:
            make_private(path)
    return model
