"""A small vision transformer (Dosovitskiy et al.) in plain PyTorch. For EtC images the patch size must equal the
encryption block size (paper 003, sec. III-D): then block scrambling is a permutation of the learned position
embeddings and the per-block steps are absorbed by the patch embedding.

The image size (`size`: a side, or (height, width)) fixes the number of position embeddings, one per patch:
(H / P) * (W / P), plus the class token's."""
from __future__ import annotations

import torch
from torch import nn

from veil.models.registry import register_model
from veil.models.shapes import image_sides


@register_model("vit")
class ViT(nn.Module):
    def __init__(self, n_classes: int, patch: int = 16, dim: int = 128, depth: int = 4, heads: int = 4,
                 mlp_ratio: int = 2, dropout: float = 0.0, in_channels: int = 3,
                 size: int | tuple[int, int] = 32):
        super().__init__()
        height, width = image_sides(size)
        if height % patch or width % patch:
            raise ValueError(f"patch {patch} does not divide the image size {height}x{width}")
        self.embed = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.position = nn.Parameter(torch.randn(1, (height // patch) * (width // patch) + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim * mlp_ratio, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(images).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(len(tokens), -1, -1), tokens], 1) + self.position
        return self.head(self.norm(self.encoder(tokens))[:, 0])
