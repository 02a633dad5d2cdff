"""The inverse-transformation network (ITN) of the attacks: masked image -> image.

An affine map over all 3 x 32 x 32 values comes first: every keyed scheme in veil (EtC, LE, ELE, PE, scrambling) is
one permutation plus p -> 255 - p on some values, and every filter is linear, so an affine layer can express each
inverse exactly (or its least-squares best). A small residual convolutional network then refines the result (what a
linear map cannot: priors of natural images). For masked *vectors* (AAE), the attacker uses the AAE decoder
architecture, which it knows (models/aae.py)."""
from __future__ import annotations

import torch
from torch import nn

from veil.models.registry import register_model

VALUES = 3 * 32 * 32


@register_model("itn")
class InverseNet(nn.Module):
    def __init__(self, width: int = 32, depth: int = 3):
        super().__init__()
        self.affine = nn.Linear(VALUES, VALUES)
        # the refinement sees the affine estimate and the masked values themselves (what a linear map cannot use:
        # e.g. folding p and 255 - p together when the negative-positive flags are unknown)
        layers = [nn.Conv2d(6, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        self.refine = nn.Sequential(*layers, nn.Conv2d(width, 3, 3, padding=1))
        nn.init.zeros_(self.refine[-1].weight)  # the refinement starts as the identity: the affine map alone
        nn.init.zeros_(self.refine[-1].bias)

    def forward(self, masked: torch.Tensor) -> torch.Tensor:
        linear = self.affine(masked.flatten(1)).reshape(masked.shape)
        return linear + self.refine(torch.cat([linear, masked], 1))
