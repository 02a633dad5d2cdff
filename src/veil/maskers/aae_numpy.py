"""The AAE encoder's forward pass in NumPy, for `veil mask`: masking with a trained masker without importing torch.

Why: a whole `veil mask` of 10,000 images is about a second of arithmetic, and importing torch alone takes longer
than that (1.5 s on an idle 2-core machine, several seconds on a busy one). Training, decoding and the library's
`AAEMasker.transform` stay in torch; `tests/test_aae_numpy.py` checks that both give the same vectors (float32
rounding apart) and the same fingerprint.

Each convolution is one matrix product over a strided view of the padded batch (channels last, so the view's copy
is one pass), with the evaluation-mode BatchNorm folded into the weights once, at load.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from veil.errors import VeilError
from veil.registry import SCHEMES
from veil.schemes.base import Capabilities, MaskingFunction, image_array, require_size
from veil.threads import chosen_threads

ENCODER_FILE, DECODER_FILE = "encoder.safetensors", "decoder.safetensors"  # as `veil.maskers.aae` writes them
LEAK = 0.2
BN_EPS = 1e-5
#: images per matrix product: rows of another batch could round differently, so masking shards start at multiples
BATCH = 128
#: the paper's network takes 32x32 images and no other size
IMAGE_SIZE = (32, 32)
#: the encoder's convolutions: (weight, bias, BatchNorm after it or None), as named in its state dict
CONVS = (("features.0", None), ("features.2", "features.3"), ("features.5", "features.6"))


class NumpyEncoder:
    """The forward pass of `veil.models.aae.Encoder` in evaluation mode, from its state dict (NumPy arrays)."""

    def __init__(self, state: dict[str, np.ndarray], standardize_gauss: bool = True):
        self.fingerprint = fingerprint(state)
        self.convs = [_folded_conv(state, conv, norm) for conv, norm in CONVS]
        channels = state["features.5.weight"].shape[0]
        gauss_w, gauss_b = _linear_from_chw(state["gauss.0.weight"], channels), state["gauss.0.bias"]
        if standardize_gauss:
            scale = 1 / np.sqrt(state["gauss.1.running_var"] + BN_EPS)
            gauss_w, gauss_b = gauss_w * scale[:, None], (gauss_b - state["gauss.1.running_mean"]) * scale
        self.gauss_dim = len(gauss_b)
        self.head_w = np.ascontiguousarray(np.concatenate([gauss_w, _linear_from_chw(state["cat.weight"], channels)]).T,
                                           dtype=np.float32)
        self.head_b = np.concatenate([gauss_b, state["cat.bias"]]).astype(np.float32)

    def __call__(self, images, batch_size: int = BATCH, threads: int | None = None) -> np.ndarray:
        """Images in either layout, uint8 or float in [0, 1] -> masked vectors (N, gauss + cat), float32.

        `threads` workers (default: `veil.threads.chosen_threads()`, the idle cores) each encode a share of whole
        batches, with the BLAS on one thread each: the patch copies and LeakyReLU between the matrix products run on
        one core only, so a worker per core beats one worker with a multi-threaded BLAS. A single worker keeps its
        BLAS on one thread too: OpenBLAS's sums change in the last bits with its thread count, and a masked set must
        be the same bytes however many cores were idle."""
        from threadpoolctl import threadpool_limits

        array, channels_last = image_array(images)
        check_aae_size(array)
        out = np.empty((len(array), len(self.head_b)), dtype=np.float32)
        batches = -(-len(array) // batch_size)
        workers = max(1, min(chosen_threads() if threads is None else threads, batches))
        share = -(-batches // workers) * batch_size
        with threadpool_limits(limits=1, user_api="blas"):
            if workers == 1:
                self._encode(array, channels_last, batch_size, out)
                return out
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(lambda start: self._encode(array[start:start + share], channels_last, batch_size,
                                                         out[start:start + share]), range(0, len(array), share)))
        return out

    def _encode(self, array: np.ndarray, channels_last: bool, batch_size: int, out: np.ndarray) -> None:
        batch = min(batch_size, len(array))
        layers = [_Layer(batch, size, weight, bias) for (weight, bias), size in zip(self.convs, (32, 16, 8))]
        features = np.empty((batch, self.head_w.shape[0]), dtype=np.float32)
        for start in range(0, len(array), batch_size):
            images = array[start:start + batch_size]
            self._forward(images if channels_last else images.transpose(0, 2, 3, 1), layers, features,
                          out[start:start + batch_size])

    def _forward(self, images: np.ndarray, layers: list["_Layer"], features: np.ndarray, out: np.ndarray) -> None:
        """One batch into `out`, through buffers made once per call: a new array per batch cost more than its
        arithmetic, in the page faults of memory the process touches for the first time."""
        n = len(images)
        first = layers[0].input(n)
        if images.dtype == np.uint8:
            np.divide(images, np.float32(255), out=first)
        else:
            first[...] = images
        for layer, after in zip(layers, layers[1:] + [None]):
            layer.run(n, features[:n].reshape(n, layer.half, layer.half, -1) if after is None else after.input(n))
        np.matmul(features[:n], self.head_w, out=out)
        out += self.head_b
        cat = out[:, self.gauss_dim:]
        cat -= cat.max(axis=1, keepdims=True)
        np.exp(cat, out=cat)
        cat /= cat.sum(axis=1, keepdims=True)


class _Layer:
    """A 4x4 convolution with stride 2 and padding 1 over (N, H, W, C), then LeakyReLU, as one matrix product over
    the patches of a zero-padded input, with every buffer for up to `batch` images allocated once."""

    def __init__(self, batch: int, size: int, weight: np.ndarray, bias: np.ndarray):
        self.weight, self.bias, self.half = weight, bias, size // 2
        channels = weight.shape[0] // 16
        self.padded = np.zeros((batch, size + 2, size + 2, channels), dtype=np.float32)  # the border stays zero
        self.patches = np.empty((batch * self.half ** 2, weight.shape[0]), dtype=np.float32)
        self.result = np.empty((batch * self.half ** 2, weight.shape[1]), dtype=np.float32)
        self.scaled = np.empty_like(self.result)

    def input(self, n: int) -> np.ndarray:
        """Where the layer's input for `n` images goes: the inside of the padded buffer."""
        return self.padded[:n, 1:-1, 1:-1]

    def run(self, n: int, out: np.ndarray) -> None:
        """Convolve the input of `n` images and write LeakyReLU of it to `out`, (n, half, half, out channels)."""
        s, half, channels = self.padded.strides, self.half, self.padded.shape[3]
        windows = np.lib.stride_tricks.as_strided(self.padded, (n, half, half, 4, 4, channels),
                                                  (s[0], 2 * s[1], 2 * s[2], s[1], s[2], s[3]), writeable=False)
        rows = n * half * half
        np.copyto(self.patches[:rows].reshape(windows.shape), windows)
        result = np.matmul(self.patches[:rows], self.weight, out=self.result[:rows])
        result += self.bias
        scaled = np.multiply(result, np.float32(LEAK), out=self.scaled[:rows])
        np.maximum(result.reshape(out.shape), scaled.reshape(out.shape), out=out)


def fingerprint(state: dict[str, np.ndarray], prefix: str = "aae") -> str:
    """The same one-way identifier as `AAEMasker.fingerprint`: sha256 over the sorted names and tensor bytes (also
    the obfuscator's, under its own prefix)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(tensor).tobytes())
    return f"{prefix}:" + digest.hexdigest()[:32]


def _folded_conv(state: dict, conv: str, norm: str | None) -> tuple[np.ndarray, np.ndarray]:
    """A convolution's weight as a (4*4*in, out) matrix in channels-last patch order, with the BatchNorm that follows
    it (evaluation mode: running statistics) folded in."""
    weight, bias = state[f"{conv}.weight"].astype(np.float64), state[f"{conv}.bias"].astype(np.float64)
    if norm is not None:
        scale = state[f"{norm}.weight"] / np.sqrt(state[f"{norm}.running_var"] + BN_EPS)
        weight = weight * scale[:, None, None, None]
        bias = (bias - state[f"{norm}.running_mean"]) * scale + state[f"{norm}.bias"]
    matrix = weight.transpose(2, 3, 1, 0).reshape(-1, weight.shape[0])  # (ky, kx, in) x out
    return np.ascontiguousarray(matrix, dtype=np.float32), bias.astype(np.float32)


def _linear_from_chw(weight: np.ndarray, channels: int) -> np.ndarray:
    """A linear layer's (out, C*4*4) weight over torch's flattened (C, 4, 4) features, reordered for (4, 4, C)."""
    return weight.reshape(len(weight), channels, 4, 4).transpose(0, 2, 3, 1).reshape(len(weight), -1)


SCHEDULES = ("constant", "onecycle")


@dataclass
class AAEConfig:
    """An AAE's training configuration, every default in one place for both faces (`AAEMasker` trains with it,
    `architecture` resolves a manifest with it); torch-free, like the rest of this module."""

    gauss_dim: int = 384
    cat_dim: int = 20
    channels: int = 16
    decoder_channels: int | None = 32  # None: as many as the encoder's
    standardize_gauss: bool = True
    decoder_skip: bool = True
    epochs: int = 14
    batch_size: int = 256
    lr: float = 3e-3
    beta1: float = 0.9
    beta2: float = 0.999
    reg_lr: float = 1e-4
    adv_weight: float = 1.0
    label_smoothing: float = 0.1
    schedule: str = "onecycle"
    cat_weight: float = 0.01
    joint_adv_weight: float = 0.0
    holdout: float = 0.05
    seed: int | None = None  # None: drawn from the OS's randomness at training (`veil.training.training_seed`)
    bf16: bool = False
    #: standard deviation of Gaussian noise added to every latent number at masking time (fresh on every masking):
    #: a baseline knob of `veil report frontier`, trading the owner's reconstruction for privacy; 0: none
    latent_noise: float = 0.0


#: what a manifest written before a parameter existed meant by leaving it out (so older maskers load as trained)
UNSTATED = {"schedule": "constant", "decoder_skip": False, "cat_weight": 0.0, "joint_adv_weight": 0.0,
            "decoder_channels": None, "bf16": False, "latent_noise": 0.0}


def check_config(c: AAEConfig) -> None:
    """Types and ranges of an AAE's configuration, before any network is built: a configuration may come from a
    file, and absurd sizes would first exhaust memory. The one check of both faces (`AAEMasker.fit` and `load`, and
    `architecture` here); it is written here rather than as scikit-learn parameter constraints so that `veil mask`
    checks a manifest exactly as training does without importing scikit-learn."""
    for name, limit in (("gauss_dim", 1 << 14), ("cat_dim", 1 << 12), ("channels", 1 << 10), ("epochs", None),
                        ("batch_size", None)):
        value = getattr(c, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (limit and value > limit):
            raise VeilError(f"{name} must be an integer from 1{f' to {limit}' if limit else ' up'}, got {value!r}")
    for name in ("lr", "beta1", "beta2", "reg_lr", "adv_weight", "label_smoothing", "cat_weight", "joint_adv_weight",
                 "holdout", "latent_noise"):
        if isinstance(getattr(c, name), bool) or not isinstance(getattr(c, name), (int, float)):
            raise VeilError(f"{name} must be a number, got {getattr(c, name)!r}")
    if c.latent_noise < 0:
        raise VeilError(f"latent_noise must be >= 0, got {c.latent_noise}")
    if not (c.seed is None or isinstance(c.seed, int)) or not all(isinstance(v, bool) for v in (c.standardize_gauss, c.decoder_skip,
                                                                                 c.bf16)):
        raise VeilError("seed must be an integer or null, standardize_gauss, decoder_skip and bf16 true or false")
    if c.decoder_channels is not None and (isinstance(c.decoder_channels, bool)
                                           or not isinstance(c.decoder_channels, int)
                                           or not 1 <= c.decoder_channels <= 1 << 10):
        raise VeilError(f"decoder_channels must be an integer from 1 to 1024 or null, got {c.decoder_channels!r}")
    if c.schedule not in SCHEDULES:
        raise VeilError(f"schedule must be one of {', '.join(SCHEDULES)}, got {c.schedule!r}")
    if not 0.0 < c.holdout < 0.5:
        raise VeilError(f"holdout must be in (0, 0.5), got {c.holdout}")


def check_aae_size(array: np.ndarray) -> None:
    """The AAE is the paper's 32x32 network: other sizes are refused, with the way to resize."""
    require_size(array, IMAGE_SIZE, "the AAE masker (the paper's 32x32 network)", "; pass --size 32")


class AAECapabilities(Capabilities):
    """What both faces of a trained AAE declare alike: `veil.maskers.aae.AAEMasker`, which trains and inverts it,
    and `NumpyAAE`, which only masks."""

    method = "aae"
    fits_on_data = True
    output = "vectors"
    structure = "latent"


class NumpyAAE(AAECapabilities, MaskingFunction):
    """What `veil mask --masker DIR` masks with: a trained AAE's encoder, run by `NumpyEncoder`. It masks, names its
    fingerprint and records the latent's conformity exactly as `AAEMasker` does; it never reads the decoder, and so
    cannot invert."""

    #: every batch of `BATCH` images is computed alone, so shards that start at its multiples give the same bytes
    shard_unit = BATCH
    takes_uint8 = True

    def __init__(self, encoder: NumpyEncoder, recipe: dict | None = None):
        self.encoder, self.recipe = encoder, recipe or {}

    @classmethod
    def load(cls, directory) -> "NumpyAAE":
        """The encoder of the masker in `directory`, its checksum and fingerprint verified against the manifest."""
        from veil.maskers.files import read_manifest

        manifest = read_manifest(directory, skip=(DECODER_FILE,))
        method = manifest["method"]
        if method != cls.method:
            if method in SCHEMES.names() and SCHEMES.get(method).keyed:
                raise VeilError(f"a {method} masker masks with its secret: use --method {method} with --key-file or "
                                "--key-env", directory)
            raise VeilError(f"holds a {method!r} masker; --method aae takes an AAE masker directory", directory)
        encoder = load_encoder(Path(directory) / ENCODER_FILE, architecture(manifest["config"], directory))
        if manifest.get("fingerprint") and manifest["fingerprint"] != encoder.fingerprint:
            raise VeilError("encoder weights do not match the manifest's fingerprint", Path(directory) / ENCODER_FILE)
        return cls(encoder, public_recipe(manifest["config"]))

    @property
    def fingerprint(self) -> str:
        return self.encoder.fingerprint

    def transform(self, images) -> np.ndarray:
        return with_latent_noise(self.encoder(images), self.recipe.get("latent_noise", 0.0))

    def masked_meta(self, masked: np.ndarray) -> dict:
        from veil.metrics import latent_conformity

        g = self.encoder.gauss_dim
        return {"latent_conformity": latent_conformity(masked[:, :g], masked[:, g:]), "recipe": self.recipe}


def with_latent_noise(vectors: np.ndarray, sigma: float) -> np.ndarray:
    """`vectors` plus N(0, sigma^2) noise on every number, from fresh OS entropy (an attacker must not be able to
    replay it); `vectors` itself when sigma is 0."""
    if not sigma:
        return vectors
    return (vectors + np.random.default_rng().normal(0.0, sigma, vectors.shape)).astype(np.float32)


#: what an AAE's configuration holds that is not its recipe: the training seed (one of the run's secrets) and where
#: it ran
NOT_RECIPE = ("seed", "device")


def public_recipe(config: dict) -> dict:
    """The recipe an AAE was trained with, as a masked set records it: the algorithm, which an attacker is assumed to
    know (threat a), without the seed."""
    return {name: value for name, value in config.items() if name not in NOT_RECIPE}


def architecture(config, where) -> dict:
    """The encoder's sizes from a manifest's configuration, resolved and checked as `AAEMasker.load` does (what it
    leaves out means what `UNSTATED`, then `AAEConfig`, says)."""
    if not isinstance(config, dict):
        raise VeilError("the masker configuration is not a JSON object", where)
    try:
        resolved = AAEConfig(**{**UNSTATED, **{name: value for name, value in config.items() if name != "device"}})
        check_config(resolved)
    except (TypeError, VeilError) as exc:
        raise VeilError(f"invalid masker configuration ({exc})", where) from None
    return {name: getattr(resolved, name) for name in ("channels", "gauss_dim", "cat_dim", "standardize_gauss")}


def expected_shapes(channels: int, gauss_dim: int, cat_dim: int, standardize_gauss: bool) -> dict[str, tuple]:
    """Every tensor of `veil.models.aae.Encoder`'s state dict and its shape."""
    c, features = channels, channels * 4 * 16
    shapes = {"features.0.weight": (c, 3, 4, 4), "features.0.bias": (c,), "gauss.0.weight": (gauss_dim, features),
              "gauss.0.bias": (gauss_dim,), "cat.weight": (cat_dim, features), "cat.bias": (cat_dim,)}
    for conv, norm, out in (("features.2", "features.3", 2 * c), ("features.5", "features.6", 4 * c)):
        shapes.update({f"{conv}.weight": (out, out // 2, 4, 4), f"{conv}.bias": (out,),
                       **{f"{norm}.{k}": (out,) for k in ("weight", "bias", "running_mean", "running_var")},
                       f"{norm}.num_batches_tracked": ()})
    if standardize_gauss:
        shapes.update({f"gauss.1.{k}": (gauss_dim,) for k in ("running_mean", "running_var")},
                      **{"gauss.1.num_batches_tracked": ()})
    return shapes


def _mismatch(state: dict, shapes: dict) -> str | None:
    """What keeps `state` from fitting `shapes`, in the words torch's `load_state_dict` uses; None if it fits."""
    missing, unexpected = sorted(set(shapes) - set(state)), sorted(set(state) - set(shapes))
    if missing or unexpected:
        return f"Missing key(s): {', '.join(missing) or 'none'}; unexpected key(s): {', '.join(unexpected) or 'none'}"
    wrong = [name for name in sorted(shapes) if tuple(state[name].shape) != shapes[name]]
    if wrong:
        name = wrong[0]
        return f"size mismatch for {name}: the file has {tuple(state[name].shape)}, the model needs {shapes[name]}"
    return None


def load_encoder(path, sizes: dict) -> NumpyEncoder:
    """A NumpyEncoder of the architecture `sizes` (see `architecture`) from an `encoder.safetensors` file (checksums
    are the manifest reader's job), refused as `veil.weights.load_weights` refuses it for torch: damaged,
    non-finite, or of another architecture."""
    from safetensors.numpy import load as parse

    from veil.io.read import read_safetensors

    state = read_safetensors(path, parse, lambda t: not np.issubdtype(t.dtype, np.floating) or np.isfinite(t).all())
    problem = _mismatch(state, expected_shapes(**sizes))
    if problem:
        raise VeilError(f"weights do not fit this architecture ({problem})", path)
    return NumpyEncoder(state, sizes["standardize_gauss"])
