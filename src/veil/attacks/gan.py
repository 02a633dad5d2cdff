"""The GAN attack (after SIA-GAN, Madono et al.; paper 003 sec. III-G), threat a: unpaired translation from the
victim's masked data to public plain images. No pairs and no secret: a generator G (masked -> image) must make
images a critic cannot tell from public ones, and a forward model F (image -> masked) closes the cycle
(CycleGAN-style: F(G(m)) ~ m and G(F(x)) ~ x, L1), so that G keeps what the masked data says about each image.
Least-squares GAN losses; Adam 2e-4, betas (0.5, 0.999), cycle weight 10, as in the public recipes.

When the masked data is image-shaped (the same shape as the images), the attacker also uses CycleGAN's identity
loss (weight 0.5 of the cycle weight, as in its recipe): G(x) ~ x for public images x and F(m) ~ m for masked
samples m. Of all the maps the adversarial and cycle losses allow, it prefers the one that changes an image least:
what a masking that keeps pixels where they are (a blur, a colour or sign change) leaves in place, G keeps, instead of
drifting to another image the critic accepts. The attacker chooses it for every image-shaped scheme alike; under a
scheme that moves pixels (block scrambling) it only adds a prior the adversarial loss then outweighs. The
translator is CycleGAN's residual generator at full resolution (`veil.models.gan.Translator`).
Measured on CIFAR-10 (10,000 public train images, one epoch: 156 steps at batch 64, victims from the test split):
an identity masker's 64 victims come back at median SSIM 0.80 (0.23 without the identity loss and residual block,
after 300 steps) and the default blur's 500 at 0.73 (-0.32 before); a step costs 0.96 CPU-seconds on one thread
(0.68 before).

For AAE vectors, G is the AAE decoder architecture and F the AAE encoder architecture, with a latent critic.
"""
from __future__ import annotations

import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F_

from veil.attacks.base import Attack, Knowledge, register_attack
from veil.attacks.itn import predict
from veil.attacks.own_aae import recipe_split
from veil.models.aae import Decoder, Discriminator, Encoder
from veil.models.gan import Critic, Translator
from veil.training import fit_engine, make_trainer, set_seed, tensor_loader

CYCLE_WEIGHT = 10.0
#: CycleGAN's identity loss weight, relative to the cycle weight (image-shaped masked data only)
IDENTITY_WEIGHT = 0.5
#: translator size: small, for CPU budgets
WIDTH, BLOCKS = 16, 2


@register_attack("gan")
class GANAttack(Attack):
    threats = ("a",)
    budget_fields = ("gan_steps", "train_images")
    image_sizes = ((32, 32),)  # the critic's last layer is sized for 32x32 inputs (veil.models.gan)

    def reconstruct(self, knowledge: Knowledge) -> np.ndarray:
        start = time.time()
        set_seed(knowledge.seed)
        masked = torch.from_numpy(np.ascontiguousarray(knowledge.masked.data, np.float32))
        nets = networks(masked.shape[1:], recipe_split(knowledge) if masked.ndim == 2 else None)
        public = knowledge.public_subset()
        batch = knowledge.budget.batch_size
        loader = tensor_loader(public, batch_size=batch, shuffle=True, drop_last=len(public) > batch)
        epochs = max(1, -(-knowledge.budget.gan_steps // len(loader)))
        train_cycle(nets, loader, masked, epochs, knowledge.seed, self.progress,
                    image_shaped=masked.shape[1:] == public.shape[1:])
        self.details_.update({"steps": epochs * len(loader), "epochs": epochs, "public_images": len(public),
                              "train_s": round(time.time() - start, 1)})
        return predict(nets["g"], knowledge.masked.data)


def networks(masked_shape: tuple, split: tuple[int, int] | None = None) -> dict[str, torch.nn.Module]:
    """G, F and the two critics for masked data of this per-sample shape; for vectors, `split` is their (Gaussian,
    categorical) sizes."""
    if len(masked_shape) == 1:
        gauss, cat = split
        forward_model = _VectorEncoder(gauss, cat)
        return {"g": Decoder(gauss_dim=gauss, cat_dim=cat), "f": forward_model, "d_image": Critic(),
                "d_masked": Discriminator(masked_shape[0])}
    return {"g": Translator(WIDTH, BLOCKS), "f": Translator(WIDTH, BLOCKS, bounded=False), "d_image": Critic(),
            "d_masked": Critic()}


class _VectorEncoder(torch.nn.Module):
    """The AAE encoder architecture, its two heads concatenated as the masked vector."""

    def __init__(self, gauss: int, cat: int):
        super().__init__()
        self.encoder = Encoder(gauss_dim=gauss, cat_dim=cat)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.encoder(images), 1)


def _ls(scores: torch.Tensor, target: float) -> torch.Tensor:
    return F_.mse_loss(scores, torch.full_like(scores, target))


def train_cycle(nets: dict, loader, masked: torch.Tensor, epochs: int, seed: int, progress: bool,
                image_shaped: bool) -> None:
    """`image_shaped`: the masked samples have the images' shape, and the identity loss applies."""
    g, f, d_image, d_masked = nets["g"], nets["f"], nets["d_image"], nets["d_masked"]
    betas = (0.5, 0.999)
    opt_gen = torch.optim.Adam([*g.parameters(), *f.parameters()], lr=2e-4, betas=betas)
    opt_critic = torch.optim.Adam([*d_image.parameters(), *d_masked.parameters()], lr=2e-4, betas=betas)

    def step(engine, batch):
        for net in nets.values():
            net.train()
        real = batch[0]
        m = masked[torch.randint(len(masked), (len(real),))]
        fake_image, fake_masked = g(m), f(real)
        adversarial = _ls(d_image(fake_image), 1.0) + _ls(d_masked(fake_masked), 1.0)
        cycle = F_.l1_loss(f(fake_image), m) + F_.l1_loss(g(fake_masked), real)
        identity = F_.l1_loss(g(real), real) + F_.l1_loss(f(m), m) if image_shaped else torch.zeros(())
        opt_gen.zero_grad(set_to_none=True)
        (adversarial + CYCLE_WEIGHT * (cycle + IDENTITY_WEIGHT * identity)).backward()
        opt_gen.step()
        critic = (_ls(d_image(real), 1.0) + _ls(d_image(fake_image.detach()), 0.0)
                  + _ls(d_masked(m), 1.0) + _ls(d_masked(fake_masked.detach()), 0.0))
        opt_critic.zero_grad(set_to_none=True)
        critic.backward()
        opt_critic.step()
        return {"adversarial": adversarial.item(), "cycle": cycle.item(), "identity": identity.item(),
                "critic": critic.item()}

    with tempfile.TemporaryDirectory() as work:
        fit_engine(make_trainer(step, seed), loader, epochs=epochs, out_dir=work,
                   to_save={**nets, "opt_gen": opt_gen, "opt_critic": opt_critic},
                   loss_names=["adversarial", "cycle", "identity", "critic"], progress=progress)
