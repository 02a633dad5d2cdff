"""`veil demo`: the whole pipeline on scikit-learn's digits, small enough for 2 CPU cores in under 3 minutes.

A masker is trained on one half of the digits (labels unused); the other half is masked, split 8:2, and the
paper's three classifiers learn from the masked vectors only.
"""
from __future__ import annotations

import time
from pathlib import Path

from veil.classifiers import preset_params
from veil.data import load, stratified_split
from veil.io.output import claim_output
from veil.experiments.plots import masked_examples
from veil.results import write_results
from veil.workflows import holdout_scores, mask_images, train_masker

DEMO_EPOCHS = 12
#: AdaBoost is the paper's, on decision stumps: it reaches only about 0.75 on 10 digit classes (the paper's MNIST
#: table shows the same weakness: 0.689), and a deeper-tree variant would not be the method the figure names.
DEMO_PARAMS = {"nn": {**preset_params("nn", "paper"), "batch_size": 16, "epochs": 40, "patience": 8}}


def run_demo(out_dir, seed: int = 0, epochs: int = DEMO_EPOCHS, progress: bool = True, force: bool = False) -> dict:
    """Everything goes to a new folder `out_dir` (`force`: into an existing one, see `veil.io.output.claim_output`)."""
    with claim_output(out_dir, force, folder=True, writer="demo") as tmp:
        return _demo_into(tmp, seed, epochs, progress)


def _demo_into(out_dir: Path, seed: int, epochs: int, progress: bool) -> dict:
    start = time.time()
    digits = load("digits")
    public, private = stratified_split(digits.labels, 0.5, seed)
    masker = train_masker(digits.subset(public), out_dir / "masker", epochs=epochs, batch_size=32, seed=seed,
                          preset="paper", progress=progress)
    masked = mask_images(masker, digits.subset(private))
    figures, fitted = holdout_scores(masked.data, masked.require_labels(), seed=seed, params=DEMO_PARAMS,
                                class_names=masked.class_names, progress=progress)
    figures["reconstruction_mse"] = masker.evaluate(digits.subset(private))["reconstruction_mse"]
    shown = digits.subset(private[:8])
    vectors = masker.transform(shown)
    masked_examples(out_dir / "fig1_masked_examples.png", shown.images, vectors[:, :masker.config.gauss_dim],
                    masker.inverse_transform(vectors), "digits: original / masked form / decoded")
    write_results(out_dir / "results.json", figures, seed=seed, wall_s=time.time() - start, config={
        "protocol": "masker on a stratified half of digits; the other half masked and split 8:2",
        "masker": masker.get_params(), "n_masker": len(public), "n_masked": len(private),
        "classifier_params": {name: model.get_params() for name, model in fitted.items()}})
    return figures
