"""Default locations: the shared data sets (relative to the working directory) and veil's cache folder, named
once for every command and experiment. Imports nothing of veil, so the command line can show them cheaply."""
from __future__ import annotations

import os
from pathlib import Path

CIFAR10 = "../shared/data/cifar10-jpeg.tar.gz"
MNIST = "../shared/data/mnist"


def cache_dir() -> Path:
    """Decoded-array cache and output locks: $VEIL_CACHE_DIR, else $XDG_CACHE_HOME/veil, else ~/.cache/veil."""
    if os.environ.get("VEIL_CACHE_DIR"):
        return Path(os.environ["VEIL_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "veil"
