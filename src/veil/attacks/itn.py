"""The inverse-transformation-network attack (ITN; Ito et al., as used in paper 003): learn the inverse of the
masking function from (image, masked) pairs with an MSE loss, then apply it to the victim's masked data.

Where the pairs come from is the threat model:
- a (keyed schemes and filters): public images masked with many secrets of the attacker's own (Ito et al.), so the
  network learns an inverse that does not depend on the key. The unkeyed blur is simulated exactly.
- b: public images masked by the victim's own function (its AAE encoder, or black-box use of its key).
- c: n known (image, masked) pairs of the victim.

For image-shaped masked data the network is `models.inverse.InverseNet`; its affine layer starts from the
closed-form ridge-regression inverse of the pairs (the attacker picks the ridge strength on a held-out tenth of its
own pairs) and stays there, the least-squares optimum; the convolutional refinement then trains with MSE (freezing
the 9.4M-weight affine layer makes a step several times cheaper on a CPU). For AAE vectors the network is the AAE
decoder architecture, trained whole.
"""
from __future__ import annotations

import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from veil.attacks.base import Attack, Knowledge, register_attack
from veil.attacks.own_aae import latent_split
from veil.models.aae import Decoder
from veil.models.inverse import InverseNet
from veil.training import fit_engine, make_trainer, set_seed, tensor_loader

#: how many secrets of its own a ciphertext-only attacker masks its public images with
OWN_KEYS = 100
RIDGE_STRENGTHS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


@register_attack("itn")
class ITNAttack(Attack):
    """Threats a (keyed schemes and filters: pairs under the attacker's own secrets), b (pairs from the victim's
    encoder or masking oracle) and c (the victim's known pairs)."""

    threats = ("a", "b", "c")
    budget_fields = ("train_images", "epochs", "aae_images", "aae_epochs")
    image_sizes = ((32, 32),)  # InverseNet's affine map over all 3x32x32 values (at 224x224: 2.3e10 weights)

    @classmethod
    def requirements(cls, threat: str) -> dict:
        """Under threat a the pairs come from the attacker's own masker, which a masker fitted on data (an AAE)
        cannot give without the victim's encoder."""
        return {**super().requirements(threat), **({"fits_on_data": False} if threat == "a" else {})}

    def reconstruct(self, knowledge: Knowledge) -> np.ndarray:
        start = time.time()
        budget = knowledge.budget
        vectors = knowledge.masked.data.ndim == 2
        # an AAE decoder is trained with the owner's recipe; an image inverse with the image-attack budget
        images_per_epoch, epochs = (budget.aae_images, budget.aae_epochs) if vectors else (budget.train_images,
                                                                                            budget.epochs)
        masked_inputs, images = training_pairs(knowledge, images_per_epoch)
        set_seed(knowledge.seed)
        if vectors:
            network = vector_decoder(masked_inputs.shape[1])
        else:
            network = InverseNet()
            self.details_["ridge_strength"] = init_affine(network, masked_inputs, images, knowledge.rng("ridge"))
            network.affine.requires_grad_(False)
        epochs = equal_steps_epochs(len(images), images_per_epoch, epochs, budget.batch_size)
        train_regression(network, masked_inputs, images, epochs, budget.batch_size, knowledge.seed, self.progress)
        self.details_.update({"pairs": len(images), "epochs": epochs, "train_s": round(time.time() - start, 1)})
        return predict(network, knowledge.masked.data)


def training_pairs(knowledge: Knowledge, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(masked, image) pairs as the threat model allows (see the module docstring); n public images under a, b."""
    if knowledge.threat == "c":
        images, masked = knowledge.pairs
        return np.asarray(masked, np.float32), np.asarray(images, np.float32)
    images = knowledge.public_subset(n)
    if knowledge.threat == "b":
        return knowledge.oracle.transform(images), images
    rng = knowledge.rng("own-keys")
    groups = np.array_split(np.arange(len(images)), min(OWN_KEYS, len(images)))
    masked = np.concatenate([knowledge.own_masker(rng).transform(images[g]) for g in groups])
    return masked, images


def vector_decoder(dim: int) -> Decoder:
    """The AAE decoder architecture for vectors of `dim` values (it concatenates the Gaussian and categorical parts,
    so where they split does not change the network)."""
    gauss, cat = latent_split(dim)
    return Decoder(gauss_dim=gauss, cat_dim=cat)


def equal_steps_epochs(pairs: int, images: int, epochs: int, batch_size: int) -> int:
    """Epochs over `pairs` that give as many steps as `epochs` over `images`, so that a few known pairs get the same
    training effort as many (they are passed over many times)."""
    steps = epochs * max(1, images // batch_size)
    return max(epochs, -(-steps // max(1, -(-pairs // batch_size))))


def init_affine(network: InverseNet, masked: np.ndarray, images: np.ndarray, rng: np.random.Generator) -> float:
    """Set the affine layer to the ridge-regression inverse of the pairs; returns the chosen ridge strength."""
    weight, bias, strength = ridge_inverse(masked.reshape(len(masked), -1), images.reshape(len(images), -1), rng)
    with torch.no_grad():
        network.affine.weight.copy_(torch.from_numpy(weight.T.astype(np.float32)))
        network.affine.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
    return strength


def ridge_inverse(X: np.ndarray, Y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """Y ~ X @ W + b by ridge regression on nine tenths of the pairs; the strength (relative to X's mean variance)
    is the one with the lowest error on the other tenth. One eigendecomposition serves every strength: of X'X, or of
    XX' when there are fewer pairs than values (the same solution, far cheaper for a few known pairs)."""
    order = rng.permutation(len(X))
    cut = max(1, len(X) // 10)
    held, fit = order[:cut], (order[cut:] if len(X) > 1 else order)
    x_mean, y_mean = X[fit].mean(0), Y[fit].mean(0)
    xc, yc = (X[fit] - x_mean).astype(np.float32), (Y[fit] - y_mean).astype(np.float32)
    dual = len(fit) < xc.shape[1]
    gram = ((xc @ xc.T) if dual else (xc.T @ xc)).astype(np.float64)
    eigval, eigvec = np.linalg.eigh(gram)
    projected = eigvec.T @ (yc if dual else xc.T @ yc).astype(np.float64)
    scale = max(np.trace(gram) / xc.shape[1], 1e-12)
    best = None
    for strength in RIDGE_STRENGTHS:
        coefficients = eigvec @ (projected / (eigval + strength * scale)[:, None])
        weight = xc.T.astype(np.float64) @ coefficients if dual else coefficients
        bias = y_mean - x_mean @ weight
        error = float(((X[held] @ weight + bias - Y[held]) ** 2).mean())
        if best is None or error < best[0]:
            best = (error, weight, bias, strength)
    return best[1], best[2], best[3]


def train_regression(network: torch.nn.Module, inputs: np.ndarray, targets: np.ndarray, epochs: int,
                     batch_size: int, seed: int, progress: bool = False) -> list[dict]:
    """Train the trainable parameters of `network` to map inputs to targets with MSE (Adam), through the shared
    Ignite trainer."""
    optimizer = torch.optim.Adam([p for p in network.parameters() if p.requires_grad], lr=1e-3)

    def step(engine, batch):
        network.train()
        x, y = batch
        loss = F.mse_loss(network(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"mse": loss.item()}

    loader = tensor_loader(inputs, targets, batch_size=batch_size, shuffle=True, drop_last=len(inputs) > batch_size)
    with tempfile.TemporaryDirectory() as work:
        return fit_engine(make_trainer(step, seed), loader, epochs=epochs, out_dir=work,
                          to_save={"network": network, "optimizer": optimizer}, loss_names=["mse"],
                          progress=progress)


@torch.no_grad()
def predict(network: torch.nn.Module, inputs: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    network.eval()
    outputs = [network(torch.from_numpy(np.ascontiguousarray(inputs[i:i + batch_size], np.float32))).numpy()
               for i in range(0, len(inputs), batch_size)]
    return np.clip(np.concatenate(outputs), 0.0, 1.0).astype(np.float32)
