"""The learned descrambler of paper 004 (sec. 3.5, Fig. 3): a block-fully-connected (BFC) layer in front of the
baseline CNN. Every K x K block gets its own (3K^2 x 3K^2) linear map of the values in that block, so each output
pixel depends only on its own block. Descrambling is a permutation matrix (zeros and ones), hence an l1 penalty on
the BFC weights. They start at the identity: untrained, the layer passes the scrambled image through unchanged."""
from __future__ import annotations

import torch
from torch import nn

from veil.models.cnn import BaselineCNN
from veil.models.registry import register_model


class BlockFullyConnected(nn.Module):
    def __init__(self, block: int, channels: int = 3, size: int = 32):
        super().__init__()
        self.block, self.size = block, size
        values, blocks = channels * block * block, (size // block) ** 2
        self.weight = nn.Parameter(torch.eye(values).repeat(blocks, 1, 1))
        self.bias = nn.Parameter(torch.zeros(blocks, values))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        n, channels, per_side, block = len(images), images.shape[1], self.size // self.block, self.block
        columns = (images.reshape(n, channels, per_side, block, per_side, block).permute(2, 4, 0, 1, 3, 5)
                   .reshape(per_side * per_side, n, channels * block * block))  # (blocks, N, values)
        mixed = torch.baddbmm(self.bias[:, None, :], columns, self.weight.transpose(1, 2))  # one matmul per block
        return (mixed.reshape(per_side, per_side, n, channels, block, block).permute(2, 3, 0, 4, 1, 5)
                .reshape(images.shape))

    def l1(self) -> torch.Tensor:
        return self.weight.abs().sum()


@register_model("descrambler-cnn")
class DescramblerCNN(nn.Module):
    def __init__(self, n_classes: int, block: int = 8, widths: tuple[int, int] = (32, 64), l1: float = 1e-4):
        super().__init__()
        self.descramble = BlockFullyConnected(block)
        self.cnn = BaselineCNN(n_classes, widths)
        self.l1_strength = l1

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.cnn(self.descramble(images))

    def penalty(self) -> torch.Tensor:
        """The l1 term added to the training loss."""
        return self.l1_strength * self.descramble.l1()
