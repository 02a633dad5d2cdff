"""Safe artifact input/output: atomic writes, checksums, JSON, and pickle-free loading helpers."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
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


def read_json(path) -> dict:
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise VeilError("not valid JSON (not UTF-8 text)", path) from None
    except FileNotFoundError:
        raise VeilError("file not found", path) from None
    except OSError as exc:
        raise VeilError(f"cannot read ({exc.strerror or exc})", path) from None
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VeilError(f"not valid JSON ({exc})", path) from None
    if not isinstance(obj, dict):
        raise VeilError("expected a JSON object", path)
    return obj


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path, expected: str) -> None:
    """Refuse a file whose content is not the one the manifest recorded (tampered or truncated)."""
    path = Path(path)
    if not path.is_file():
        raise VeilError("file listed in the manifest is missing", path)
    if sha256_file(path) != expected:
        raise VeilError("checksum mismatch: the file was modified or truncated", path)


def load_npz(path) -> dict[str, np.ndarray]:
    """Load every array of an .npz without ever unpickling (object arrays are refused)."""
    path = Path(path)
    if not path.exists():
        raise VeilError("file not found", path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise VeilError("contains object arrays, which are refused (they would need pickle)", path) from None
        raise VeilError(f"not a valid .npz file ({exc})", path) from None
    except (OSError, EOFError, KeyError) as exc:
        raise VeilError(f"not a valid .npz file ({exc})", path) from None
    except Exception as exc:  # zipfile.BadZipFile and friends
        raise VeilError(f"not a valid .npz file ({type(exc).__name__}: {exc})", path) from None


def save_npz(path, **arrays) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a fresh temporary directory beside `path`; it replaces `path` only if the block finishes."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    except OSError as exc:
        raise VeilError(f"cannot write here ({exc.strerror or exc})", path) from None
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise VeilError(f"cannot write ({exc.strerror or exc})", path) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
