"""A masker directory's manifest (format veil-masker/1): the method, its configuration, the sha256 of every file
and the fingerprint. Reading one imports nothing heavier than the standard library, so `veil mask` can open a
trained masker without scikit-learn or torch."""
from __future__ import annotations

from pathlib import Path

from veil import __version__, manifest

MANIFEST = "manifest.json"


def write_manifest(directory, method: str, config: dict, files: list[str], **extra) -> None:
    fields = {"veil_version": __version__, "method": method, "config": config, **extra}
    manifest.write_manifest(Path(directory) / MANIFEST, "veil-masker/1", fields, files)


def refuse_unfinished(directory, command: str = "train-masker") -> None:
    manifest.refuse_unfinished(directory, MANIFEST, command)


def open_masker_manifest(directory) -> dict:
    return manifest.open_manifest(directory, MANIFEST, {"method": str, "config": dict}, "masker", "train-masker")


def read_manifest(directory, skip: tuple[str, ...] = (), opened: dict | None = None) -> dict:
    """Read and verify a masker manifest; files named in `skip` are not needed and not checked. `opened`: the
    manifest already read (by `load_masker`), so that it is not read twice."""
    opened = open_masker_manifest(directory) if opened is None else opened
    manifest.verify_files(directory, opened, skip, missing_ok=True)
    return opened
