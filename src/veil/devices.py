"""Where torch work runs. Kept apart from `veil.training` so that masking with a trained AAE does not import the
training stack (Ignite)."""
from __future__ import annotations

import torch

from veil.errors import VeilError


def pick_device(device: str | None = None) -> torch.device:
    """CUDA when present (or asked for), else CPU."""
    if device:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise VeilError(f"device {device!r} asked for but CUDA is not available")
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
