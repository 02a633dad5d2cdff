"""What every PyTorch classifier in veil shares: a stratified validation split that picks the best epoch and stops
training early, the Ignite trainer (`fit_engine`: checkpoints, resume, epoch log, progress bar), training in a run
of several processes (`veil.distributed`), bfloat16 autocast (`bf16`), batched prediction, and safetensors weights.
Subclasses supply the network, the optimiser (and schedule) and the training loss."""
from __future__ import annotations

import contextlib
import functools
import logging
import tempfile
import warnings
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from veil.classifiers.base import MaskedClassifier
from veil.data.splits import stratified_split
from veil.errors import VeilError, VeilValueError
from veil.io.write import atomic_path
from veil.devices import pick_device
from veil.weights import load_weights

EVAL_BATCH = 4096


def one_cycle(optimizer, max_lr: float, total_steps: int):
    """A triangular one-cycle learning rate stepped per batch: linear up to `max_lr` over 40% of the steps, then
    linear down to nearly 0."""
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=0.4,
                                               anneal_strategy="linear", cycle_momentum=False)


class TorchClassifier(MaskedClassifier):
    """fit/predict for a torch network trained through the shared Ignite trainer. Subclasses store the common
    hyperparameters (epochs, batch_size, lr, validation_fraction, patience, seed, bf16, device) in their
    `__init__`. `batch_size` is the batch of a whole step: in a run of N processes, each takes batch_size // N."""

    weight_file = "model.safetensors"
    trains_with_engine = True
    unsaved_params = ("device",)
    #: also score the whole training set after every epoch (cheap for vectors, costly for images)
    log_train_figures: ClassVar[bool] = True

    def _check_params(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1 or self._lr() <= 0:
            raise VeilValueError(f"{self.kind} needs positive epochs, batch_size, patience and lr")
        if not 0.0 < self.validation_fraction < 0.5:
            raise VeilValueError(f"validation_fraction must be in (0, 0.5), got {self.validation_fraction}")
        if not isinstance(self.bf16, bool):
            raise VeilValueError(f"bf16 must be true or false, got {self.bf16!r}")

    def _lr(self) -> float:
        """The learning rate to train with (a subclass may resolve a default)."""
        return self.lr

    # ------------------------------------------------------------------ what subclasses supply

    @abstractmethod
    def _build(self) -> torch.nn.Module:
        """The untrained network for `self.input_shape_` and `self.classes_`."""

    @abstractmethod
    def _optimizer(self, steps_per_epoch: int) -> dict:
        """{"optimizer": ..., and optionally "scheduler": ... stepped after every batch}."""

    def _prepare(self, X: np.ndarray) -> np.ndarray:
        """Samples as the network takes them (default: unchanged)."""
        return X

    def _on_built(self, X: np.ndarray) -> None:
        """Fit anything that depends on the training data (input statistics), before training starts."""

    def _training_loss(self, net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss of a batch, through `net`: `module_` as the step calls it (see `veil.training.distribute`)."""
        return F.cross_entropy(net(x), y)

    # ------------------------------------------------------------------ training

    def _fit(self, X, y, validation=None, work_dir=None, resume: bool = False, progress: bool = False):
        """`validation=(X_val, y_val)` (labels as in y) is used as given; otherwise a stratified part of
        (X, y) is carved off. The best validation epoch's weights are kept; training stops after `patience`
        epochs without improvement."""
        # Ignite, here and below, only when training: a process that only predicts (veil serve) starts 1 s sooner
        from veil.training import shard_loader, shuffled_loader

        self._start_device()
        (X, y), (X_val, y_val) = self._split(self._prepare(X), y, validation)
        self._start_module(X)
        self._train(shuffled_loader(X, y, batch_size=self.batch_size, seed=self.seed),
                    shard_loader(X, y, batch_size=EVAL_BATCH), shard_loader(X_val, y_val, batch_size=EVAL_BATCH),
                    work_dir, resume, progress)

    def fit_parts(self, parts, work_dir=None, resume: bool = False, progress: bool = False) -> "TorchClassifier":
        """Train from a labelled set read a part at a time (`parts`: a `veil.shards.ShardedSet`, whose
        `read_part(i)` gives float32 samples and labels of part i): memory holds a part, never the set.

        Each epoch visits the parts in a new order and shuffles within each part (`veil.training.PartBatches`; a
        resumed run sees each epoch's order again);
        a `validation_fraction` of the samples, drawn at random (not stratified), is held out for validation;
        statistics of the inputs (an image model's standardisation) come from the first part's training samples.
        Trains in one process."""
        from veil.training import PartBatches, check_single_process

        check_single_process(f"{self.kind} trained from a shard folder")
        self._check_params()
        self.classes_, self.class_names_ = np.arange(len(parts.class_names)), list(parts.class_names)
        self.fingerprint_, sizes = parts.fingerprint, parts.part_sizes()
        held_out = np.random.default_rng(self.seed).random(sum(sizes)) < self.validation_fraction
        self._start_device()
        first = parts.read_part(0)[0][~held_out[:sizes[0]]]
        self.input_shape_, self.n_features_in_ = tuple(first.shape[1:]), first.shape[1]
        self._start_module(self._prepare(first))
        batches = functools.partial(PartBatches, parts.read_part, sizes, prepare=self._prepare)
        self._train(batches(~held_out, self.batch_size, shuffle=True, seed=self.seed),
                    batches(~held_out, EVAL_BATCH), batches(held_out, EVAL_BATCH), work_dir, resume, progress)
        return self

    def _start_device(self) -> None:
        self.device_ = pick_device(self.device)
        if self.bf16:
            from veil.training import check_bf16

            check_bf16(self.device_)

    def _start_module(self, X: np.ndarray) -> None:
        """The untrained network on its device, seeded, with what depends on the training data (`_on_built(X)`)."""
        from veil.training import set_seed

        set_seed(self.seed)
        self.module_ = self._build().to(self.device_)
        self._on_built(X)

    def _train(self, loader, train_eval, val_eval, work_dir, resume: bool, progress: bool) -> None:
        """The Ignite run over `loader`'s batches, scored on `train_eval` and `val_eval` after every epoch."""
        from veil.training import distribute, fit_engine, make_evaluator, make_trainer, restore_best, run_evaluator

        optim = self._optimizer(len(loader))
        trainer = make_trainer(self._step(distribute(self.module_), **optim), self.seed)
        val_evaluator, stopper, best = self._validation(trainer)
        train_evaluator = make_evaluator(self.module_, self.device_)

        def evaluate(epoch):
            figures = run_evaluator(train_evaluator, train_eval, "train") if self.log_train_figures else {}
            return {**figures, **run_evaluator(val_evaluator, val_eval, "val")}

        with tempfile.TemporaryDirectory() if work_dir is None else contextlib.nullcontext(work_dir) as out:
            self.history_ = fit_engine(trainer, loader, epochs=self.epochs, out_dir=out, evaluate=evaluate,
                                       to_save={"model": self.module_, **optim, "stopper": stopper, "best": best,
                                                "best_weights": best.save_handler},
                                       loss_names=["loss"], resume=resume, progress=progress)
        self.best_epoch_ = restore_best(best, self.module_)

    def _split(self, X, y, validation):
        if validation is not None:
            return (X, y), (self._prepare(self._validated(validation[0])), self._codes(np.asarray(validation[1])))
        try:
            train_idx, val_idx = stratified_split(y, self.validation_fraction, self.seed)
        except (ValueError, VeilError):  # too few samples to hold a part out with every class in it
            warnings.warn(f"{len(y)} samples are too few for a stratified validation part; {self.kind} validates on "
                          "its training data", stacklevel=3)
            return (X, y), (X, y)
        return (X[train_idx], y[train_idx]), (X[val_idx], y[val_idx])

    def _codes(self, labels: np.ndarray) -> np.ndarray:
        """Class indices of labels of `classes_`."""
        codes = np.minimum(np.searchsorted(self.classes_, labels), len(self.classes_) - 1)
        if not np.array_equal(self.classes_[codes], labels):
            raise VeilValueError("validation labels outside the classes of the training labels")
        return codes

    def _validation(self, trainer):
        """The validation evaluator, with early stopping and the best-epoch checkpoint on its score: accuracy,
        ties broken by the lower loss."""
        from ignite.engine import Events
        from ignite.handlers import EarlyStopping

        from veil.training import keep_best, make_evaluator

        evaluator = make_evaluator(self.module_, self.device_)

        def score(engine):
            return engine.state.metrics["accuracy"] - 1e-6 * engine.state.metrics["loss"]

        stopper = EarlyStopping(self.patience, score, trainer)
        stopper.logger.setLevel(logging.WARNING)  # the epoch log already records when training stopped
        best = keep_best(self.module_, trainer, score)
        evaluator.add_event_handler(Events.COMPLETED, best)
        evaluator.add_event_handler(Events.COMPLETED, stopper)
        return evaluator, stopper, best

    def _step(self, net: torch.nn.Module, optimizer, scheduler=None):
        from veil.training import autocast

        def step(engine, batch):
            net.train()
            x, y = (t.to(self.device_) for t in batch)
            with autocast(self.device_, self.bf16):
                loss = self._training_loss(net, x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            return {"loss": loss.item()}

        return step

    @torch.inference_mode()
    def _logits(self, X: torch.Tensor) -> torch.Tensor:
        self.module_.eval()
        return torch.cat([self.module_(X[start:start + EVAL_BATCH].to(self.device_)).cpu()
                          for start in range(0, len(X), EVAL_BATCH)])

    # ------------------------------------------------------------------ prediction and persistence

    def _predict_proba(self, X) -> np.ndarray:
        if len(X) == 0:
            return np.zeros((0, len(self.classes_)))
        return torch.softmax(self._logits(torch.from_numpy(self._prepare(X))), 1).numpy()

    def _extra(self) -> dict:
        return {**super()._extra(), "best_epoch": self.best_epoch_}

    def _save_weights(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.module_.state_dict().items()}, str(tmp))

    def _load_weights(self, path: Path, extra: dict) -> None:
        self.device_ = pick_device(self.device)
        self.module_ = self._build().to(self.device_)
        load_weights(self.module_, path)
        self.best_epoch_ = int(extra.get("best_epoch", 0))
