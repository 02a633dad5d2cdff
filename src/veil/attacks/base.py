"""What every attack shares: the three threat models, what the attacker holds under each (`Knowledge`), the
`Attack` interface and its registry (`veil attack --method NAME`), and the attack budget.

An attack never sees the victim's plain images: `Knowledge` holds only what its threat model grants. The victim's
images are used afterwards, by `veil.attacks.scoring`, to measure what the reconstructions reveal.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import ClassVar, Mapping

import numpy as np

from veil.data.imageset import ImageSet
from veil.errors import VeilError
from veil.masked import MaskedSet
from veil.maskers.base import Masker, masker_class
from veil.registry import ATTACKS, MASKERS

#: threat model -> what the attacker holds (the wording used in code, CLI help and results)
THREATS = {
    "a": "ciphertext-only: the victim's masked data, the algorithm, the architecture and public images of the same "
         "kind; no secret",
    "b": "encoder or oracle: (a) plus the victim's encoder (AAE) or black-box use of its masking function under the "
         "victim's secret",
    "c": "known pairs: (a) plus n (image, masked) pairs of the victim",
}
register_attack = ATTACKS.register
attack_class = ATTACKS.get


@dataclass(frozen=True)
class Budget:
    """How much an attacker may spend; stated in every attack's output."""

    train_images: int = 10000  # public images (or pairs) an image attack learns from
    epochs: int = 1  # ITN refinement: this many passes over train_images (the same steps whatever the pair count)
    batch_size: int = 64
    aae_images: int = 20000  # an AAE or AAE decoder the attacker trains: the owner's recipe
    aae_epochs: int = 5
    gan_steps: int = 300  # generator updates of the GAN attack
    simulated_encoders: int = 3  # AAEs of its own a NeuraCrypt-style attacker trains (one held out to check transfer)
    guessed_seeds: int = 8  # training seeds 0, 1, ... the seed-guess attacker tries, an AAE of its own for each
    semantic_train: int = 50000  # public images the semantic-leakage judge trains on (veil.attacks.semantic)
    semantic_epochs: int = 30  # measured: 0.804 on plain CIFAR-10 test images, 4347 s on 2 cores
    semantic_widths: tuple[int, int] = (64, 128)  # the judge's CNN
    semantic_degrade: float = 0.5  # share of its training images blurred, turned grey or made noisy
    semantic_crop_flip: bool = True  # random crops and flips of its training images

    @classmethod
    def quick(cls) -> "Budget":
        return cls(train_images=400, epochs=1, batch_size=32, aae_images=400, aae_epochs=2, gan_steps=20,
                   simulated_encoders=2, guessed_seeds=3, semantic_train=400, semantic_epochs=2,
                   semantic_widths=(32, 64))

    def scaled(self, factor: float, names) -> "Budget":
        """This budget with the fields `names` (an attack's `budget_fields`) multiplied by `factor`, rounded, at
        least 1: one step of a saturation loop."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(names) - known)
        if unknown:
            raise VeilError(f"not budget fields: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return replace(self, **{name: max(1, round(getattr(self, name) * factor)) for name in names})


def check_grants(threat: str, oracle: bool, pairs: bool) -> None:
    """The threat rules, checked once for every entry point: the victim's encoder, key or oracle is granted under
    threat b only and b needs it; known pairs under c only and c needs them."""
    if threat not in THREATS:
        raise VeilError(f"unknown threat model {threat!r}; known: {', '.join(THREATS)}")
    if oracle != (threat == "b"):
        raise VeilError(f"the victim's encoder, key or oracle is granted under threat b only, and threat b needs it "
                        f"(threat {threat}: {THREATS[threat]})")
    if pairs != (threat == "c"):
        raise VeilError(f"known pairs (--pairs N) are granted under threat c only, and threat c needs them "
                        f"(threat {threat}: {THREATS[threat]})")


@dataclass
class Knowledge:
    """What the attacker holds. `oracle` only under threat b, `pairs` only under threat c (checked on creation)."""

    threat: str
    masked: MaskedSet
    public: ImageSet
    oracle: Masker | None = None
    pairs: tuple[np.ndarray, np.ndarray] | None = None
    seed: int = 0
    budget: Budget = field(default_factory=Budget)
    #: a folder where the models the attacker trains from public data alone (its own AAEs) are kept, so that a
    #: resumed report loads them instead of training them again; None keeps them in memory for the process
    model_cache: Path | None = None

    def __post_init__(self):
        check_grants(self.threat, self.oracle is not None, self.pairs is not None)

    @property
    def method(self) -> str:
        return self.masked.method

    @property
    def config(self) -> dict:
        """The scheme's public configuration (block or kernel size), as the masked set records it."""
        return dict(self.masked.meta.get("config", {}))

    def rng(self, purpose: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, *purpose.encode()])

    def public_subset(self, n: int | None = None) -> np.ndarray:
        """Up to `n` (default: the budget's) public images, a seeded random choice."""
        return self.public.images[self.public_indices(n)]

    def public_indices(self, n: int | None = None) -> np.ndarray:
        """The indices of `public_subset(n)` (for the labels that travel with the public images)."""
        n = self.budget.train_images if n is None else n
        total = len(self.public)
        if n >= total:
            return np.arange(total)
        return np.sort(self.rng("public").choice(total, n, replace=False))

    def own_masker(self, rng: np.random.Generator) -> Masker:
        """The victim's scheme, as the set's configuration records it, with a random secret of the attacker's own:
        what a ciphertext-only attacker can simulate. The unkeyed blur has no secret, so this is exactly the
        victim's function."""
        cls = masker_class(self.method)
        if cls.fits_on_data:
            raise VeilError(f"a {self.method} masker cannot be simulated without training one")
        if cls.keyed:
            return cls(bytes(rng.integers(0, 256, 32, dtype=np.uint8)), **self.config)
        return cls(**self.config)


class Attack(ABC):
    """Reconstruct the victim's images from its masked data, with only what the threat model grants.

    Subclasses set `threats` (the models they apply under), `requires` (what the victim's masker class must declare
    in its `Capabilities` for the attack to apply: attribute -> accepted value or tuple of values; a rule, never a
    list of scheme names, so a new scheme is attacked by whatever its capabilities allow), `budget_fields` (the
    `Budget` fields that drive the attack's strength, the ones a saturation loop doubles) and implement
    `reconstruct`. `details_` collects what the run spent and found (seconds, epochs, pairs), for the output."""

    name: ClassVar[str] = ""
    threats: ClassVar[tuple[str, ...]] = ("a",)
    requires: ClassVar[Mapping[str, object]] = {}
    #: the Budget fields that drive the attack's strength, which a saturation search doubles; () for a closed form
    budget_fields: ClassVar[tuple[str, ...]] = ()
    #: the image sizes (H, W) the attack runs at; None: any. An attack whose network or matrix is built for the
    #: paper's 32x32 images (an affine map over all 3x32x32 values, a fixed-size critic, the AAE) names that size
    image_sizes: ClassVar[tuple[tuple[int, int], ...] | None] = None

    def __init__(self, progress: bool = False):
        self.progress = progress
        self.details_: dict = {}

    @classmethod
    def requirements(cls, threat: str) -> dict:
        """What the masker must declare for the attack to run under `threat` (some attacks need more under one)."""
        return dict(cls.requires)

    @classmethod
    def unmet(cls, method: str, threat: str) -> list[str]:
        """The requirements (`name=value`) that `method`'s masker class does not meet under `threat`."""
        capabilities = masker_class(method)
        missing = []
        for name, accepted in cls.requirements(threat).items():
            accepted = accepted if isinstance(accepted, tuple) else (accepted,)
            if getattr(capabilities, name) not in accepted:  # a flag every masker declares (`Capabilities`)
                missing.append(f"{name}={'/'.join(map(str, accepted))}")
        return missing

    @classmethod
    def applies_to(cls, method: str, threat: str | None = None) -> bool:
        """Whether the attack runs against masked sets of `method` under `threat` (None: under any of its threats)."""
        return any(not cls.unmet(method, t) for t in cls.threats if threat in (None, t))

    @classmethod
    def check_applies(cls, method: str, threat: str) -> None:
        if threat not in cls.threats:
            raise VeilError(f"the {cls.name} attack does not run under threat {threat} (it runs under "
                            f"{', '.join(cls.threats)}; {threat}: {THREATS[threat]})")
        if missing := cls.unmet(method, threat):
            applies = [m for m in MASKERS.names() if not cls.unmet(m, threat)]
            raise VeilError(f"the {cls.name} attack does not apply to {method!r} under threat {threat}: it needs a "
                            f"masker with {', '.join(missing)} (it applies to {', '.join(applies) or 'none'})")

    @classmethod
    def check_size(cls, size: tuple[int, int]) -> None:
        """Refuse images of a size the attack was not built for, in one line naming both."""
        if cls.image_sizes is not None and tuple(size) not in cls.image_sizes:
            sizes = " or ".join(f"{h}x{w}" for h, w in cls.image_sizes)
            raise VeilError(f"the {cls.name} attack runs on {sizes} images only, got {size[0]}x{size[1]}; mask and "
                            f"load the images with --size {cls.image_sizes[0][0]}")

    @abstractmethod
    def reconstruct(self, knowledge: Knowledge) -> np.ndarray:
        """Images (N, 3, H, W) in [0, 1], one per masked sample of `knowledge.masked`, at the victim's size."""
