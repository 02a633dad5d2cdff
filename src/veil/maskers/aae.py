"""AAE masking (Lis et al. 2021): the encoder of an adversarial autoencoder gives the masked form
(384 Gaussian + 20 categorical numbers); the decoder trained with it reconstructs images from it.

What it protects, as measured by `veil report privacy` (results/privacy/report.md; figure names in brackets):
- The whole autoencoder instance is the secret, as the paper keeps it: the encoder as much as the decoder. Anyone
  holding the encoder masks public images and trains a decoder on the pairs (threat b, `aae_itn_b_ssim`); ours
  reconstructs the victim's images about as well as the owner's own decoder (`aae_owner_ssim`). Known (image,
  vector) pairs of the victim do the same (threat c, `aae_itn_c1000_ssim`, `aae_itn_c10000_ssim`).
- Ciphertext-only (threat a, masked vectors with their labels, the recipe and public images), the figures are the
  report's: two runs of the default recipe are, to first order, one linear map apart (a least-squares map fitted on
  public images decodes another run's vectors nearly as well as the owner's decoder), so threat a rests on how well an
  attacker can estimate that map without pairs. This is an empirical property, not a guarantee.
- Which instance was attacked: the committed results/privacy (commit 0e57473) attacked an AAE with the paper preset's
  architecture and optimiser, trained 5 epochs at batch 64 on 20,000 public images: neither the default recipe nor
  the paper preset as `train-masker` trains it. `veil report privacy` now attacks both recipes as users train them
  (`aae`: the default; `aae_paper`: `--preset paper`), on the owner's own images; each run's config names the recipe.

Training is stabilised beyond the paper's plain recipe (which stalls near MSE 0.03 on CIFAR-10):
- the regularisation phase (discriminators and the encoder as generator) uses its own, smaller learning rate
  (`reg_lr`, default 1e-4) than reconstruction (`lr`);
- the generator loss is weighted (`adv_weight`) and real labels are smoothed (`label_smoothing`);
- discriminators use dropout, and train on the encoder outputs of the reconstruction pass (detached);
- the Gaussian head ends in a BatchNorm without affine terms (`standardize_gauss`), fixing the first two moments.

The default recipe is also fast (issue 12: held-out MSE 0.0035 with an honest latent in minutes on 2 cores; the
search is in results/bench/train-masker-search): batches of 256, a one-cycle schedule for all three optimizers
peaking at lr 3e-3 (`schedule`), a linear latent-to-pixel path in the decoder (`decoder_skip`), an information term
on the categorical head (`cat_weight`), and channels-last convolutions on CPU, for 14 epochs. Its encoder has 16
channels in its first convolution (`channels`; 456k parameters, still over the paper's 400k) and its decoder 32
(`decoder_channels`): masking costs the encoder alone, 3.3 MFLOP per image instead of 10.8 at 32 channels, and an
epoch trains faster, with held-out MSE no worse (results/bench/train-masker.json and the search beside it).
Two knobs serve as baselines of `veil report frontier` (issue 26): `latent_noise`, Gaussian noise of that standard
deviation added to the latent at masking time (fresh each time, in the torch and the NumPy encoder alike), and a
smaller latent (`gauss_dim`).

`presets["paper"]` is the earlier, paper-style recipe (constant Adam 1e-3, batch 16, 32 channels throughout);
results/paper uses the default.
"""
from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from veil.errors import VeilError
from veil.io.write import atomic_path, make_private, private_dir
from veil.maskers.aae_numpy import (DECODER_FILE, ENCODER_FILE, IMAGE_SIZE, UNSTATED, AAECapabilities, AAEConfig,
                                     check_aae_size, check_config, fingerprint as weights_fingerprint, public_recipe,
                                     with_latent_noise)
from veil.maskers.base import Masker, MaskerNotFitted, build_from_config, register_masker
from veil.maskers.files import read_manifest, write_manifest
from veil.metrics import latent_conformity, reconstruction_mse
from veil.schemes.base import as_images
from veil.models.aae import Decoder, Discriminator, Encoder
from veil.devices import pick_device
from veil.weights import load_weights

_D = AAEConfig  # the defaults below are AAEConfig's (a dataclass keeps each default as a class attribute)


@register_masker("aae")
class AAEMasker(AAECapabilities, Masker):
    """Adversarial-autoencoder masker. Parameters as in `AAEConfig`; `device` picks CPU/CUDA (None: CUDA when present).

    `fit(X)` validates the parameters, picks the device (`device_`) and trains the encoder (`encoder_`) and the
    decoder (`decoder_`, the private key; never a parameter, so never in a repr). `transform` gives masked vectors.
    Both networks are secret: the decoder reconstructs, and the encoder lets anyone train a decoder.
    """

    secret_files = (ENCODER_FILE, DECODER_FILE)
    #: named recipes (`veil train-masker --preset NAME`). "paper": the recipe of results/paper as run at 4fe0e76
    #: (the committed privacy report used its optimiser and architecture at 5 epochs, batch 64), the paper's optimiser (Adam 1e-3, constant rate, batch 16, 10 epochs)
    #: with veil's stabilisers above, and none of the default's speed-ups (one-cycle, decoder skip, categorical term)
    #: the training report's figures written to training.json by `veil train-masker`
    reported = ("reconstruction_mse", "gauss_ks", "gauss_mean_abs", "gauss_std_mean", "cat_mean_max_prob", "cat_used",
                "epoch_s")
    presets = {"paper": {"schedule": "constant", "decoder_skip": False, "cat_weight": 0.0, "lr": 1e-3,
                         "batch_size": 16, "epochs": 10, "channels": 32, "decoder_channels": None}}
    invertible = True
    #: never forked to mask in shards: a process forked after torch has run on several threads can hang (`veil mask`
    #: shards the NumPy encoder, `veil.maskers.aae_numpy`)
    shard_unit = None

    def __init__(self, gauss_dim: int = _D.gauss_dim, cat_dim: int = _D.cat_dim, channels: int = _D.channels,
                 decoder_channels: int | None = _D.decoder_channels, standardize_gauss: bool = _D.standardize_gauss, decoder_skip: bool = _D.decoder_skip, epochs: int = _D.epochs,
                 batch_size: int = _D.batch_size, lr: float = _D.lr, beta1: float = _D.beta1, beta2: float = _D.beta2,
                 reg_lr: float = _D.reg_lr, adv_weight: float = _D.adv_weight,
                 label_smoothing: float = _D.label_smoothing, schedule: str = _D.schedule,
                 cat_weight: float = _D.cat_weight, joint_adv_weight: float = _D.joint_adv_weight, holdout: float = _D.holdout, seed: int | None = _D.seed,
                 bf16: bool = _D.bf16, latent_noise: float = _D.latent_noise, device: str | None = None):
        self.gauss_dim = gauss_dim
        self.cat_dim = cat_dim
        self.channels = channels
        self.decoder_channels = decoder_channels
        self.standardize_gauss = standardize_gauss
        self.decoder_skip = decoder_skip
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.reg_lr = reg_lr
        self.adv_weight = adv_weight
        self.label_smoothing = label_smoothing
        self.schedule = schedule
        self.cat_weight = cat_weight
        self.joint_adv_weight = joint_adv_weight
        self.holdout = holdout
        self.seed = seed
        self.bf16 = bf16
        self.latent_noise = latent_noise
        self.device = device

    @property
    def config(self) -> AAEConfig:
        """The training configuration (every parameter but the device), as saved in the manifest."""
        return AAEConfig(**{name: getattr(self, name) for name in AAEConfig.__dataclass_fields__})

    @property
    def recorded_config(self) -> dict:
        """The configuration as the manifest records it, with the seed the training drew when it was given none."""
        return {**asdict(self.config), "seed": getattr(self, "seed_", self.seed)}

    # the fitted networks, also under their pre-estimator names (None when absent: a decoder is not always loaded)
    encoder = property(lambda self: getattr(self, "encoder_", None), lambda self, net: setattr(self, "encoder_", net))
    decoder = property(lambda self: getattr(self, "decoder_", None), lambda self, net: setattr(self, "decoder_", net))

    def _device(self):
        return getattr(self, "device_", None) or pick_device(self.device)

    def _validate(self) -> None:
        check_config(self.config)

    @property
    def latent_dim(self) -> int:
        return self.config.gauss_dim + self.config.cat_dim

    def _nets(self):
        c, device = self.config, self._device()
        layout = torch.channels_last if device.type == "cpu" else torch.preserve_format
        return (Encoder(c.channels, c.gauss_dim, c.cat_dim, c.standardize_gauss).to(device, memory_format=layout),
                Decoder(c.decoder_channels or c.channels, c.gauss_dim, c.cat_dim, c.decoder_skip)
                .to(device, memory_format=layout))

    # ------------------------------------------------------------------ training

    def fit(self, X, y=None, work_dir=None, resume: bool = False, progress: bool = True) -> "AAEMasker":
        """Train on images X, either layout (y, labels, is ignored). Checkpoints and the epoch log go to `work_dir`."""
        from veil.training import (check_bf16, distribute, fit_engine, make_trainer, set_seed, shuffled_loader,
                                    training_seed)

        self._validate()
        self.device_ = pick_device(self.device)
        c = self.config
        if c.bf16:
            check_bf16(self.device_)
        pixels = as_images(X)
        check_aae_size(pixels)
        self.training_data_ = getattr(X, "source", "") or f"array of {len(pixels)} images"
        if len(pixels) < 20:
            raise VeilError(f"need at least 20 images to train a masker, got {len(pixels)}")
        self.seed_ = seed = training_seed(c.seed, work_dir, resume)
        split = np.random.default_rng(seed).permutation(len(pixels))
        n_hold = max(1, int(round(c.holdout * len(pixels))))
        train, held = pixels[np.sort(split[n_hold:])], pixels[np.sort(split[:n_hold])]
        set_seed(seed)
        self.encoder_, self.decoder_ = self._nets()
        d_gauss = Discriminator(c.gauss_dim).to(self.device_)
        d_cat = Discriminator(c.cat_dim, hidden=64).to(self.device_)
        betas = (c.beta1, c.beta2)
        opt_ae = torch.optim.Adam([*self.encoder_.parameters(), *self.decoder_.parameters()], lr=c.lr, betas=betas)
        opt_disc = torch.optim.Adam([*d_gauss.parameters(), *d_cat.parameters()], lr=c.reg_lr, betas=betas)
        opt_gen = torch.optim.Adam(self.encoder_.parameters(), lr=c.reg_lr, betas=betas)
        loader = shuffled_loader(train, batch_size=c.batch_size, seed=seed, drop_last=len(train) > c.batch_size)
        # a joint generator loss goes through opt_ae: opt_gen then never steps, and gets no schedule
        stepped = {"ae": opt_ae, "disc": opt_disc, **({} if c.joint_adv_weight else {"gen": opt_gen})}
        schedules = _lr_schedules(c, c.epochs * len(loader), *stepped.values())
        nets = [distribute(net) for net in (self.encoder_, self.decoder_, d_gauss, d_cat)]
        step = self._step(nets, opt_ae, opt_disc, opt_gen, schedules)
        trainer = make_trainer(step, seed)
        to_save = {"encoder": self.encoder_, "decoder": self.decoder_, "d_gauss": d_gauss, "d_cat": d_cat,
                   "opt_ae": opt_ae, "opt_disc": opt_disc, "opt_gen": opt_gen,
                   **{f"schedule_{name}": sch for name, sch in zip(stepped, schedules)}}

        def evaluate(epoch):
            vectors = self.transform(held)
            return {"holdout_mse": reconstruction_mse(held, self.inverse_transform(vectors)), **self.conformity(vectors)}

        with tempfile.TemporaryDirectory() if work_dir is None else contextlib.nullcontext(work_dir) as out:
            self.history_ = fit_engine(trainer, loader, epochs=c.epochs, out_dir=out, to_save=to_save,
                                       loss_names=["recon", "disc", "gen"], resume=resume, progress=progress,
                                       evaluate=evaluate)
        self.report_ = self.evaluate(held)
        self.report_["epoch_s"] = float(np.mean([row["epoch_s"] for row in self.history_])) if self.history_ else 0.0
        return self

    def _step(self, nets, opt_ae, opt_disc, opt_gen, schedules):
        """The training step over `nets`: the encoder, decoder and both discriminators as a step calls them
        (`veil.training.distribute`); the forward passes under bfloat16 autocast with `bf16`."""
        from veil.training import autocast

        c = self.config
        encoder, decoder, d_gauss, d_cat = nets
        real_label = 1.0 - c.label_smoothing

        def step(engine, batch):
            x = _to_device(batch[0], self.device_)
            for net in nets:
                net.train()
            # reconstruction phase: encoder + decoder minimise MSE, plus the categorical head's information term
            # (cat_weight) and, when regularisation is joint, the encoder's generator loss (joint_adv_weight)
            with autocast(self.device_, c.bf16):
                gauss, cat = encoder(x)
                recon = F.mse_loss(decoder(torch.cat([gauss, cat], 1)), x)
                loss = recon + c.cat_weight * _cat_information_loss(cat) if c.cat_weight else recon
                if c.joint_adv_weight:
                    gen = _bce(d_gauss(gauss), 1.0) + _bce(d_cat(cat), 1.0)
                    loss = loss + c.joint_adv_weight * gen
            opt_ae.zero_grad(set_to_none=True)
            loss.backward()
            opt_ae.step()
            # regularisation phase 1: discriminators tell prior samples (real) from encoder outputs (fake)
            with autocast(self.device_, c.bf16):
                real_gauss = torch.randn_like(gauss)
                real_cat = F.one_hot(torch.randint(c.cat_dim, (len(x),), device=x.device), c.cat_dim).float()
                disc = (_bce(d_gauss(real_gauss), real_label) + _bce(d_gauss(gauss.detach()), 0.0)
                        + _bce(d_cat(real_cat), real_label) + _bce(d_cat(cat.detach()), 0.0))
            opt_disc.zero_grad(set_to_none=True)
            disc.backward()
            opt_disc.step()
            # regularisation phase 2 (unless joint): the encoder, as generator, learns to fool both discriminators
            if not c.joint_adv_weight:
                with autocast(self.device_, c.bf16):
                    gauss, cat = encoder(x)
                    gen = _bce(d_gauss(gauss), 1.0) + _bce(d_cat(cat), 1.0)
                opt_gen.zero_grad(set_to_none=True)
                (c.adv_weight * gen).backward()
                opt_gen.step()
            for schedule in schedules:
                if schedule.last_epoch < getattr(schedule, "total_steps", float("inf")):  # a resumed run extended
                    schedule.step()                                                  # past its cycle stays at its end
            return {"recon": recon.item(), "disc": disc.item(), "gen": gen.item()}

        return step

    # ------------------------------------------------------------------ masking and unmasking

    def _require(self, part: str):
        """The fitted network `part` ("encoder" or "decoder"); a masker without an encoder is not fitted."""
        if self.encoder is None:
            raise MaskerNotFitted(f"this masker has no {part} (not fitted)")
        if getattr(self, part) is None:
            raise VeilError(f"this masker has no {part} (the decoder is the private key and was not loaded)")
        return getattr(self, part)

    @torch.inference_mode()
    def transform(self, X, batch_size: int = 1024) -> np.ndarray:
        """Images, either layout, uint8 or float -> masked vectors (N, gauss_dim + cat_dim), computed in
        bounded-memory batches, with fresh noise when `latent_noise` > 0 (`aae_numpy.with_latent_noise`)."""
        encoder = self._require("encoder").eval()
        pixels, device = as_images(X), self._device()
        check_aae_size(pixels)
        out = np.empty((len(pixels), self.latent_dim), dtype=np.float32)
        for start in range(0, len(pixels), batch_size):
            gauss, cat = encoder(_to_device(torch.from_numpy(pixels[start:start + batch_size]), device))
            out[start:start + len(gauss)] = torch.cat([gauss, cat], 1).cpu().numpy()
        return with_latent_noise(out, self.config.latent_noise)

    @torch.inference_mode()
    def inverse_transform(self, X, batch_size: int = 1024) -> np.ndarray:
        """Masked vectors -> images (N, 3, 32, 32), the network's one size; needs the decoder (the private key)."""
        decoder, device = self._require("decoder").eval(), self._device()
        vectors = np.asarray(X, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.latent_dim:
            raise VeilError(f"masked vectors must have shape (N, {self.latent_dim}), got {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise VeilError("masked vectors contain NaN or infinite values")
        out = np.empty((len(vectors), 3, *IMAGE_SIZE), dtype=np.float32)
        for start in range(0, len(vectors), batch_size):
            z = torch.from_numpy(vectors[start:start + batch_size]).to(device)
            out[start:start + len(z)] = decoder(z).cpu().numpy()
        return out

    def evaluate(self, images) -> dict:
        """Held-out reconstruction MSE and the latent's conformity to its priors."""
        vectors = self.transform(images)
        figures = {"reconstruction_mse": reconstruction_mse(as_images(images), self.inverse_transform(vectors))}
        return {**figures, **self.conformity(vectors)}

    def masked_meta(self, masked: np.ndarray) -> dict:
        return {"latent_conformity": self.conformity(masked), "recipe": public_recipe(asdict(self.config))}

    def conformity(self, vectors: np.ndarray) -> dict:
        """How closely masked vectors follow the priors (needs no decoder): see `metrics.latent_conformity`."""
        g = self.config.gauss_dim
        return latent_conformity(vectors[:, :g], vectors[:, g:])

    # ------------------------------------------------------------------ persistence

    @property
    def fingerprint(self) -> str:
        state = self._require("encoder").state_dict()
        return weights_fingerprint({name: tensor.detach().cpu().contiguous().numpy() for name, tensor in state.items()})

    def save(self, directory, include_decoder: bool = True) -> None:
        """Encoder and decoder as separate safetensors files (both secret: mode 0600, in a 0700 folder), then a
        manifest with their sha256."""
        directory = Path(directory)
        if not include_decoder and (directory / DECODER_FILE).exists():
            raise VeilError(f"holds a {DECODER_FILE} (the private key); refusing to delete it for an encoder-only "
                            "copy: save to a new folder", directory)
        private_dir(directory)
        files = [ENCODER_FILE]
        save_module(self._require("encoder"), directory / ENCODER_FILE)
        if include_decoder:
            save_module(self._require("decoder"), directory / DECODER_FILE)
            files.append(DECODER_FILE)
        config = self.recorded_config
        write_manifest(directory, self.method, config, files, fingerprint=self.fingerprint,
                       seed=config["seed"], training_data=self.training_data_,
                       secret_files=[name for name in files if name in self.secret_files], report=self.report_,
                       saved_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @classmethod
    def load_public(cls, directory, opened: dict | None = None) -> "AAEMasker":
        """The encoder alone, which masking needs (it is secret all the same); the decoder is never read."""
        return cls.load(directory, decoder=False, opened=opened)

    @classmethod
    def load(cls, directory, decoder: bool = True, device: str | None = None,
             opened: dict | None = None) -> "AAEMasker":
        """Load the encoder, and the decoder when asked for and present (`decoder=False` never reads it)."""
        directory = Path(directory)
        manifest = read_manifest(directory, skip=() if decoder else (DECODER_FILE,), opened=opened)
        if manifest["method"] != cls.method:
            raise VeilError(f"holds a {manifest['method']!r} masker, not an AAE", directory)
        masker = build_from_config(cls, {**UNSTATED, **manifest["config"], "device": device}, directory)
        masker.device_ = pick_device(device)
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


def _lr_schedules(config: AAEConfig, steps: int, *optimizers) -> list:
    """One learning-rate schedule per optimizer, all of the same shape: constant (the paper), or one cycle (warm-up
    to each optimizer's own rate over the first quarter of the `steps`, then cosine annealing to 1/1e4 of it).

    The regularisation phase anneals with reconstruction: with its rate held while reconstruction's fell towards
    zero, the generator loss alone moved the encoder in the last epochs, and held-out MSE rose from 0.0044 to 0.087
    (results/bench/train-masker-search). A cycle needs whole warm-up and annealing phases: a smoke run of fewer than
    8 steps (where torch's OneCycleLR divides by zero) follows the beginning of an 8-step cycle."""
    if config.schedule == "onecycle":
        return [torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=opt.param_groups[0]["lr"], total_steps=max(steps, 8),
                                                    pct_start=0.25, cycle_momentum=False) for opt in optimizers]
    return [torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0) for opt in optimizers]


def _cat_information_loss(cat: torch.Tensor) -> torch.Tensor:
    """Mean per-image entropy minus the entropy of the batch's mean: low when each image picks one category with
    confidence and the batch spreads over all of them (the categorical prior's two properties)."""
    eps = 1e-8
    per_image = -(cat * torch.log(cat + eps)).sum(1).mean()
    marginal = cat.mean(0)
    return per_image + (marginal * torch.log(marginal + eps)).sum()


def _to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Convolutions on CPU run faster on channels-last tensors (about 15% per training step here)."""
    images = images.to(device, non_blocking=True)
    return images.contiguous(memory_format=torch.channels_last) if device.type == "cpu" else images


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def save_module(module: torch.nn.Module, path: Path) -> None:
    """The network's weights as a safetensors file readable by its owner only (every saved network is secret)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))
        make_private(tmp)
