"""The one shape every results or benchmark JSON has: {"figures": {name: number}, "meta": {command, commit, seed,
wall_s, machine}, "config": {every hyperparameter and data size behind the figures}}, and, where a run keeps more
than numbers (per-draw rows, training histories, claim texts), "details"."""
from __future__ import annotations

import functools
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

from veil.io.write import write_json

_START = time.time()
#: what a commit named by $VEIL_SOURCE_COMMIT carries after it in `meta.commit`
COPIED_TREE = " (copied tree, VEIL_SOURCE_COMMIT)"


@functools.cache
def git_commit() -> str:
    """The commit of the checkout the code runs from, '-dirty' when the package's own source differs from it.
    Cached: the first call (the CLI makes it on start) pins the code a long run started with, and results that the
    run itself writes into the checkout do not count as changes. A copy of a clean checkout sent to another machine
    names the commit it was copied from in $VEIL_SOURCE_COMMIT, which wins over git there: such a copy may carry a
    stale .git of its own (the GPU machine's did). Outside git and without it: 'unknown'."""
    here = Path(__file__).resolve().parent
    exported = os.environ.get("VEIL_SOURCE_COMMIT", "").strip()
    if exported:
        return exported + COPIED_TREE
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    commit = out.stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "."], cwd=here,
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return commit + ("-dirty" if dirty else "")


def machine() -> str:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, {device}"


def command_line() -> str:
    return " ".join(shlex.quote(arg) for arg in ["veil", *sys.argv[1:]]) if sys.argv else "veil"


def make_meta(seed, wall_s: float | None = None, command: str | None = None, **extra) -> dict:
    return {
        "command": command or command_line(),
        "commit": git_commit(),
        "seed": seed,
        "wall_s": round(time.time() - _START if wall_s is None else wall_s, 3),
        "machine": machine(),
        **extra,
    }


def write_results(path, figures: dict, seed, config: dict, wall_s: float | None = None,
                  details: dict | None = None, **extra) -> dict:
    """Write a results JSON: `config` holds what produced the figures (never a secret), `details` what else the
    run keeps (tables, rows, histories), `extra` what a report reads beside them."""
    clean = {name: (None if value is None else float(value)) for name, value in figures.items()}
    doc = {"figures": clean, "meta": make_meta(seed, wall_s), "config": config, **extra}
    if details:
        doc["details"] = details
    write_json(path, doc)
    return doc
