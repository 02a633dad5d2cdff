"""AAE masking (Lis et al. 2021): the encoder of an adversarial autoencoder gives the masked form
(384 Gaussian + 20 categorical numbers); the decoder trained with it reconstructs images from it.

What it protects, as measured by `veil report privacy` (results/privacy/report.md; figure names in brackets):
- The whole autoencoder instance is the secret, as the paper keeps it: the encoder as much as the decoder. Anyone
  holding the encoder masks public images and trains a decoder on the pairs (threat b, `aae_itn_b_ssim`); ours
  reconstructs the victim's images about as well as the owner's own decoder (`aae_owner_ssim`). Known (image,
  vector) pairs of the victim do the same (threat c, `aae_itn_c1000_ssim`, `aae_itn_c10000_ssim`).
- Ciphertext-only (threat a, masked vectors and public images only), the decoder of another training run
  (`aae_mismatch_a_ssim`, the paper's test), unpaired latent alignment (`aae_latent-align_a_ssim`) and an unpaired
  GAN (`aae_gan_a_ssim`) recovered little at our budgets; the latent alignment's reconstructions were still
  recognised above chance (`aae_latent-align_a_semantic`). This is an empirical property, not a guarantee.

Training is stabilised beyond the paper's plain recipe (which stalls near MSE 0.03 on CIFAR-10):
- the regularisation phase (discriminators and the encoder as generator) uses its own, smaller learning rate
  (`reg_lr`, default 1e-4) while reconstruction keeps the paper's Adam lr 1e-3;
- the generator loss is weighted (`adv_weight`) and real labels are smoothed (`label_smoothing`);
- discriminators use dropout, and train on the encoder outputs of the reconstruction pass (detached);
- the Gaussian head ends in a BatchNorm without affine terms (`standardize_gauss`), fixing the first two moments.
"""
from __future__ import annotations

import contextlib
import hashlib
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from veil.errors import VeilError
from veil.io import atomic_path, private_dir
from veil.maskers.base import (Masker, as_images, build_from_config, read_manifest, register_masker,
                               write_manifest)
from veil.metrics import latent_conformity, reconstruction_mse
from veil.models.aae import Decoder, Discriminator, Encoder
from veil.training import fit_engine, make_trainer, pick_device, set_seed, tensor_loader
from veil.weights import load_weights

ENCODER_FILE = "encoder.safetensors"
DECODER_FILE = "decoder.safetensors"


@dataclass
class AAEConfig:
    gauss_dim: int = 384
    cat_dim: int = 20
    channels: int = 32
    standardize_gauss: bool = True
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    reg_lr: float = 1e-4
    adv_weight: float = 1.0
    label_smoothing: float = 0.1
    holdout: float = 0.05
    seed: int = 0


@register_masker("aae")
class AAEMasker(Masker):
    """Adversarial-autoencoder masker. Parameters as in `AAEConfig`; `device` picks CPU/CUDA (CUDA when present)."""

    secret_files = (DECODER_FILE,)
    needs_training = True

    def __init__(self, device: str | None = None, **params):
        unknown = set(params) - set(AAEConfig.__dataclass_fields__)
        if unknown:
            raise VeilError(f"unknown AAE parameter(s): {', '.join(sorted(unknown))}")
        self.config = AAEConfig(**params)
        self._validate()
        self.device = pick_device(device)
        self.encoder: Encoder | None = None
        self.decoder: Decoder | None = None
        self.history_: list[dict] = []
        self.report_: dict = {}
        self.training_data_ = ""

    def _validate(self) -> None:
        """Types and ranges, before any network is built: a configuration may come from a file, and absurd sizes
        would first exhaust memory."""
        c = self.config
        for name, limit in (("gauss_dim", 1 << 14), ("cat_dim", 1 << 12), ("channels", 1 << 10), ("epochs", None),
                            ("batch_size", None)):
            value = getattr(c, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (limit and value > limit):
                raise VeilError(f"{name} must be an integer from 1{f' to {limit}' if limit else ' up'}, got {value!r}")
        for name in ("lr", "beta1", "beta2", "reg_lr", "adv_weight", "label_smoothing", "holdout"):
            if isinstance(getattr(c, name), bool) or not isinstance(getattr(c, name), (int, float)):
                raise VeilError(f"{name} must be a number, got {getattr(c, name)!r}")
        if not isinstance(c.seed, int) or not isinstance(c.standardize_gauss, bool):
            raise VeilError("seed must be an integer and standardize_gauss true or false")
        if not 0.0 < c.holdout < 0.5:
            raise VeilError(f"holdout must be in (0, 0.5), got {c.holdout}")

    @property
    def latent_dim(self) -> int:
        return self.config.gauss_dim + self.config.cat_dim

    def _nets(self):
        c = self.config
        return (Encoder(c.channels, c.gauss_dim, c.cat_dim, c.standardize_gauss).to(self.device),
                Decoder(c.channels, c.gauss_dim, c.cat_dim).to(self.device))

    # ------------------------------------------------------------------ training

    def fit(self, images, work_dir=None, resume: bool = False, progress: bool = True) -> "AAEMasker":
        """Train on images (labels, if any, are ignored). Checkpoints and the epoch log go to `work_dir`."""
        c = self.config
        pixels = as_images(images)
        self.training_data_ = getattr(images, "source", "") or f"array of {len(pixels)} images"
        if len(pixels) < 20:
            raise VeilError(f"need at least 20 images to train a masker, got {len(pixels)}")
        split = np.random.default_rng(c.seed).permutation(len(pixels))
        n_hold = max(1, int(round(c.holdout * len(pixels))))
        train, held = pixels[np.sort(split[n_hold:])], pixels[np.sort(split[:n_hold])]
        set_seed(c.seed)
        self.encoder, self.decoder = self._nets()
        d_gauss = Discriminator(c.gauss_dim).to(self.device)
        d_cat = Discriminator(c.cat_dim, hidden=64).to(self.device)
        betas = (c.beta1, c.beta2)
        opt_ae = torch.optim.Adam([*self.encoder.parameters(), *self.decoder.parameters()], lr=c.lr, betas=betas)
        opt_disc = torch.optim.Adam([*d_gauss.parameters(), *d_cat.parameters()], lr=c.reg_lr, betas=betas)
        opt_gen = torch.optim.Adam(self.encoder.parameters(), lr=c.reg_lr, betas=betas)
        step = self._step(d_gauss, d_cat, opt_ae, opt_disc, opt_gen)
        trainer = make_trainer(step, c.seed)
        to_save = {"encoder": self.encoder, "decoder": self.decoder, "d_gauss": d_gauss, "d_cat": d_cat,
                   "opt_ae": opt_ae, "opt_disc": opt_disc, "opt_gen": opt_gen}

        def evaluate(epoch):
            return {"holdout_mse": reconstruction_mse(held, self.inverse_transform(self.transform(held)))}

        loader = tensor_loader(train, batch_size=c.batch_size, shuffle=True, drop_last=len(train) > c.batch_size)
        with tempfile.TemporaryDirectory() if work_dir is None else contextlib.nullcontext(work_dir) as out:
            self.history_ = fit_engine(trainer, loader, epochs=c.epochs, out_dir=out, to_save=to_save,
                                       loss_names=["recon", "disc", "gen"], resume=resume, progress=progress,
                                       evaluate=evaluate)
        self.report_ = self.evaluate(held)
        self.report_["epoch_s"] = float(np.mean([row["epoch_s"] for row in self.history_])) if self.history_ else 0.0
        return self

    def _step(self, d_gauss, d_cat, opt_ae, opt_disc, opt_gen):
        c = self.config
        real_label = 1.0 - c.label_smoothing

        def step(engine, batch):
            x = batch[0].to(self.device, non_blocking=True)
            self.encoder.train(), self.decoder.train(), d_gauss.train(), d_cat.train()
            # reconstruction phase: encoder + decoder minimise MSE
            gauss, cat = self.encoder(x)
            recon = F.mse_loss(self.decoder(torch.cat([gauss, cat], 1)), x)
            opt_ae.zero_grad(set_to_none=True)
            recon.backward()
            opt_ae.step()
            # regularisation phase 1: discriminators tell prior samples (real) from encoder outputs (fake)
            real_gauss = torch.randn_like(gauss)
            real_cat = F.one_hot(torch.randint(c.cat_dim, (len(x),), device=x.device), c.cat_dim).float()
            disc = (_bce(d_gauss(real_gauss), real_label) + _bce(d_gauss(gauss.detach()), 0.0)
                    + _bce(d_cat(real_cat), real_label) + _bce(d_cat(cat.detach()), 0.0))
            opt_disc.zero_grad(set_to_none=True)
            disc.backward()
            opt_disc.step()
            # regularisation phase 2: the encoder, as generator, learns to fool both discriminators
            gauss, cat = self.encoder(x)
            gen = _bce(d_gauss(gauss), 1.0) + _bce(d_cat(cat), 1.0)
            opt_gen.zero_grad(set_to_none=True)
            (c.adv_weight * gen).backward()
            opt_gen.step()
            return {"recon": recon.item(), "disc": disc.item(), "gen": gen.item()}

        return step

    # ------------------------------------------------------------------ masking and unmasking

    def _require(self, part: str):
        net = getattr(self, part)
        if net is None:
            raise VeilError(f"this masker has no {part}" + (" (the decoder is the private key and was not loaded)"
                                                            if part == "decoder" else " (not fitted)"))
        return net

    @torch.no_grad()
    def transform(self, images, batch_size: int = 1024) -> np.ndarray:
        """Images -> masked vectors (N, gauss_dim + cat_dim), computed in bounded-memory batches."""
        encoder = self._require("encoder").eval()
        pixels = as_images(images)
        out = np.empty((len(pixels), self.latent_dim), dtype=np.float32)
        for start in range(0, len(pixels), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(pixels[start:start + batch_size])).to(self.device)
            gauss, cat = encoder(x)
            out[start:start + len(x)] = torch.cat([gauss, cat], 1).cpu().numpy()
        return out

    @torch.no_grad()
    def inverse_transform(self, vectors: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Masked vectors -> images (N, 3, 32, 32); needs the decoder (the private key)."""
        decoder = self._require("decoder").eval()
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.latent_dim:
            raise VeilError(f"masked vectors must have shape (N, {self.latent_dim}), got {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise VeilError("masked vectors contain NaN or infinite values")
        out = np.empty((len(vectors), 3, 32, 32), dtype=np.float32)
        for start in range(0, len(vectors), batch_size):
            z = torch.from_numpy(vectors[start:start + batch_size]).to(self.device)
            out[start:start + len(z)] = decoder(z).cpu().numpy()
        return out

    def evaluate(self, images) -> dict:
        """Held-out reconstruction MSE and the latent's conformity to its priors."""
        vectors = self.transform(images)
        figures = {"reconstruction_mse": reconstruction_mse(as_images(images), self.inverse_transform(vectors))}
        return {**figures, **self.conformity(vectors)}

    def masked_meta(self, masked: np.ndarray) -> dict:
        return {"latent_conformity": self.conformity(masked)}

    def conformity(self, vectors: np.ndarray) -> dict:
        """How closely masked vectors follow the priors (needs no decoder): see `metrics.latent_conformity`."""
        g = self.config.gauss_dim
        return latent_conformity(vectors[:, :g], vectors[:, g:])

    # ------------------------------------------------------------------ persistence

    @property
    def fingerprint(self) -> str:
        encoder = self._require("encoder")
        digest = hashlib.sha256()
        for name, tensor in sorted(encoder.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return "aae:" + digest.hexdigest()[:32]

    def save(self, directory, include_decoder: bool = True) -> None:
        """Encoder and decoder as separate safetensors files, then a manifest with their sha256."""
        directory = Path(directory)
        if not include_decoder and (directory / DECODER_FILE).exists():
            raise VeilError(f"holds a {DECODER_FILE} (the private key); refusing to delete it for an encoder-only "
                            "copy: save to a new folder", directory)
        private_dir(directory)
        files = [ENCODER_FILE]
        _save_module(self._require("encoder"), directory / ENCODER_FILE)
        if include_decoder:
            _save_module(self._require("decoder"), directory / DECODER_FILE)
            files.append(DECODER_FILE)
        write_manifest(directory, self.method, asdict(self.config), files, fingerprint=self.fingerprint,
                       seed=self.config.seed, training_data=self.training_data_, secret_files=list(self.secret_files),
                       report=self.report_, saved_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @classmethod
    def load_public(cls, directory) -> "AAEMasker":
        return cls.load(directory, decoder=False)

    @classmethod
    def load(cls, directory, decoder: bool = True, device: str | None = None) -> "AAEMasker":
        """Load the encoder, and the decoder when asked for and present (`decoder=False` never reads it)."""
        directory = Path(directory)
        manifest = read_manifest(directory, skip=() if decoder else (DECODER_FILE,))
        if manifest["method"] != cls.method:
            raise VeilError(f"holds a {manifest['method']!r} masker, not an AAE", directory)
        masker = build_from_config(cls, {**manifest["config"], "device": device}, directory)
        masker.encoder, dec = masker._nets()
        load_weights(masker.encoder, directory / ENCODER_FILE)
        if decoder and DECODER_FILE in manifest["files"] and (directory / DECODER_FILE).exists():
            load_weights(dec, directory / DECODER_FILE)
            masker.decoder = dec
        masker.training_data_ = manifest.get("training_data", "")
        masker.report_ = manifest.get("report", {})
        if manifest.get("fingerprint") and manifest["fingerprint"] != masker.fingerprint:
            raise VeilError("encoder weights do not match the manifest's fingerprint", directory / ENCODER_FILE)
        return masker


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _save_module(module: torch.nn.Module, path: Path) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))
