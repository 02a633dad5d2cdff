"""Writing one file safely: atomically (never a half-written file that looks complete), and owner-only where
it holds a secret."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from veil.errors import VeilError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block finishes.

    An interrupted or failing writer therefore never leaves a file that looks complete.
    """
    path = Path(path)
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=parent)
    except OSError as exc:
        raise VeilError(f"cannot write here ({exc.strerror or exc})", path) from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise VeilError(f"cannot write ({exc.strerror or exc})", path) from None
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def write_json(path, obj) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n").encode())


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def save_npz(path, **arrays) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


PRIVATE_FILE, PRIVATE_DIR = 0o600, 0o700


def make_private(path) -> Path:
    """Owner-only access (0600 for a file, 0700 for a folder): for decoders, checkpoints, keys and the folders
    that hold them. Every secret goes through here, so there is one place that decides the modes."""
    path = Path(path)
    try:
        os.chmod(path, PRIVATE_DIR if path.is_dir() else PRIVATE_FILE)
    except OSError as exc:
        raise VeilError(f"cannot restrict permissions ({exc.strerror or exc})", path) from None
    return path


def private_dir(path) -> Path:
    """Create `path` (and missing parents) if needed; the folder itself ends up 0700."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    except OSError as exc:
        raise VeilError(f"cannot create folder ({exc.strerror or exc})", path) from None
    return make_private(path)
