"""The baseline CNN of paper 004 (Manolakos & Soltani, Fig. 1): CONV-RELU, CONV-RELU-POOL, twice, then a fully
connected layer and softmax (74% on plain CIFAR-10 there; its 3-layer CR-CRP-FC variant reached 67%).

The paper gives the layer types but not the widths; 3x3 convolutions with 32 then 64 filters are used here. The
fully connected layer reads every feature of the last pooling, so its width follows the image size (`size`: a side,
or (height, width)); the two poolings halve each side, rounding down."""
from __future__ import annotations

import torch
from torch import nn

from veil.models.registry import register_model
from veil.models.shapes import image_sides


def conv_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]


@register_model("cnn")
class BaselineCNN(nn.Module):
    def __init__(self, n_classes: int, widths: tuple[int, int] = (32, 64), in_channels: int = 3,
                 size: int | tuple[int, int] = 32):
        super().__init__()
        first, second = widths
        height, width = image_sides(size)
        self.features = nn.Sequential(*conv_relu(in_channels, first), *conv_relu(first, first), nn.MaxPool2d(2),
                                      *conv_relu(first, second), *conv_relu(second, second), nn.MaxPool2d(2))
        self.classify = nn.Linear(second * (height // 4) * (width // 4), n_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits; softmax is applied in the loss and in predict_proba."""
        return self.classify(self.features(images).flatten(1))
