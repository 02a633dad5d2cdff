"""Networks of the unpaired GAN attack (attacks/gan.py): a residual convolutional translator between 32x32
image-shaped spaces (CycleGAN's ResNet generator at full resolution: reflection padding, instance normalisation in
the residual blocks, no activation after their sum), and a convolutional critic. For masked vectors (AAE) the attack uses the AAE encoder and
decoder architectures instead (models/aae.py)."""
from __future__ import annotations

import torch
from torch import nn

from veil.models.registry import register_model


def _conv(width_in: int, width_out: int) -> nn.Sequential:
    """A 3x3 convolution with reflection padding (no zero border for the translator to learn around)."""
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(width_in, width_out, 3))


class ResidualBlock(nn.Module):
    """CycleGAN's block. Instance normalisation, not batch normalisation: G sees batches of masked data and of F's
    outputs, whose mixed running statistics would make its eval-mode output differ from what it was trained on."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(_conv(width, width), nn.InstanceNorm2d(width, affine=True), nn.ReLU(),
                                  _conv(width, width), nn.InstanceNorm2d(width, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@register_model("gan-translator")
class Translator(nn.Module):
    """(N, 3, 32, 32) -> (N, 3, 32, 32); `bounded` ends in a sigmoid (outputs in [0, 1])."""

    def __init__(self, width: int = 32, blocks: int = 3, bounded: bool = True):
        super().__init__()
        # no normalisation on the trunk, only inside the blocks: the trunk keeps each image's brightness and colour
        layers = [_conv(3, width), nn.ReLU(),
                  *[ResidualBlock(width) for _ in range(blocks)], _conv(width, 3)]
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
