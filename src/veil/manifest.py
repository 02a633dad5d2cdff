"""The manifest of a saved masker or classifier directory: one JSON file naming its format, its fields and the
sha256 of every file beside it. Writing and verifying are the same for both; only the fields differ.

Loading reads the manifest once (`read_manifest`) and verifies the files it lists, so a tampered or truncated
file is refused before anything is built from it.
"""
from __future__ import annotations

from pathlib import Path

from veil.errors import VeilError
from veil.io.read import read_json, sha256_file, verify_sha256
from veil.io.write import write_json


def write_manifest(path, fmt: str, fields: dict, files=()) -> None:
    """`path`: `{"format": fmt, **fields, "files": {name: sha256}}` for the `files` beside it."""
    path = Path(path)
    write_json(path, {"format": fmt, **fields, "files": {name: sha256_file(path.parent / name) for name in files}})


def refuse_unfinished(directory, name: str, command: str) -> None:
    """A training folder a killed or interrupted run left (checkpoints, no manifest yet) is named as such, with
    the command that finishes it, rather than as a missing manifest."""
    directory = Path(directory)
    if not (directory / name).exists() and (directory / "checkpoints").is_dir():
        raise VeilError(f"is an incomplete `veil {command}` run (interrupted before it finished; no {name}); finish "
                        f"it with `veil {command} --resume --out {directory} ...` and the same other options",
                        directory)


def open_manifest(directory, name: str, fields: dict[str, type], what: str, command: str) -> dict:
    """Read `directory/name` and check that each of `fields` has its type and that `files` lists plain names.

    `what` names the directory in errors ("masker"), `command` is the one that trains it (for an unfinished run)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise VeilError(f"{what} directory not found", directory)
    refuse_unfinished(directory, name, command)
    path = directory / name
    manifest = read_json(path)
    for key, kind in fields.items():
        if not isinstance(manifest.get(key), kind):
            raise VeilError(f"{what} manifest lacks {key!r} (or it is not a {kind.__name__})", path)
    _listed_files(manifest.get("files"), path)
    return manifest


def verify_files(directory, manifest: dict, skip=(), missing_ok: bool = False) -> None:
    """Check the sha256 of every file the manifest lists. Files in `skip` are not needed and not read; with
    `missing_ok`, an absent file is left to the caller (an exported encoder has no decoder)."""
    directory = Path(directory)
    for file, digest in manifest["files"].items():
        if file not in skip and not (missing_ok and not (directory / file).exists()):
            verify_sha256(directory / file, digest)


def _listed_files(files, manifest_path) -> dict:
    """A manifest's `files`: plain file names (nothing that leads out of the folder) mapped to sha256 strings."""
    if not isinstance(files, dict):
        raise VeilError("manifest 'files' is not a JSON object", manifest_path)
    for name, digest in files.items():
        if not isinstance(digest, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
            raise VeilError(f"manifest lists {name!r}, which is not a file name with its sha256", manifest_path)
    return files
