"""Reading artifacts safely: every failure a VeilError naming the file, checksums, and .npz without pickle."""
from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from veil.errors import VeilError


def read_error(exc: OSError, path) -> VeilError:
    """The one wording for a file that cannot be opened: missing, a dangling or looping link, no permission."""
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return VeilError("dangling symlink (its target does not exist)", path)
    reasons = {errno.ENOENT: "not found (no such file or directory)",
               errno.ELOOP: "symlink loop (too many levels of symbolic links)",
               errno.EACCES: "cannot read (permission denied)", errno.EPERM: "cannot read (operation not permitted)",
               errno.EISDIR: "is a directory, not a file", errno.ENOTDIR: "a part of this path is not a directory"}
    return VeilError(reasons.get(exc.errno, f"cannot read ({exc.strerror or exc})"), path)


def open_for_reading(path):
    """open(path, "rb"), with any failure a VeilError naming the file."""
    try:
        return open(path, "rb")
    except OSError as exc:
        raise read_error(exc, path) from None


def read_bytes(path) -> bytes:
    with open_for_reading(path) as handle:
        try:
            return handle.read()
        except OSError as exc:
            raise read_error(exc, path) from None


def read_safetensors(path, parse, finite) -> dict:
    """The tensors of a safetensors file, parsed by `parse` (safetensors' torch or NumPy `load`), each checked by
    `finite(tensor)`: a damaged file or a NaN/infinite tensor is a VeilError naming the file."""
    try:
        tensors = parse(read_bytes(path))
    except VeilError:
        raise
    except Exception as exc:  # the safetensors parser raises its own error types on a damaged header
        raise VeilError(f"not a valid safetensors file ({' '.join(str(exc).split())})", path) from None
    for name, tensor in tensors.items():
        if not finite(tensor):
            raise VeilError(f"tensor {name!r} holds NaN or infinite values", path)
    return tensors


def read_json(path) -> dict:
    path = Path(path)
    try:
        obj = json.loads(read_bytes(path).decode("utf-8"))
    except UnicodeDecodeError:
        raise VeilError("not valid JSON (not UTF-8 text)", path) from None
    except json.JSONDecodeError as exc:
        raise VeilError(f"not valid JSON ({exc})", path) from None
    except RecursionError:
        raise VeilError("not valid JSON (nested too deeply)", path) from None
    if not isinstance(obj, dict):
        raise VeilError("expected a JSON object", path)
    return obj


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open_for_reading(path) as handle:
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


#: the first bytes of a zip archive (an .npz is one): a local file header, or the end record of an empty archive
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def load_npz(path) -> dict[str, np.ndarray]:
    """Load every array of an .npz without ever unpickling (object arrays are refused)."""
    path = Path(path)
    with open_for_reading(path) as handle:
        if handle.read(4) not in ZIP_MAGIC:
            raise VeilError("not an .npz file (it is not a zip archive)", path)
        handle.seek(0)
        return _npz_arrays(handle, path)


def _npz_arrays(handle, path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(handle, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise VeilError("contains object arrays, which are refused (they would need pickle)", path) from None
        raise VeilError(f"not a valid .npz file ({exc})", path) from None
    except Exception as exc:  # zipfile, zlib and numpy's header parser raise many types on damaged files
        raise VeilError(f"not a valid .npz file ({type(exc).__name__}: {exc})", path) from None


def string_list(array: np.ndarray, name: str, path) -> list[str]:
    """A 1-D array of strings from an .npz (class names) as a list; any other shape or type is refused."""
    if array.ndim != 1 or array.dtype.kind not in "US":
        raise VeilError(f"'{name}' must be a list of strings, got {array.dtype} {array.shape}", path)
    return [str(item) for item in array]

