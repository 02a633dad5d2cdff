"""Defaults named once for every command and experiment: the shared data sets (relative to the working directory),
veil's cache folder and the prediction service's limits. Imports nothing of veil, so the command line can show them
cheaply."""
from __future__ import annotations

import os
from pathlib import Path

CIFAR10 = "../shared/data/cifar10-jpeg.tar.gz"
MNIST = "../shared/data/mnist"
#: `veil serve`: the most rows one request may hold, and the most bytes its body may have (enough for a full batch
#: of the default AAE's 404-wide vectors as JSON, about 80 MB, or of float32 images as .npy, 123 MB)
SERVE_MAX_BATCH = 10_000
SERVE_MAX_BODY = 128_000_000
#: `veil serve`: the most requests in progress at once (each holds at most one body), beyond which it answers 503
SERVE_MAX_CONCURRENT = 32
#: `veil serve` micro-batching (`veil.serve.batching`): the most rows of one model call, and the longest a request
#: that finds the model idle waits for others to share its call. Short, because requests that arrive during a call
#: join the next one anyway: on 2 cores with 2 workers and 16 clients of 32 rows, 2 ms gave 48,500 vectors/s, 0.5 ms
#: 63,400 and no wait 62,200 (`veil bench serve --duration 10`, httptools and uvloop)
SERVE_BATCH_ROWS = 4096
SERVE_BATCH_WAIT_S = 0.0005


def cache_dir() -> Path:
    """Decoded-array cache and output locks: $VEIL_CACHE_DIR, else $XDG_CACHE_HOME/veil, else ~/.cache/veil."""
    if os.environ.get("VEIL_CACHE_DIR"):
        return Path(os.environ["VEIL_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "veil"
