"""Networks of the unpaired GAN attack (attacks/gan.py): a residual convolutional translator between 32x32
image-shaped spaces, and a convolutional critic. For masked vectors (AAE) the attack uses the AAE encoder and
decoder architectures instead (models/aae.py)."""
from __future__ import annotations

import torch
from torch import nn

from veil.models.registry import register_model


class ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


@register_model("gan-translator")
class Translator(nn.Module):
    """(N, 3, 32, 32) -> (N, 3, 32, 32); `bounded` ends in a sigmoid (outputs in [0, 1])."""

    def __init__(self, width: int = 32, blocks: int = 3, bounded: bool = True):
        super().__init__()
        layers = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), *[ResidualBlock(width) for _ in range(blocks)],
                  nn.Conv2d(width, 3, 3, padding=1)]
        self.net = nn.Sequential(*layers, *([nn.Sigmoid()] if bounded else []))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_model("gan-critic")
class Critic(nn.Module):
    """(N, 3, 32, 32) -> one realism score per image (least-squares GAN: no sigmoid)."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.LeakyReLU(0.2),
                                 nn.Flatten(), nn.Linear(4 * width * 16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)
