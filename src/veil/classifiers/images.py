"""Image classifiers for image-shaped masked data (EtC, LE, ELE, PE, scrambling, filters, or plain images):
the baseline CNN of paper 004, ConvMixer and ViT of paper 003, and the descrambler-CNN of paper 004.

Training follows paper 003's ConvMixer recipe, scaled to CPU budgets: AdamW (weight decay 0.01), a one-cycle
triangular learning rate (linear up for 40% of the steps, linear down), optional mixup and CutMix. Inputs are
standardised per channel with statistics of the training data (kept in the weights file). No other augmentation:
flips and crops would not commute with the encryptions.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from veil.classifiers.base import register_classifier
from veil.classifiers.torch_base import TorchClassifier
from veil.errors import VeilError
from veil.models import build_model

IMAGE_SHAPE = (3, 32, 32)


class Standardize(nn.Module):
    """(x - mean) / std per channel, with the statistics stored as buffers."""

    def __init__(self, channels: int = 3):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, channels, 1, 1))
        self.register_buffer("std", torch.ones(1, channels, 1, 1))

    def fit(self, images: np.ndarray) -> None:
        self.mean.copy_(torch.as_tensor(images.mean(axis=(0, 2, 3), dtype=np.float64)).reshape(self.mean.shape))
        self.std.copy_(torch.as_tensor(images.std(axis=(0, 2, 3), dtype=np.float64)).reshape(self.std.shape)
                       .clamp_min(1e-6))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std


class ImageClassifier(TorchClassifier):
    """A registered architecture (`architecture`) with its own defaults (`arch_defaults`), trained as above."""

    architecture: ClassVar[str] = ""
    arch_defaults: ClassVar[dict] = {}
    default_lr: ClassVar[float] = 1e-3
    log_train_figures = False

    def __init__(self, epochs: int = 10, batch_size: int = 64, lr: float | None = None, weight_decay: float = 0.01,
                 mixup: float = 0.0, cutmix: float = 0.0, validation_fraction: float = 0.1, patience: int = 5,
                 seed: int = 0, device: str | None = None, **arch):
        unknown = set(arch) - set(self.arch_defaults)
        if unknown:
            raise VeilError(f"unknown {self.kind} parameter(s): {', '.join(sorted(unknown))}; "
                            f"known: {', '.join(sorted(self.arch_defaults))}")
        super().__init__(epochs, batch_size, self.default_lr if lr is None else lr, validation_fraction, patience,
                         seed, device)
        if weight_decay < 0 or mixup < 0 or cutmix < 0:
            raise VeilError("weight_decay, mixup and cutmix must not be negative")
        self.weight_decay, self.mixup, self.cutmix = weight_decay, mixup, cutmix
        self.arch = {**self.arch_defaults, **arch}

    def params(self) -> dict:
        return {**super().params(), "weight_decay": self.weight_decay, "mixup": self.mixup, "cutmix": self.cutmix,
                **self.arch}

    def _prepare(self, X: np.ndarray) -> np.ndarray:
        if tuple(X.shape[1:]) != IMAGE_SHAPE:
            raise VeilError(f"{self.kind} classifies images (3, 32, 32); these data have shape {tuple(X.shape[1:])} "
                            "per sample (use nn, rf or adaboost for masked vectors)")
        return X

    def _build(self) -> nn.Module:
        network = build_model(self.architecture, n_classes=len(self.class_names), **self.arch)
        return nn.Sequential(Standardize(), network)

    def _on_built(self, X: np.ndarray) -> None:
        self.module_[0].fit(X)

    def _optimizer(self, steps_per_epoch: int) -> dict:
        optimizer = torch.optim.AdamW(self.module_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.lr, total_steps=self.epochs * steps_per_epoch,
                                                        pct_start=0.4, anneal_strategy="linear",
                                                        cycle_momentum=False)
        return {"optimizer": optimizer, "scheduler": scheduler}

    def _training_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, partner, keep = self._mix(x)
        logits = self.module_(x)
        loss = keep * F.cross_entropy(logits, y) + (1 - keep) * F.cross_entropy(logits, y[partner])
        network = self.module_[1]
        return loss + network.penalty() if hasattr(network, "penalty") else loss

    def _mix(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Mixup or CutMix (one of the enabled, at random): mixed batch, partner of each sample, weight of own label."""
        enabled = [(name, alpha) for name, alpha in (("mixup", self.mixup), ("cutmix", self.cutmix)) if alpha > 0]
        partner = torch.arange(len(x), device=x.device)
        if not enabled:
            return x, partner, 1.0
        name, alpha = enabled[int(torch.randint(len(enabled), ()))]
        keep = float(torch.distributions.Beta(alpha, alpha).sample())
        partner = torch.randperm(len(x), device=x.device)
        if name == "mixup":
            return keep * x + (1 - keep) * x[partner], partner, keep
        return cutmix(x, partner, keep)


def cutmix(x: torch.Tensor, partner: torch.Tensor, keep: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Paste a random box covering about 1 - keep of each image from its partner; the label weight is the exact
    uncovered fraction."""
    height, width = x.shape[2:]
    box_h, box_w = int(height * (1 - keep) ** 0.5), int(width * (1 - keep) ** 0.5)
    top, left = int(torch.randint(height - box_h + 1, ())), int(torch.randint(width - box_w + 1, ()))
    mixed = x.clone()
    mixed[:, :, top:top + box_h, left:left + box_w] = x[partner, :, top:top + box_h, left:left + box_w]
    return mixed, partner, 1 - box_h * box_w / (height * width)


def image_classifier(name: str, architecture: str, defaults: dict, lr: float, doc: str) -> type[ImageClassifier]:
    """Register an ImageClassifier for a model of the registry under `name`."""
    cls = type(f"{architecture.title().replace('-', '')}Classifier", (ImageClassifier,),
               {"architecture": architecture, "arch_defaults": defaults, "default_lr": lr, "__doc__": doc,
                "__module__": __name__})
    return register_classifier(name)(cls)


CNNClassifier = image_classifier("cnn", "cnn", {"widths": (32, 64)}, 3e-3,
                                 "Paper 004's baseline CNN (CR-CRP-CR-CRP-FC-softmax).")
ConvMixerClassifier = image_classifier("convmixer", "convmixer", {"dim": 256, "depth": 8, "kernel": 9, "patch": 1},
                                       1e-2, "ConvMixer; the defaults are paper 003's ConvMixer-256/8, patch 1, k 9.")
ViTClassifier = image_classifier("vit", "vit", {"patch": 16, "dim": 128, "depth": 4, "heads": 4, "mlp_ratio": 2},
                                 1e-3, "A small ViT; set `patch` to the EtC block size.")
DescramblerCNNClassifier = image_classifier("descrambler-cnn", "descrambler-cnn",
                                            {"block": 8, "widths": (32, 64), "l1": 1e-4}, 3e-3,
                                            "Paper 004's l1-regularised block-fully-connected descrambler + CNN.")
