"""Image classifiers for image-shaped masked data (EtC, LE, ELE, PE, scrambling, filters, or plain images):
the baseline CNN of paper 004, ConvMixer and ViT of paper 003, and the descrambler-CNN of paper 004.

Training follows paper 003's ConvMixer recipe, scaled to CPU budgets: AdamW (weight decay 0.01), a one-cycle
triangular learning rate (linear up for 40% of the steps, linear down), optional mixup and CutMix, and optional
RandAugment (`randaugment` ops per image at `randaugment_magnitude` of 10) and random erasing (`erasing`, the
probability per image), both from `veil.classifiers.augment`, applied to the training batches only, to whatever
images are trained on (plain or masked), before standardisation. Inputs are standardised per channel with
statistics of the training data (kept in the weights file).

Images come in either layout, (N, 3, H, W) or (N, H, W, 3), of any size the architecture allows (a ViT's or
ConvMixer's patch must divide it; for EtC images, the patch equals the encryption block); a model refuses images of
another size than it was trained on. uint8 images (0 to 255) stay uint8 until each batch reaches the network, which
scales it to [0, 1] on its device: a large set of 224x224 images is never copied whole as floats.

Crops and flips (`crop_flip`) and degradations (`degrade`: blur, greyscale or noise, with that probability per image)
are off by default: crops and flips do not commute with the encryptions; they serve a classifier of plain images,
such as the semantic judge of `veil.attacks.semantic`.
"""
from __future__ import annotations

import inspect
from typing import Callable, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from veil.classifiers.augment import MAX_MAGNITUDE, crop_flip, degrade, rand_augment, random_erasing
from veil.classifiers.base import register_classifier
from veil.classifiers.torch_base import TorchClassifier, one_cycle
from veil.errors import VeilValueError
from veil.models import ARCHITECTURES, build_model

#: images per chunk when input statistics are summed over a set (bounded memory, whatever the set's size)
STATISTICS_CHUNK = 64


def unit_float(images: torch.Tensor) -> torch.Tensor:
    """A batch as float values in [0, 1]: uint8 pixels scaled by 1/255, floats as they are."""
    return images.float() / 255 if images.dtype == torch.uint8 else images


def channels_first_shape(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """(3, H, W) of one image's shape in either layout, or None for anything else (vectors, other channels)."""
    if len(shape) != 3:
        return None
    if shape[0] == 3:
        return tuple(shape)
    return (3, *shape[:2]) if shape[2] == 3 else None


def channel_statistics(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per channel of (N, 3, H, W) images in [0, 1] (uint8 ones scaled by 1/255),
    summed in chunks in float64, so that no float copy of the whole set is made."""
    total, squares, count = np.zeros(3), np.zeros(3), 0
    for start in range(0, len(images), STATISTICS_CHUNK):
        chunk = images[start:start + STATISTICS_CHUNK].astype(np.float64)
        total += chunk.sum(axis=(0, 2, 3))
        squares += np.square(chunk).sum(axis=(0, 2, 3))
        count += chunk[:, 0].size
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    mean = total / count
    return mean / scale, np.sqrt(np.maximum(squares / count - mean ** 2, 0.0)) / scale


class Standardize(nn.Module):
    """(x - mean) / std per channel, with the statistics stored as buffers; uint8 batches are first scaled to
    [0, 1]."""

    def __init__(self, channels: int = 3):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, channels, 1, 1))
        self.register_buffer("std", torch.ones(1, channels, 1, 1))

    def fit(self, images: np.ndarray) -> None:
        mean, std = channel_statistics(images)
        self.mean.copy_(torch.as_tensor(mean).reshape(self.mean.shape))
        self.std.copy_(torch.as_tensor(std).reshape(self.std.shape).clamp_min(1e-6))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (unit_float(images) - self.mean) / self.std


class StandardizedNetwork(nn.Sequential):
    """Standardize, then the architecture. A Sequential, so the weights keep their saved names (`0.*`, `1.*`)."""

    def __init__(self, network: nn.Module):
        super().__init__(Standardize(), network)

    @property
    def standardize(self) -> Standardize:
        return self[0]

    @property
    def network(self) -> nn.Module:
        return self[1]


#: the hyperparameters of every image classifier, with their defaults (`lr=None`: the architecture's own)
TRAINING_DEFAULTS = {"epochs": 10, "batch_size": 64, "lr": None, "weight_decay": 0.01, "mixup": 0.0, "cutmix": 0.0,
                     "randaugment": 0, "randaugment_magnitude": 9.0, "erasing": 0.0,
                     "crop_flip": False, "degrade": 0.0,
                     "validation_fraction": 0.1, "patience": 5, "seed": 0, "bf16": False, "device": None}


def storing_init(defaults: dict) -> Callable:
    """An `__init__` that stores its keyword arguments unchanged and does nothing else, with an explicit signature
    (name=default for each of `defaults`), so scikit-learn's get_params, set_params and clone see every one."""
    Parameter = inspect.Parameter
    signature = inspect.Signature([Parameter("self", Parameter.POSITIONAL_ONLY)]
                                  + [Parameter(name, Parameter.KEYWORD_ONLY, default=v) for name, v in defaults.items()])

    def __init__(self, **params):
        unknown = set(params) - set(defaults)
        if unknown:
            raise TypeError(f"unknown {self.kind} parameter(s): {', '.join(sorted(unknown))}; "
                            f"known: {', '.join(sorted(defaults))}")
        for name, value in defaults.items():
            setattr(self, name, params.get(name, value))

    __init__.__signature__ = signature
    return __init__


class ImageClassifier(TorchClassifier):
    """A registered architecture (`architecture`) with its own defaults (`arch_defaults`), trained as above. Takes
    images as (n, 3, H, W) or (n, H, W, 3), uint8 or float, of the size it was fitted on; each class's `__init__`
    lists the training hyperparameters (`TRAINING_DEFAULTS`) and its architecture's."""

    architecture: ClassVar[str] = ""
    arch_defaults: ClassVar[dict] = {}
    default_lr: ClassVar[float] = 1e-3
    #: the architecture adds a regularisation term to the loss (`network.penalty()`)
    penalised: ClassVar[bool] = False
    log_train_figures = False
    kept_dtypes = (np.uint8,)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # images, 4-D
        return tags

    def _check_params(self) -> None:
        super()._check_params()
        if self.weight_decay < 0 or self.mixup < 0 or self.cutmix < 0:
            raise VeilValueError("weight_decay, mixup and cutmix must not be negative")
        if not isinstance(self.randaugment, (int, np.integer)) or self.randaugment < 0:
            raise VeilValueError(f"randaugment is a number of ops from 0 up, got {self.randaugment!r}")
        if not 0 <= self.randaugment_magnitude <= MAX_MAGNITUDE or not 0 <= self.erasing <= 1:
            raise VeilValueError(f"randaugment_magnitude must be in [0, {MAX_MAGNITUDE:g}] and erasing in [0, 1], "
                                 f"got {self.randaugment_magnitude} and {self.erasing}")
        if not 0 <= self.degrade <= 1:
            raise VeilValueError(f"degrade is a probability per image, in [0, 1], got {self.degrade}")

    def _lr(self) -> float:
        return self.default_lr if self.lr is None else self.lr

    def _arch(self) -> dict:
        return {name: getattr(self, name) for name in self.arch_defaults}

    def _validated(self, X, y="no_validation", reset: bool = False):
        """The image shape is checked first: it names both shapes, where scikit-learn would count features."""
        if not reset:
            self._check_shape(np.asarray(X))
        return super()._validated(X, y, reset)

    def _check_shape(self, X: np.ndarray, where=None) -> None:
        if tuple(X.shape[1:]) != self.input_shape_:
            raise VeilValueError(f"{self.kind} was trained on images of shape {self.input_shape_}; these have shape "
                                 f"{tuple(X.shape[1:])} (resize them to the training size)", where)

    def _prepare(self, X: np.ndarray) -> np.ndarray:
        shape = channels_first_shape(tuple(X.shape[1:]))
        if shape is None:
            raise VeilValueError(f"{self.kind} classifies images, RGB (3, H, W) or (H, W, 3); these data have shape "
                                 f"{tuple(X.shape[1:])} per sample (use nn, rf or adaboost for masked vectors)")
        if tuple(X.shape[1:]) != shape:
            X = np.ascontiguousarray(X.transpose(0, 3, 1, 2))
        patch = self._arch().get("patch", 1)
        if shape[1] % patch or shape[2] % patch:
            raise VeilValueError(f"{self.kind} patch {patch} does not divide the image size {shape[1]}x{shape[2]}")
        return X

    def _extra(self) -> dict:
        """Also what a key transformation made of the model (`veil.classifiers.transform`), when it was made."""
        transformed = getattr(self, "key_transform_", None)
        return {**super()._extra(), **({"key_transform": transformed} if transformed else {})}

    def _load_weights(self, path, extra: dict) -> None:
        super()._load_weights(path, extra)
        self.key_transform_ = extra.get("key_transform")

    def _build(self) -> nn.Module:
        sized = "size" in inspect.signature(ARCHITECTURES.get(self.architecture)).parameters
        size = {"size": channels_first_shape(self.input_shape_)[1:]} if sized else {}
        return StandardizedNetwork(build_model(self.architecture, n_classes=len(self.classes_), **self._arch(),
                                               **size))

    def _on_built(self, X: np.ndarray) -> None:
        self.module_.standardize.fit(X)

    def _optimizer(self, steps_per_epoch: int) -> dict:
        optimizer = torch.optim.AdamW(self.module_.parameters(), lr=self._lr(), weight_decay=self.weight_decay)
        return {"optimizer": optimizer, "scheduler": one_cycle(optimizer, self._lr(), self.epochs * steps_per_epoch)}

    def _training_loss(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, partner, keep = self._mix(self._augment(unit_float(x)))
        logits = net(x)
        loss = keep * F.cross_entropy(logits, y) + (1 - keep) * F.cross_entropy(logits, y[partner])
        return loss + self.module_.network.penalty() if self.penalised else loss

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """Crops and flips, degradations, RandAugment, then random erasing, each when enabled, drawing from a
        generator seeded from torch's global one (which the trainer seeds from `seed`, as it does for mixup and
        CutMix)."""
        if not (self.randaugment or self.erasing or self.crop_flip or self.degrade):
            return x
        generator = torch.Generator().manual_seed(int(torch.randint(2 ** 62, ())))
        if self.crop_flip:
            x = crop_flip(x, generator)
        if self.degrade:
            x = degrade(x, self.degrade, generator)
        if self.randaugment:
            x = rand_augment(x, self.randaugment, self.randaugment_magnitude, generator)
        return random_erasing(x, self.erasing, generator)

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


def image_classifier(name: str, class_name: str, architecture: str, defaults: dict, lr: float, doc: str,
                     penalised: bool = False) -> type[ImageClassifier]:
    """Register an ImageClassifier for a model of the registry under `name`; `class_name` must be the module-level
    name it is bound to (pickle finds classes by name, and joblib workers pickle estimators)."""
    cls = type(class_name, (ImageClassifier,),
               {"architecture": architecture, "arch_defaults": defaults, "default_lr": lr, "penalised": penalised,
                "__init__": storing_init({**TRAINING_DEFAULTS, **defaults}), "__doc__": doc, "__module__": __name__})
    return register_classifier(name)(cls)


CNNClassifier = image_classifier("cnn", "CNNClassifier", "cnn", {"widths": (32, 64)}, 3e-3,
                                 "Paper 004's baseline CNN (CR-CRP-CR-CRP-FC-softmax).")
ConvMixerClassifier = image_classifier("convmixer", "ConvMixerClassifier", "convmixer",
                                       {"dim": 256, "depth": 8, "kernel": 9, "patch": 1}, 1e-2,
                                       "ConvMixer; the defaults are paper 003's ConvMixer-256/8, patch 1, k 9.")
ViTClassifier = image_classifier("vit", "ViTClassifier", "vit",
                                 {"patch": 16, "dim": 128, "depth": 4, "heads": 4, "mlp_ratio": 2}, 1e-3,
                                 "A small ViT; set `patch` to the EtC block size.")
DescramblerCNNClassifier = image_classifier("descrambler-cnn", "DescramblerCNNClassifier", "descrambler-cnn",
                                            {"block": 8, "widths": (32, 64), "l1": 1e-4}, 3e-3,
                                            "Paper 004's l1-regularised block-fully-connected descrambler + CNN.",
                                            penalised=True)
