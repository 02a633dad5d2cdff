"""`veil reproduce model-key`: what a key-transformed model costs and gives (`veil transform-model`,
`veil attack --method model-key`), on CIFAR-10 at 32x32 with patch = block = 4, and resized to 224x224 with
patch = block = 16 (paper 003's size; fewer images and one epoch there: the transformation and the attack with the
base model are exact whatever the training).

For a ViT and a ConvMixer at each size: a plain model trained on the victim's private images, and one the attacker
trains on disjoint public images (another seed). The plain model is transformed under a fresh random key (never
written) for LE and for block scrambling, the two of veil's keyed schemes whose keys treat every block alike (EtC,
ELE and PE are refused: their operations differ per block). Figures, `<model><side>_<scheme>_...`:
- `accuracy` of the transformed model on the encrypted test images beside `<model><side>_plain_accuracy` on the
  plain ones (`ratio`: 1.0 when the transformation is exact, at no extra training);
- under each model threat (`base`: the plain model given; `public`: the attacker's own), the model-key attack's
  `key_share`, `blocks_share`, `shuffle_share`, `inversions_share`, `ssim_median` of the decrypted test images,
  `masked_ssim_median` of the encrypted ones, and `seconds`; `shuffle_chance` (1 / values per block) is what
  guessing the shuffle gets right (guessing inversions: half).
Written to `model-key.json` in the output folder (`veil reproduce model-key --out results/privacy --force` adds it
beside the privacy report).
"""
from __future__ import annotations

import copy
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from veil import defaults
from veil.attacks.model_key import MODEL_THREATS, score_recovery
from veil.classifiers import classifier_class
from veil.classifiers.transform import transform_classifier
from veil.data import ImageSet, load
from veil.data.convert import Resize
from veil.experiments import register_protocol
from veil.maskers.masking import masking_function
from veil.results import write_results

SCHEMES = ("le", "scramble")


@dataclass(frozen=True)
class Setting:
    side: int  # images are resized to side x side (CIFAR-10's own 32: as they are)
    block: int  # the key's block, and the models' patch
    train_images: int  # the victim's private training images, and as many public ones for the attacker
    test_images: int  # encrypted test images: scored for accuracy, decrypted by the attack
    epochs: int
    architectures: dict


def _architectures(block: int, dim: int, depth: int) -> dict:
    return {"vit": {"patch": block, "dim": dim, "depth": depth, "heads": 4 if dim >= 64 else 2},
            "convmixer": {"patch": block, "dim": dim, "depth": depth, "kernel": 5 if dim >= 64 else 3}}


BUDGETS = {
    "full": (Setting(32, 4, 5000, 1000, 6, _architectures(4, 64, 2)),
             Setting(224, 16, 300, 50, 1, _architectures(16, 64, 2))),
    "quick": (Setting(32, 4, 200, 50, 1, _architectures(4, 16, 1)),
              Setting(224, 16, 20, 20, 1, _architectures(16, 16, 1))),
}


@register_protocol("model-key")
def run(out_dir, quick: bool = False, seed: int = 0, data: str | None = None) -> dict:
    """Train, transform, attack and score as the module says; write `model-key.json` into `out_dir`."""
    settings = BUDGETS["quick" if quick else "full"]
    source = data or defaults.CIFAR10
    rng = np.random.default_rng(seed)
    train, test = (load(source, split=split, pixels=True) for split in ("train", "test"))
    figures, sizes = {}, {}
    for setting in settings:
        drawn = rng.permutation(len(train))[:2 * setting.train_images]  # the archive is sorted by class
        private, public = (resized(train.subset(np.sort(part)), setting.side) for part in (drawn[::2], drawn[1::2]))
        scored = resized(test.subset(np.sort(rng.permutation(len(test))[:setting.test_images])), setting.side)
        sizes[setting.side] = {"private_images": len(private), "public_images": len(public), "test_images": len(scored)}
        for kind, arch in setting.architectures.items():
            prefix = f"{kind}{setting.side}_"
            model = fitted(kind, arch, setting.epochs, private, seed)
            attacker = fitted(kind, arch, setting.epochs, public, seed + 1)
            figures[prefix + "plain_accuracy"] = model.score(scored.images, scored.labels)
            for method in SCHEMES:
                figures.update(transformed_figures(model, attacker, method, setting.block, scored,
                                                   f"{prefix}{method}_"))
    config = {"data": source, "settings": [asdict(setting) for setting in settings], "images": sizes,
              "schemes": list(SCHEMES), "threats": MODEL_THREATS, "resize": "squash",
              "key": "a fresh random 32-byte secret per scheme and model, never written"}
    write_results(Path(out_dir) / "model-key.json", figures, seed=seed, config=config)
    return figures


run.parts = ()


def resized(images: ImageSet, side: int) -> ImageSet:
    """uint8 images squashed to side x side (unchanged at their own size)."""
    pixels = Resize((side, side)).images(images.images.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return ImageSet(np.ascontiguousarray(pixels), images.labels, images.class_names, images.source)


def fitted(kind: str, arch: dict, epochs: int, images, seed: int):
    model = classifier_class(kind)(epochs=epochs, batch_size=64, seed=seed, **arch)
    return model.fit(images.images, images.labels, class_names=images.class_names)


def transformed_figures(model, attacker, method: str, block: int, test: ImageSet, prefix: str) -> dict:
    """The transformed model's accuracy on the encrypted test images, and the attack under each model threat."""
    scheme = masking_function(method, secret=secrets.token_bytes(32), block=block)
    transformed = transform_classifier(copy.deepcopy(model), scheme)
    accuracy = transformed.score(scheme.transform(test.images), test.labels)
    plain = model.score(test.images, test.labels)
    figures = {"accuracy": accuracy, "ratio": accuracy / plain if plain else None,
               "shuffle_chance": 1 / (3 * block * block)}
    for threat, reference in (("base", model), ("public", attacker)):
        scored = score_recovery(transformed, reference, threat, scheme, np.asarray(test.images))
        figures.update({f"{threat}_{name}": value for name, value in scored.items()})
    return {prefix + name: value for name, value in figures.items()}
