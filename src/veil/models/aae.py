"""Adversarial autoencoder networks of Lis et al. (2021): three-conv encoder with a Gaussian and a categorical
linear head, a mirrored transposed-conv decoder, and one discriminator per latent part.

Supporting tables S1-S4 (exact sizes) are not available; the sizes below meet the stated facts: three conv layers,
two linear heads, latent 384 Gaussian + 20 categorical, and an encoder of over 400k trainable parameters
(about 1.0M at the defaults: conv 3->32->64->128, 4x4 kernels, stride 2, then 2048 -> 384 and 2048 -> 20).
"""
from __future__ import annotations

import torch
from torch import nn

from veil.models.registry import register_model


def _down(cin: int, cout: int, norm: bool) -> list[nn.Module]:
    layers = [nn.Conv2d(cin, cout, 4, stride=2, padding=1)]
    return layers + ([nn.BatchNorm2d(cout)] if norm else []) + [nn.LeakyReLU(0.2)]


def _up(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]


@register_model("aae-encoder")
class Encoder(nn.Module):
    """32x32 RGB -> (Gaussian part, categorical probabilities)."""

    def __init__(self, channels: int = 32, gauss_dim: int = 384, cat_dim: int = 20, standardize: bool = True):
        super().__init__()
        c = channels
        self.features = nn.Sequential(*_down(3, c, False), *_down(c, 2 * c, True), *_down(2 * c, 4 * c, True), nn.Flatten())
        # Standardising the Gaussian head (BatchNorm without affine terms) pins each dimension's mean and
        # variance to the prior's, leaving the discriminator only the shape to enforce: a large part of
        # what keeps adversarial training stable here.
        gauss = [nn.Linear(4 * c * 16, gauss_dim)] + ([nn.BatchNorm1d(gauss_dim, affine=False)] if standardize else [])
        self.gauss = nn.Sequential(*gauss)
        self.cat = nn.Linear(4 * c * 16, cat_dim)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(images)
        return self.gauss(h), torch.softmax(self.cat(h), dim=1)


@register_model("aae-decoder")
class Decoder(nn.Module):
    """The concatenated latent (Gaussian + categorical) -> 32x32 RGB in [0, 1].

    With `linear_skip`, a linear map from the latent to every pixel is added before the final sigmoid, beside the
    transposed convolutions. A linear decoder alone reaches held-out MSE 0.0016 on CIFAR-10 from 404 principal
    components, below what the convolutional path reached after several epochs: the skip gives the decoder that
    easy part from the first steps, and the convolutions learn the rest."""

    def __init__(self, channels: int = 32, gauss_dim: int = 384, cat_dim: int = 20, linear_skip: bool = False):
        super().__init__()
        c = channels
        self.project = nn.Sequential(nn.Linear(gauss_dim + cat_dim, 4 * c * 16), nn.Unflatten(1, (4 * c, 4, 4)),
                                     nn.BatchNorm2d(4 * c), nn.ReLU())
        self.body = nn.Sequential(*_up(4 * c, 2 * c), *_up(2 * c, c), nn.ConvTranspose2d(c, 3, 4, stride=2, padding=1))
        self.skip = nn.Sequential(nn.Linear(gauss_dim + cat_dim, 3 * 32 * 32), nn.Unflatten(1, (3, 32, 32))) \
            if linear_skip else None

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        logits = self.body(self.project(latent))
        return torch.sigmoid(logits if self.skip is None else logits + self.skip(latent))


@register_model("aae-discriminator")
class Discriminator(nn.Module):
    """A latent vector -> logit that it was sampled from the prior (real) rather than produced by the encoder."""

    def __init__(self, dim: int, hidden: int = 256, dropout: float = 0.2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.LeakyReLU(0.2), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Dropout(dropout), nn.Linear(hidden, 1))

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.net(latent).squeeze(1)
