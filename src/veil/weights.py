"""Loading safetensors weights into a torch module: the one reader that maskers and classifiers share."""
from __future__ import annotations

import torch
from safetensors.torch import load as parse_safetensors

from veil.errors import VeilError
from veil.io.read import read_safetensors


def load_weights(module: torch.nn.Module, path) -> None:
    """Load the weights in `path` into `module`.

    A damaged file, non-finite values, or tensors that do not fit the architecture are a VeilError naming the file
    and, for a changed shape or name, the tensor (torch's message runs over several lines; it is kept whole, as one).
    """
    tensors = read_safetensors(path, parse_safetensors,
                               lambda tensor: not tensor.is_floating_point() or bool(torch.isfinite(tensor).all()))
    try:
        module.load_state_dict(tensors)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise VeilError(f"weights do not fit this architecture ({_one_line(exc)})", path) from None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
