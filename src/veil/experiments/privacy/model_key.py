"""`veil reproduce model-key`: what a key-transformed model costs and gives (`veil transform-model`,
`veil attack --method model-key`), on CIFAR-10 at 32x32 with patch = block = 4.

For a ViT and a ConvMixer: a plain model trained on the victim's private images, and one the attacker trains on
disjoint public images (another seed). The plain model is transformed under a fresh random key (never written) for
LE and for block scrambling, the two of veil's keyed schemes whose keys treat every block alike (EtC, ELE and PE are
refused: their operations differ per block). Figures, `<model>_<scheme>_...`:
- `accuracy` of the transformed model on the encrypted test images beside `<model>_plain_accuracy` on the plain ones
  (`ratio`: 1.0 when the transformation is exact, at no extra training);
- under each model threat (`base`: the plain model given; `public`: the attacker's own), the model-key attack's
  `key_share`, `blocks_share`, `shuffle_share`, `inversions_share`, `ssim_median` of the decrypted test images,
  `masked_ssim_median` of the encrypted ones, and `seconds`.
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
from veil.data import load
from veil.experiments import register_protocol
from veil.maskers.masking import masking_function
from veil.results import write_results

SCHEMES = ("le", "scramble")
BLOCK = 4


@dataclass(frozen=True)
class ModelKeyBudget:
    train_images: int  # the victim's private training images, and as many public ones for the attacker
    test_images: int  # encrypted test images: scored for accuracy, decrypted by the attack
    epochs: int
    architectures: dict


BUDGETS = {
    "full": ModelKeyBudget(5000, 1000, 6, {"vit": {"patch": BLOCK, "dim": 64, "depth": 2, "heads": 4},
                                           "convmixer": {"patch": BLOCK, "dim": 64, "depth": 2, "kernel": 5}}),
    "quick": ModelKeyBudget(200, 50, 1, {"vit": {"patch": BLOCK, "dim": 16, "depth": 1, "heads": 2},
                                         "convmixer": {"patch": BLOCK, "dim": 16, "depth": 1, "kernel": 3}}),
}


@register_protocol("model-key")
def run(out_dir, quick: bool = False, seed: int = 0, data: str | None = None) -> dict:
    """Train, transform, attack and score as the module says; write `model-key.json` into `out_dir`."""
    budget = BUDGETS["quick" if quick else "full"]
    source = data or defaults.CIFAR10
    rng = np.random.default_rng(seed)
    train, test = (load(source, split=split, pixels=True) for split in ("train", "test"))
    drawn = rng.permutation(len(train))[:2 * budget.train_images]  # the archive is sorted by class
    private, public = train.subset(np.sort(drawn[::2])), train.subset(np.sort(drawn[1::2]))
    test = test.subset(np.sort(rng.permutation(len(test))[:budget.test_images]))
    figures = {}
    for kind, arch in budget.architectures.items():
        model = fitted(kind, arch, budget.epochs, private, seed)
        attacker = fitted(kind, arch, budget.epochs, public, seed + 1)
        figures[f"{kind}_plain_accuracy"] = model.score(test.images, test.labels)
        for method in SCHEMES:
            figures.update(transformed_figures(model, attacker, method, test, f"{kind}_{method}_"))
    config = {"data": source, "budget": asdict(budget), "schemes": list(SCHEMES), "block": BLOCK,
              "threats": MODEL_THREATS, "key": "a fresh random 32-byte secret per run, never written",
              "private_images": len(private), "public_images": len(public), "test_images": len(test)}
    write_results(Path(out_dir) / "model-key.json", figures, seed=seed, config=config)
    return figures


run.parts = ()


def fitted(kind: str, arch: dict, epochs: int, images, seed: int):
    model = classifier_class(kind)(epochs=epochs, batch_size=64, seed=seed, **arch)
    return model.fit(images.images, images.labels, class_names=images.class_names)


def transformed_figures(model, attacker, method: str, test, prefix: str) -> dict:
    """The transformed model's accuracy on the encrypted test images, and the attack under each model threat."""
    scheme = masking_function(method, secret=secrets.token_bytes(32), block=BLOCK)
    transformed = transform_classifier(copy.deepcopy(model), scheme)
    accuracy = transformed.score(scheme.transform(test.images), test.labels)
    figures = {"accuracy": accuracy, "ratio": accuracy / model.score(test.images, test.labels)}
    for threat, reference in (("base", model), ("public", attacker)):
        scored = score_recovery(transformed, reference, threat, scheme, np.asarray(test.images))
        figures.update({f"{threat}_{name}": value for name, value in scored.items()})
    return {prefix + name: value for name, value in figures.items()}
