"""What every PyTorch classifier in veil shares: a stratified validation split that picks the best epoch and stops
training early, the Ignite trainer (`fit_engine`: checkpoints, resume, epoch log, progress bar), batched prediction,
and safetensors weights. Subclasses supply the network, the optimiser (and schedule) and the training loss."""
from __future__ import annotations

import contextlib
import logging
import tempfile
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from ignite.handlers import EarlyStopping
from safetensors.torch import save_file

from veil.classifiers.base import MaskedClassifier
from veil.data.splits import stratified_split
from veil.errors import VeilError
from veil.io import atomic_path
from veil.training import fit_engine, make_trainer, pick_device, set_seed, tensor_loader
from veil.weights import load_weights

EVAL_BATCH = 4096


class BestWeights:
    """Keeps the weights of the best validation epoch; checkpointed, so a resumed run keeps the same best."""

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.score = -float("inf")
        self.epoch = 0
        self.weights = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def update(self, score: float, epoch: int) -> None:
        if score > self.score:
            self.score, self.epoch = score, epoch
            self.weights = {k: v.detach().clone() for k, v in self.module.state_dict().items()}

    def state_dict(self):
        return {"score": torch.tensor(self.score), "epoch": torch.tensor(self.epoch), "weights": self.weights}

    def load_state_dict(self, state):
        self.score, self.epoch = float(state["score"]), int(state["epoch"])
        self.weights = dict(state["weights"])


class TorchClassifier(MaskedClassifier):
    """fit/predict for a torch network trained through the shared Ignite trainer."""

    weight_file = "model.safetensors"
    #: also score the whole training set after every epoch (cheap for vectors, costly for images)
    log_train_figures: ClassVar[bool] = True
    #: forwarded by `veil train`: the checkpoint folder, resume, progress bar
    trains_with_engine: ClassVar[bool] = True

    def __init__(self, epochs: int, batch_size: int, lr: float, validation_fraction: float, patience: int,
                 seed: int = 0, device: str | None = None):
        super().__init__(seed)
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.validation_fraction, self.patience = validation_fraction, patience
        if epochs < 1 or batch_size < 1 or patience < 1 or lr <= 0:
            raise VeilError(f"{self.kind} needs positive epochs, batch_size, patience and lr")
        if not 0.0 < validation_fraction < 0.5:
            raise VeilError(f"validation_fraction must be in (0, 0.5), got {validation_fraction}")
        self.device = pick_device(device)
        self.module_ = None
        self.history_: list[dict] = []
        self.best_epoch_ = 0

    def params(self) -> dict:
        return {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                "validation_fraction": self.validation_fraction, "patience": self.patience, "seed": self.seed}

    # ------------------------------------------------------------------ what subclasses supply

    @abstractmethod
    def _build(self) -> torch.nn.Module:
        """The untrained network for `self.input_shape` and `self.class_names`."""

    @abstractmethod
    def _optimizer(self, steps_per_epoch: int) -> dict:
        """{"optimizer": ..., and optionally "scheduler": ... stepped after every batch}."""

    def _prepare(self, X: np.ndarray) -> np.ndarray:
        """Samples as the network takes them (default: unchanged)."""
        return X

    def _on_built(self, X: np.ndarray) -> None:
        """Fit anything that depends on the training data (input statistics), before training starts."""

    def _training_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.module_(x), y)

    # ------------------------------------------------------------------ training

    def _fit(self, X, y, validation=None, work_dir=None, resume: bool = False, progress: bool = False):
        """`validation=(X_val, y_val)` is used as given; otherwise a stratified part of (X, y) is carved off."""
        X = self._prepare(X)
        if validation is None:
            train_idx, val_idx = stratified_split(y, self.validation_fraction, self.seed)
            (X, X_val), (y, y_val) = (X[train_idx], X[val_idx]), (y[train_idx], y[val_idx])
        else:
            X_val, y_val = self._prepare(np.asarray(validation[0], np.float32)), np.asarray(validation[1])
        set_seed(self.seed)
        self.module_ = self._build().to(self.device)
        self._on_built(X)
        loader = tensor_loader(X, y, batch_size=self.batch_size, shuffle=True)
        optim = self._optimizer(len(loader))
        best = BestWeights(self.module_)
        trainer = make_trainer(self._step(**optim), self.seed)
        latest = {}
        stopper = EarlyStopping(self.patience, lambda engine: latest["score"], trainer)
        stopper.logger.setLevel(logging.WARNING)  # the epoch log already records when training stopped
        tensors = {name: torch.as_tensor(a) for name, a in {"Xt": X, "yt": y, "Xv": X_val, "yv": y_val}.items()}

        def evaluate(epoch):
            figures = self._loss_acc(tensors["Xt"], tensors["yt"], "train") if self.log_train_figures else {}
            figures.update(self._loss_acc(tensors["Xv"], tensors["yv"], "val"))
            latest["score"] = figures["val_accuracy"] - 1e-6 * figures["val_loss"]
            best.update(latest["score"], epoch)
            return figures

        with tempfile.TemporaryDirectory() if work_dir is None else contextlib.nullcontext(work_dir) as out:
            self.history_ = fit_engine(trainer, loader, epochs=self.epochs, out_dir=out,
                                       to_save={"model": self.module_, **optim, "best": best, "stopper": stopper},
                                       loss_names=["loss"], resume=resume, progress=progress, evaluate=evaluate,
                                       after_log=[stopper])
        self.module_.load_state_dict(best.weights)
        self.best_epoch_ = best.epoch

    def _step(self, optimizer, scheduler=None):
        def step(engine, batch):
            self.module_.train()
            x, y = (t.to(self.device) for t in batch)
            loss = self._training_loss(x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            return {"loss": loss.item()}

        return step

    @torch.no_grad()
    def _logits(self, X: torch.Tensor) -> torch.Tensor:
        self.module_.eval()
        return torch.cat([self.module_(X[start:start + EVAL_BATCH].to(self.device)).cpu()
                          for start in range(0, len(X), EVAL_BATCH)])

    def _loss_acc(self, X: torch.Tensor, y: torch.Tensor, prefix: str) -> dict:
        logits = self._logits(X)
        return {f"{prefix}_loss": float(F.cross_entropy(logits, y)),
                f"{prefix}_accuracy": float((logits.argmax(1) == y).float().mean())}

    # ------------------------------------------------------------------ prediction and persistence

    def predict_proba(self, X) -> np.ndarray:
        X = self.check_input(X)
        if self.module_ is None:
            raise VeilError(f"the {self.kind} classifier is not fitted")
        if len(X) == 0:
            return np.zeros((0, len(self.class_names)))
        return torch.softmax(self._logits(torch.from_numpy(self._prepare(X))), 1).numpy()

    def _extra(self) -> dict:
        return {"best_epoch": self.best_epoch_}

    def _save_weights(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.module_.state_dict().items()}, str(tmp))

    def _load_weights(self, path: Path, extra: dict) -> None:
        self.module_ = self._build().to(self.device)
        load_weights(self.module_, path)
        self.best_epoch_ = int(extra.get("best_epoch", 0))
