"""The masked-vector classifier of Lis et al.: three linear layers, ReLU, ReLU, softmax (as log-probabilities)."""
from __future__ import annotations

import torch
from torch import nn

from veil.models.registry import register_model


@register_model("mlp")
class MLP(nn.Module):
    def __init__(self, in_dim: int, n_classes: int, hidden: tuple[int, int] = (512, 256)):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden[0]), nn.ReLU(), nn.Linear(hidden[0], hidden[1]), nn.ReLU(),
                                 nn.Linear(hidden[1], n_classes))

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        """Logits; softmax is applied in the loss (cross-entropy) and in predict_proba."""
        return self.net(vectors)
