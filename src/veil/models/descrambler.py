"""The learned descrambler of paper 004 (sec. 3.5, Fig. 3): a block-fully-connected (BFC) layer in front of the
baseline CNN. Every K x K block gets its own (3K^2 x 3K^2) linear map of the values in that block, so each output
pixel depends only on its own block. Descrambling is a permutation matrix (zeros and ones), hence an l1 penalty on
the BFC weights. They start at the identity: untrained, the layer passes the scrambled image through unchanged."""
from __future__ import annotations

import torch
from torch import nn

from veil.models.cnn import BaselineCNN
from veil.models.registry import register_model
from veil.models.shapes import image_sides


class BlockFullyConnected(nn.Module):
    def __init__(self, block: int, channels: int = 3, size: int | tuple[int, int] = 32):
        super().__init__()
        height, width = image_sides(size)
        if height % block or width % block:
            raise ValueError(f"block {block} does not divide the image size {height}x{width}")
        self.block, self.rows, self.columns = block, height // block, width // block
        values, blocks = channels * block * block, self.rows * self.columns
        self.weight = nn.Parameter(torch.eye(values).repeat(blocks, 1, 1))
        self.bias = nn.Parameter(torch.zeros(blocks, values))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        n, channels, rows, cols, block = len(images), images.shape[1], self.rows, self.columns, self.block
        columns = (images.reshape(n, channels, rows, block, cols, block).permute(2, 4, 0, 1, 3, 5)
                   .reshape(rows * cols, n, channels * block * block))  # (blocks, N, values)
        mixed = torch.baddbmm(self.bias[:, None, :], columns, self.weight.transpose(1, 2))  # one matmul per block
        return (mixed.reshape(rows, cols, n, channels, block, block).permute(2, 3, 0, 4, 1, 5)
                .reshape(images.shape))

    def l1(self) -> torch.Tensor:
        return self.weight.abs().sum()


@register_model("descrambler-cnn")
class DescramblerCNN(nn.Module):
    def __init__(self, n_classes: int, block: int = 8, widths: tuple[int, int] = (32, 64), l1: float = 1e-4,
                 size: int | tuple[int, int] = 32):
        super().__init__()
        self.descramble = BlockFullyConnected(block, size=size)
        self.cnn = BaselineCNN(n_classes, widths, size=size)
        self.l1_strength = l1

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.cnn(self.descramble(images))

    def penalty(self) -> torch.Tensor:
        """The l1 term added to the training loss."""
        return self.l1_strength * self.descramble.l1()
