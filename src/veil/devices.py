"""Where torch work runs, and on how many threads. Kept apart from `veil.training` so that masking with a trained
AAE does not import the training stack (Ignite)."""
from __future__ import annotations

import functools
import os

import torch

from veil.errors import VeilError
from veil.threads import ENV as THREADS_ENV, chosen_threads


@functools.cache
def configure_threads() -> int:
    """Set torch's thread count once per process (see `veil.threads`: VEIL_THREADS, else the idle cores)."""
    threads = chosen_threads()
    torch.set_num_threads(threads)
    return threads


def fix_threads(threads: int) -> None:
    """A worker process's own thread count (a pool initializer): explicit, so `configure_threads` keeps it."""
    os.environ[THREADS_ENV] = str(threads)
    configure_threads.cache_clear()
    configure_threads()


def pick_device(device: str | None = None) -> torch.device:
    """CUDA when present (or asked for), else CPU. Also sets the CPU thread count, once per process."""
    configure_threads()
    if device:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise VeilError(f"device {device!r} asked for but CUDA is not available")
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
