"""ConvMixer (Trockman & Kolter, "Patches are all you need?"), as used on EtC images in paper 003.

Patch embedding (a P x P convolution with stride P), then `depth` blocks of a residual depthwise k x k convolution
and a pointwise convolution, each followed by GELU and BatchNorm; global average pooling and a linear head.
Paper 003 uses ConvMixer-256/8 (dim 256, depth 8) with patch 1 and kernel 9 on CIFAR-10; those are the defaults."""
from __future__ import annotations

import torch
from torch import nn

from veil.models.registry import register_model


class Residual(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) + x


def gelu_bn(dim: int) -> list[nn.Module]:
    return [nn.GELU(), nn.BatchNorm2d(dim)]


@register_model("convmixer")
class ConvMixer(nn.Module):
    def __init__(self, n_classes: int, dim: int = 256, depth: int = 8, kernel: int = 9, patch: int = 1,
                 in_channels: int = 3):
        super().__init__()
        blocks = [nn.Sequential(Residual(nn.Sequential(nn.Conv2d(dim, dim, kernel, groups=dim, padding="same"),
                                                       *gelu_bn(dim))),
                                nn.Conv2d(dim, dim, 1), *gelu_bn(dim)) for _ in range(depth)]
        self.net = nn.Sequential(nn.Conv2d(in_channels, dim, patch, stride=patch), *gelu_bn(dim), *blocks,
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(dim, n_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)
