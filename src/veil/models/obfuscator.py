"""The privacy-trained obfuscator's networks (`veil.maskers.obfuscator`): an encoder of the AAE's convolutional
shape (three 4x4 stride-2 convolutions) ending in one standardised latent, and the task head the owner trains with
it. The adversary it is trained against is the AAE's decoder architecture (`veil.models.aae.Decoder`), the one the
ITN attack trains on vectors."""
from __future__ import annotations

import torch
from torch import nn

from veil.models.registry import register_model


@register_model("obfuscator-encoder")
class ObfuscatorEncoder(nn.Module):
    """32x32 RGB -> a latent of `latent_dim` numbers, each standardised by a BatchNorm without affine terms: its
    scale is fixed, so the encoder cannot defeat the adversary (or the noise) by shrinking or inflating it."""

    def __init__(self, channels: int = 16, latent_dim: int = 10):
        super().__init__()
        c = channels
        self.features = nn.Sequential(
            nn.Conv2d(3, c, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * c, 4 * c, 4, 2, 1), nn.BatchNorm2d(4 * c), nn.LeakyReLU(0.2), nn.Flatten())
        self.latent = nn.Sequential(nn.Linear(4 * c * 16, latent_dim), nn.BatchNorm1d(latent_dim, affine=False))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.latent(self.features(images))


@register_model("obfuscator-head")
class TaskHead(nn.Module):
    """The owner's classifier on the latent during training (one hidden layer); the third party trains its own."""

    def __init__(self, latent_dim: int = 10, n_classes: int = 10, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.net(latent)
