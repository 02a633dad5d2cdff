"""The library functions behind the masking and classifier commands: mask, train, evaluate, unmask.

Each `veil` command reaches them through its one door in `veil.commands`, which loads the images and reads the
secret; the CLI only parses arguments and prints.
"""
from __future__ import annotations

import functools
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from veil.data import ImageSet, limit_indices, to_uint8_images
from veil.distributed import external_launch, launch, spawns
from veil.errors import VeilError
from veil.io.output import OutputClaim, claim_output, refuse_overlap
from veil.masked import UINT8_STORAGE, MaskedSet
from veil.shards import ShardedSet, load_masked, masked_chunks, open_masked
from veil.maskers.masking import masking_function
from veil.results import write_results

if TYPE_CHECKING:
    from veil.maskers import AAEMasker

# The classifiers (torch, skops), the maskers (scikit-learn estimators; the AAE, torch) and the metrics (scipy,
# scikit-image) are imported where they are used, so that masking with a keyed scheme or filter (veil.schemes, NumPy
# only), and every error before the work starts, stays fast.


def train_masker(data: ImageSet, out_dir, epochs: int | None = None, batch_size: int | None = None,
                 seed: int | None = None,
                 resume: bool = False, progress: bool = True, device: str | None = None, force: bool = False,
                 preset: str | None = None, nproc: int | None = None, bf16: bool = False, method: str = "aae",
                 **params) -> AAEMasker | None:
    """Train a masker of `method` (a trained one: the AAE, labels ignored, or the obfuscator, trained with them)
    on `data`; save it and `training.json` to `out_dir`. The parameters are the masker's defaults, or the named
    `preset`'s (the AAE's), overridden by `epochs`, `batch_size` and `params` when given. Without `seed`, the
    training draws one from the operating system's randomness and keeps it, secret, in `out_dir`
    (`veil.training.training_seed` says why a guessable seed would be a leak).

    A new run trains in `out_dir` itself, so that a killed run can be resumed (`resume`) from its checkpoints; an
    existing folder is refused unless `resume` or `force`, and `force` trains beside it and merges it in at the end
    (replacing the old masker's files, keeping files it did not write; see `veil.io.output.claim_output`).

    `nproc` > 1 trains in that many processes spawned here, and a torchrun launch in the processes it started (see
    `veil.distributed`): `batch_size` is a step's batch over all of them. Returns the masker (as saved, after a
    spawned run), and None on every process of a torchrun launch but rank 0.
    """
    from veil.maskers.files import refuse_unfinished

    cls = trainable_masker(method)
    start = time.time()
    # an interrupted run is resumed, not refused with only --force to offer
    check = None if resume or force else functools.partial(refuse_unfinished, out_dir)
    given = {name: value for name, value in {"epochs": epochs, "batch_size": batch_size}.items() if value is not None}
    settings = {**masker_preset(cls, preset), **given, **params, "seed": seed, "device": device,
                **({"bf16": bf16} if bf16 else {})}
    try:
        masker = cls(**settings)
    except TypeError as exc:
        raise VeilError(f"the {method} masker does not take these settings ({exc})") from None
    if cls.fits_on_labels and data.labels is None:
        raise VeilError(f"the {method} masker is trained with the owner's labels; these images have none",
                        data.source)
    output = OutputClaim(out_dir, force, folder=True, writer="train-masker", resume=resume, in_place=True)
    fitted = launch(_fit_masker, masker, data, resume, progress, start, output=output, check=check, nproc=nproc,
                    device=device)
    return cls.load(out_dir) if spawns(nproc) else fitted


def trainable_masker(method: str) -> type:
    """The masker class of `method`, which must be one trained on images (not a keyed scheme or filter)."""
    from veil.maskers.base import masker_class

    cls = masker_class(method)
    if not cls.fits_on_data or cls.keyed:
        raise VeilError(f"{method} is not a trained masker (train-masker trains a masker fitted on images; "
                        f"{method} is built from its key or options)")
    return cls


def _fit_masker(work: Path | None, masker: AAEMasker, data: ImageSet, resume: bool, progress: bool,
                start: float) -> AAEMasker | None:
    """`train_masker` in one process of the run: every process trains, rank 0 (given `work`) saves."""
    masker.fit(data, work_dir=work, resume=resume, progress=progress)
    if work is None:
        return None
    masker.save(work)
    _write_training_report(masker, work / "training.json", data, masker.seed_, time.time() - start)
    return masker


def _write_training_report(masker, path: Path, data: ImageSet, seed: int, wall_s: float) -> None:
    report = masker.report_
    write_results(path, {k: report[k] for k in masker.reported}, seed=seed, wall_s=wall_s,
                  config={"masker": masker.get_params(), "training_data": masker.training_data_,
                          "n_images": len(data)},
                  details={"epochs": masker.history_})


def aae_preset(name: str | None) -> dict:
    """The parameters of an AAE masker recipe (`AAEMasker.presets`); {} for None (the defaults)."""
    from veil.maskers import AAEMasker

    return masker_preset(AAEMasker, name)


def masker_preset(cls: type, name: str | None) -> dict:
    """The parameters of a trained masker's named recipe (its class's `presets`); {} for None (the defaults)."""
    presets = getattr(cls, "presets", {})
    if name is not None and name not in presets:
        raise VeilError(f"the {cls.method} masker has no preset {name!r} (presets: {', '.join(presets) or 'none'})")
    return dict(presets[name]) if name else {}


def export_encoder(masker_dir, out_dir, force: bool = False) -> Path:
    """`veil export-encoder`: a copy of the masker without its decoder, in a new folder (never the masker's own)."""
    from veil.maskers import load_masker

    masker = load_masker(masker_dir, public_only=True)
    with claim_output(out_dir, force, folder=True, writer="export-encoder", reads=[masker_dir]) as tmp:
        masker.save(tmp, include_decoder=False)
    return Path(out_dir)


def save_results(path, figures: dict, force: bool = False, reads=(), **config) -> None:
    """A results JSON for a command's `--json` (`config`: what produced the figures), written to a new file (`force`
    replaces an existing one)."""
    with claim_output(path, force, reads=reads) as tmp:
        write_results(tmp, figures, seed=None, config=config)


def mask_images(masker, data: ImageSet, nproc: int | None = None) -> MaskedSet:
    """Apply a masker (or a scheme, `veil.schemes`) to a dataset, in `nproc` processes (or the ranks of a torchrun
    launch) with the same result (`veil.sharding`). The result carries labels, class names, the masker's
    fingerprint, the images' shape (3, H, W) and what the masker records about itself (`masked_meta`: a
    configuration, never a secret); exact 8-bit schemes are stored as uint8, and given uint8 images
    (`load(..., pixels=True)`) they never leave it."""
    from veil import sharding

    masked = MaskedSet(sharding.transform(masker, data.images, nproc), data.labels, list(data.class_names),
                       masker.method, masker.fingerprint,
                       {"source": data.source, "n": len(data), "image_shape": list(data.images.shape[1:])})
    masked.meta.update(masker.masked_meta(masked.data))
    if masker.exact_uint8:
        masked.meta["storage"] = UINT8_STORAGE
    return masked


def mask(data: ImageSet, out_file, method: str = "aae", masker_dir=None, secret: bytes | None = None,
         force: bool = False, nproc: int | None = None, **options) -> MaskedSet | None:
    """`veil mask`, for every method: mask `data` and save the set to a new file `out_file`.

    A method that needs training (the AAE) masks with the encoder in `masker_dir` (its decoder is never read);
    the others are built from `options` (`block`, `kernel`, `seed`: those the method declares; None means the
    default) and, when keyed, the `secret`. What a method does not take is refused by name.

    `nproc` > 1 masks in that many processes forked here, and a torchrun launch in its ranks (rank 0 writes and
    returns the set, the others None); the file is the same bytes as one process writes."""
    masker = masking_function(method, masker_dir, secret, **options)
    output = OutputClaim(out_file, force, reads=[masker_dir])
    if external_launch():  # every rank masks its shard, rank 0 writes them all
        return launch(_mask_into, masker, data, output=output, nproc=nproc)  # (which refuses --nproc)
    with output.open() as tmp:  # imports no torch
        return _mask_into(tmp, masker, data, nproc)


def mask_stream(stream, out_dir, method: str = "aae", masker_dir=None, secret: bytes | None = None,
                force: bool = False, resume: bool = False, nproc: int | None = None, lossless: bool = False,
                jpeg_quality: int | None = None, progress: bool = True, **options) -> dict:
    """`veil mask --out DIR`: mask `stream` (`veil.data.stream.open_stream`) a chunk at a time into a new shard
    folder (`veil.shards`; EtC as JPEG at `jpeg_quality`, or PNG with `lossless`), in `nproc` processes forked
    here; an unfinished run there is resumed (see `veil.streaming`). Returns the folder's manifest."""
    from veil.shards import JPEG_QUALITY, Storage
    from veil.streaming import mask_to_shards

    if external_launch():
        raise VeilError("a shard folder is masked on one machine (use --nproc N, or --out FILE.npz under torchrun)")
    masker = masking_function(method, masker_dir, secret, **options)
    storage = Storage.for_masker(masker, lossless, JPEG_QUALITY if jpeg_quality is None else jpeg_quality)
    return mask_to_shards(stream, out_dir, masker, force=force, resume=resume, nproc=nproc, storage=storage,
                          progress=progress, reads=[masker_dir])


def _mask_into(tmp: Path | None, masker, data: ImageSet, nproc: int | None = None) -> MaskedSet | None:
    """Mask `data` and save the set to `tmp`; None on the ranks but 0 of a torchrun launch (no `tmp`)."""
    masked = mask_images(masker, data, nproc)
    if tmp is None:
        return None
    masked.save(tmp)
    return masked


def unmask(masked_file, out_dir, masker_dir=None, secret: bytes | None = None, data: ImageSet | None = None,
           limit: int | None = None, force: bool = False) -> dict:
    """`veil unmask`, for every invertible method: reconstruct the images of a masked file that `limit` keeps
    (`MaskedSet.limited`; all for None) to PNGs in a new folder, with the private part of a trained masker
    (`masker_dir`) or the key of a keyed one (`secret`); with `data` (the source images), also `mse.json`."""
    if (masker_dir is None) == (secret is None):
        raise VeilError("give --masker DIR (a trained masker with its private part) or the key (--key-file / "
                        "--key-env) of a keyed scheme, not both")
    masked = load_masked(masked_file)
    if masker_dir is not None:
        masker, provenance = _trained_masker_for(masked, masked_file, masker_dir), {"masker": str(masker_dir)}
    else:
        masker = _keyed_masker_for(masked, masked_file, secret)
        provenance = {"key_fingerprint": masker.fingerprint}
    provenance.update(masked=str(masked_file), method=masked.method, limit=limit,
                      source=None if data is None else data.source)
    return write_reconstructions(masker, masked, out_dir, data, limit, provenance, force, reads=[masker_dir])


def _trained_masker_for(masked: MaskedSet, masked_file, masker_dir):
    from veil.maskers import load_masker

    masker = load_masker(masker_dir)
    if masked.method != masker.method:
        raise VeilError(f"masked with method {masked.method!r} but the masker is {masker.method!r}", masked_file)
    if masked.fingerprint != masker.fingerprint:
        print(f"veil: warning: {masked_file} was masked by another encoder/key than {masker_dir}; "
              "the reconstructions will not resemble the images", file=sys.stderr)
    return masker


def _keyed_masker_for(masked: MaskedSet, masked_file, secret: bytes):
    """The masker a keyed set was masked with, rebuilt from its recorded configuration; another key is refused."""
    from veil.maskers import masker_class
    from veil.maskers.base import build_from_config

    cls = masker_class(masked.method)
    if not cls.keyed:
        raise VeilError(f"masked with {masked.method!r}, which has no key to unmask with"
                        + (" (use --masker with its masker directory)" if cls.fits_on_data else ""), masked_file)
    masker = build_from_config(cls, masked.meta.get("config", {}), masked_file, secret)
    if masker.fingerprint != masked.fingerprint:
        raise VeilError("wrong key: its fingerprint differs from the one the set was masked with", masked_file)
    return masker


def write_reconstructions(masker, masked: MaskedSet, out_dir, data: ImageSet | None = None, limit: int | None = None,
                          provenance: dict | None = None, force: bool = False, reads=()) -> dict:
    """Invert the `limit` masked samples that `MaskedSet.limited` keeps to PNGs in a new folder `out_dir`, named
    in order; with `data`, also `mse.json` against them (`provenance` names the inputs in it)."""
    if limit is not None and limit < 1:
        raise VeilError(f"the limit must be a positive number of images, got {limit}")
    with claim_output(out_dir, force, folder=True, writer="unmask", reads=reads) as tmp:
        return _reconstruct_into(tmp, masker, masked, data, limit, provenance)


def _reconstruct_into(tmp: Path, masker, masked: MaskedSet, data, limit, provenance) -> dict:
    from veil.metrics import per_image_mse, ssim_psnr

    kept = limit_indices(len(masked) if limit is None else limit, len(masked), masked.labels)
    recon = masker.inverse_transform(masked.data[kept])
    figures = {}
    if data is not None:
        originals = _sources_of(masked, data).images[kept]
        if originals.shape[1:] != recon.shape[1:]:
            raise VeilError(f"the source images are {_shape_text(originals)}, the reconstructions "
                            f"{_shape_text(recon)}; give --size to match", data.source)
        figures = {"reconstruction_mse": float(per_image_mse(originals, recon).mean()), **ssim_psnr(originals, recon),
                   "n": len(kept), "matched_fingerprint": float(masked.fingerprint == masker.fingerprint)}
    for i, pixels in enumerate(to_uint8_images(recon)):
        Image.fromarray(pixels).save(tmp / f"{i:06d}.png")
    if figures:
        write_results(tmp / "mse.json", figures, seed=None, config=provenance or {})
    return figures


def _sources_of(masked: MaskedSet, data: ImageSet) -> ImageSet:
    """The source images of `masked`, position by position: `data` itself, or, when it holds more, the images that
    `veil mask --limit` kept of it (the same rule on the same labels picks the same images)."""
    if len(data) < len(masked):
        raise VeilError(f"{len(data)} source images for {len(masked)} masked ones", data.source)
    return data if len(data) == len(masked) else data.subset(limit_indices(len(masked), len(data), data.labels))


def _shape_text(images) -> str:
    return "x".join(map(str, images.shape[-2:]))


def train_classifier(masked: MaskedSet | ShardedSet, model: str, out_dir, seed: int = 0, resume: bool = False,
                     progress: bool = True, force: bool = False, epochs: int | None = None, limit: int | None = None,
                     preset: str | None = None, nproc: int | None = None, bf16: bool = False, **params):
    """`veil train`, for every model: fit a classifier on a masked set (the `limit` samples `MaskedSet.limited`
    keeps) and save it; it remembers the masker fingerprint. `masked` may be a shard folder
    (`veil.shards.ShardedSet`): the models trained in epochs then read it a shard at a time (`fit_parts`), the
    others load it whole. `epochs`, `nproc` and `bf16` are for the models trained in epochs (`trains_with_engine`);
    `preset` names one of the model's recipes (`params` and `epochs` override its values).

    An existing `out_dir` is refused before training, unless `resume` (continue its checkpoints) or `force` (train
    beside it, then put it in place: its files replace the old model's, and what an earlier `veil train` wrote there
    and this one does not write, such as an nn's checkpoints under an rf, is removed; see `veil.io.output`).

    `nproc` > 1 trains in that many processes spawned here, and a torchrun launch in the processes it started (see
    `veil.distributed`): the model's batch size is a step's batch over all of them. Returns the classifier (as
    saved, after a spawned run), and None on every process of a torchrun launch but rank 0."""
    from veil.classifiers import classifier_class, load_classifier, preset_params

    cls = classifier_class(model)
    engine = cls.trains_with_engine
    if isinstance(masked, ShardedSet) and (limit is not None or not engine):
        masked = masked.load(limit)  # a quick run, or a model that fits on arrays in memory (vectors)
    elif not isinstance(masked, ShardedSet):
        masked = masked.limited(limit)
    elif spawns(nproc) or external_launch():
        raise VeilError(f"{model} trains from a shard folder in one process (drop --nproc, or run it without "
                        "torchrun)")
    params = {**(preset_params(model, preset) if preset else {}), **params}
    masked.require_labels()
    for name, value in (("epochs", epochs), ("bf16", bf16)):
        if value:
            if not engine:
                raise VeilError(f"--{name} is for the models trained in epochs; {model} is not (drop --{name})")
            params[name] = value
    if not engine and (spawns(nproc) or external_launch()):
        raise VeilError(f"{model} trains in one process (drop --nproc, or run it without torchrun)")
    try:
        estimator = cls(seed=seed, **params)
    except TypeError as exc:
        raise VeilError(f"bad --params for {model}: {exc}") from None
    output = OutputClaim(out_dir, force, folder=True, writer="train", resume=resume and engine, in_place=engine)
    fitted = launch(_fit_classifier, estimator, masked, resume, progress, output=output, nproc=nproc,
                    device=getattr(estimator, "device", None))
    return load_classifier(out_dir) if spawns(nproc) else fitted


def _fit_classifier(work: Path | None, estimator, masked: MaskedSet, resume: bool, progress: bool):
    """`train_classifier` in one process of the run: every process trains, rank 0 (given `work`) saves."""
    kwargs = {"work_dir": work, "resume": resume, "progress": progress} if estimator.trains_with_engine else {}
    if isinstance(masked, ShardedSet):  # read a shard at a time
        estimator.fit_parts(masked, **kwargs)
    else:
        estimator.fit(masked.data, masked.labels, class_names=masked.class_names, fingerprint=masked.fingerprint,
                      **kwargs)
    if work is None:
        return None
    estimator.save(work)
    return estimator


def evaluate(model_dir, masked_file, json_file=None, force: bool = False) -> dict:
    """`veil evaluate`, for every model: accuracy, macro precision, macro recall and n of a saved model on a
    masked file; with `json_file`, also written there (a new file; `force` replaces one)."""
    from veil.classifiers import load_classifier

    if json_file:
        refuse_overlap(json_file, [model_dir])
    opened = open_masked(masked_file)
    estimator = load_classifier(model_dir)
    figures = score_chunks(estimator, masked_chunks(opened), where=masked_file)
    if json_file:
        save_results(json_file, figures, force=force, reads=[model_dir], model=str(model_dir),
                     params=estimator.get_params(), masked=str(masked_file), masked_with=opened.method)
    return figures


def score(estimator, masked: MaskedSet, where=None) -> dict:
    """A fitted classifier's figures on a masked set; another masker's data or other classes are refused."""
    return score_chunks(estimator, [masked], where)


def score_chunks(estimator, chunks, where=None) -> dict:
    """`score` over a set given a part at a time (the shards of a folder): each part is checked and predicted
    alone, so memory holds one part and the labels and predictions of all."""
    import numpy as np

    from veil.metrics import classification_figures

    labels, predicted = [], []
    for masked in chunks:
        labels.append(masked.require_labels(where))
        if masked.class_names != estimator.class_names_:
            raise VeilError(f"classes {masked.class_names} differ from the model's {estimator.class_names_}", where)
        predicted.append(estimator.predict(estimator.check_input(masked.data, masked.fingerprint, where)))
    return classification_figures(np.concatenate(labels), np.concatenate(predicted))


def holdout_scores(vectors, labels, models=("nn", "rf", "adaboost"), test_size: float = 0.2, seed: int = 0,
                   params: dict | None = None, class_names=None, progress: bool = False) -> tuple[dict, dict]:
    """Stratified 8:2 split; each model trains on the 8 and is scored on the 2 (`split_scores`)."""
    from veil.data import stratified_split

    train, test = stratified_split(labels, test_size, seed)
    return split_scores((vectors[train], labels[train]), (vectors[test], labels[test]), models, seed, params,
                        class_names, progress)


def split_scores(train, test, models=("nn", "rf", "adaboost"), seed: int = 0, params: dict | None = None,
                 class_names=None, progress: bool = False) -> tuple[dict, dict]:
    """Each model trains on `train` and is scored on `test` (both (vectors, labels)): accuracy, macro precision and
    recall. `progress` shows the epochs of the models trained in epochs.

    Returns the figures (`{model}_{metric}`, without the sample count) and the fitted estimators by name.
    """
    from veil.classifiers import classifier_class

    figures, fitted = {}, {}
    for name in models:
        cls = classifier_class(name)
        estimator = cls(seed=seed, **(params or {}).get(name, {}))
        shown = {"progress": progress} if cls.trains_with_engine else {}
        fitted[name] = estimator.fit(*train, class_names=class_names, **shown)
        for metric, value in estimator.evaluate(*test).items():
            if metric != "n":
                figures[f"{name}_{metric}"] = value
    return figures, fitted
