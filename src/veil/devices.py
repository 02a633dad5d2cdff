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
    """CUDA when present (or asked for), else CPU; in a process group (`veil.distributed`), each process on a
    machine takes the GPU of its local rank. Also sets the CPU thread count, once per process."""
    configure_threads()
    if device and device.startswith("cuda") and not torch.cuda.is_available():
        raise VeilError(f"device {device!r} asked for but CUDA is not available")
    chosen = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if chosen.type == "cuda" and chosen.index is None and _in_process_group():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return chosen


def _in_process_group() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()
