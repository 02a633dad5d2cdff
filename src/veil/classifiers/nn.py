"""The paper's masked-vector classifier: a 3-layer MLP (ReLU, ReLU, softmax) trained with cross-entropy and
Adam (lr 1e-3, betas 0.9/0.999) on mini-batches of 4, through the shared Ignite trainer. A stratified validation
part of the training data picks the best epoch and stops training early."""
from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from ignite.handlers import EarlyStopping
from safetensors.torch import load_file, save_file

from veil.classifiers.base import MaskedClassifier, register_classifier
from veil.data.splits import stratified_split
from veil.errors import VeilError
from veil.io import atomic_path
from veil.models import build_model
from veil.training import fit_engine, make_trainer, pick_device, set_seed, tensor_loader


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


@register_classifier("nn")
class NNClassifier(MaskedClassifier):
    weight_file = "model.safetensors"

    def __init__(self, hidden: tuple[int, int] | list[int] = (256, 128), epochs: int = 30, batch_size: int = 4,
                 lr: float = 1e-3, validation_fraction: float = 0.1, patience: int = 5, seed: int = 0,
                 device: str | None = None):
        super().__init__(seed)
        self.hidden = tuple(int(h) for h in hidden)
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.validation_fraction, self.patience = validation_fraction, patience
        if len(self.hidden) != 2 or min(self.hidden) < 1 or epochs < 1 or batch_size < 1 or patience < 1:
            raise VeilError("nn needs two positive hidden sizes and positive epochs, batch_size and patience")
        if not 0.0 < validation_fraction < 0.5:
            raise VeilError(f"validation_fraction must be in (0, 0.5), got {validation_fraction}")
        self.device = pick_device(device)
        self.module_ = None
        self.history_: list[dict] = []
        self.best_epoch_ = 0

    def params(self) -> dict:
        return {"hidden": list(self.hidden), "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                "validation_fraction": self.validation_fraction, "patience": self.patience, "seed": self.seed}

    def _build(self, in_dim: int):
        return build_model("mlp", in_dim=in_dim, n_classes=len(self.class_names), hidden=self.hidden).to(self.device)

    def _fit(self, X, y, validation=None, work_dir=None, resume: bool = False, progress: bool = False):
        """`validation=(X_val, y_val)` is used as given; otherwise a stratified part of (X, y) is carved off."""
        X = X.reshape(len(X), -1)
        if validation is None:
            train_idx, val_idx = stratified_split(y, self.validation_fraction, self.seed)
            (X, X_val), (y, y_val) = (X[train_idx], X[val_idx]), (y[train_idx], y[val_idx])
        else:
            X_val, y_val = np.asarray(validation[0], np.float32).reshape(len(validation[0]), -1), np.asarray(validation[1])
        set_seed(self.seed)
        self.module_ = self._build(X.shape[1])
        optimizer = torch.optim.Adam(self.module_.parameters(), lr=self.lr, betas=(0.9, 0.999))
        best = BestWeights(self.module_)
        trainer = make_trainer(self._step(optimizer), self.seed)
        latest = {}
        stopper = EarlyStopping(self.patience, lambda engine: latest["score"], trainer)
        tensors = {name: torch.as_tensor(a).to(self.device) for name, a in
                   {"Xt": X, "yt": y, "Xv": X_val, "yv": y_val}.items()}

        def evaluate(epoch):
            figures = {**self._loss_acc(tensors["Xt"], tensors["yt"], "train"),
                       **self._loss_acc(tensors["Xv"], tensors["yv"], "val")}
            latest["score"] = figures["val_accuracy"] - 1e-6 * figures["val_loss"]
            best.update(latest["score"], epoch)
            return figures

        loader = tensor_loader(X, y, batch_size=self.batch_size, shuffle=True)
        with tempfile.TemporaryDirectory() if work_dir is None else contextlib.nullcontext(work_dir) as out:
            self.history_ = fit_engine(trainer, loader, epochs=self.epochs, out_dir=out,
                                       to_save={"model": self.module_, "optimizer": optimizer, "best": best,
                                                "stopper": stopper},
                                       loss_names=["loss"], resume=resume, progress=progress, evaluate=evaluate,
                                       after_log=[stopper])
        self.module_.load_state_dict(best.weights)
        self.best_epoch_ = best.epoch

    def _step(self, optimizer):
        def step(engine, batch):
            self.module_.train()
            x, y = (t.to(self.device) for t in batch)
            loss = F.cross_entropy(self.module_(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return {"loss": loss.item()}

        return step

    @torch.no_grad()
    def _loss_acc(self, X: torch.Tensor, y: torch.Tensor, prefix: str) -> dict:
        self.module_.eval()
        logits = self.module_(X)
        return {f"{prefix}_loss": float(F.cross_entropy(logits, y)),
                f"{prefix}_accuracy": float((logits.argmax(1) == y).float().mean())}

    @torch.no_grad()
    def predict_proba(self, X) -> np.ndarray:
        X = self.check_input(X)
        if self.module_ is None:
            raise VeilError("the nn classifier is not fitted")
        self.module_.eval()
        out = []
        for start in range(0, len(X), 4096):
            x = torch.from_numpy(X[start:start + 4096].reshape(min(4096, len(X) - start), -1)).to(self.device)
            out.append(torch.softmax(self.module_(x), 1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.class_names)))

    def _extra(self) -> dict:
        return {"best_epoch": self.best_epoch_}

    def _save_weights(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.module_.state_dict().items()}, str(tmp))

    def _load_weights(self, path: Path, extra: dict) -> None:
        self.module_ = self._build(int(np.prod(self.input_shape)))
        try:
            self.module_.load_state_dict(load_file(str(path)))
        except Exception as exc:
            raise VeilError(f"not valid weights for this model ({str(exc).splitlines()[0]})", path) from None
        self.best_epoch_ = int(extra.get("best_epoch", 0))
