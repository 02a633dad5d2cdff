"""Shared fixtures: tiny datasets in every supported format, and a briefly trained masker."""
from __future__ import annotations

import gzip
import json
import os
import pickle
import subprocess
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("VEIL_NO_PROGRESS", "1")
# one torch thread per test worker: the suite runs two at once, and a fixed count keeps seeded runs bitwise equal
os.environ.setdefault("VEIL_THREADS", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VEIL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def random_pixels(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def image_tree(tmp_path_factory) -> Path:
    """train/<class>/*.png and test/<class>/*.png, 3 classes, 32x32, odd modes included (`mixed_tree` has odd
    sizes)."""
    root = tmp_path_factory.mktemp("tree")
    pixels = random_pixels(24)
    for i, p in enumerate(pixels):
        split, cls = ("train" if i < 18 else "test"), ["cat", "dog", "emu"][i % 3]
        folder = root / split / cls
        folder.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(p)
        if i % 4 == 1:
            image = image.convert("L")
        elif i % 4 == 2:
            image = image.convert("RGBA")
        image.save(folder / f"{i:03d}.png")
    return root


def write_archives(folder: Path, out: Path) -> dict[str, Path]:
    """The PNGs of `folder`, sorted, packed as `out`/set.tar.gz and `out`/set.zip under their relative paths."""
    files = sorted(folder.rglob("*.png"))
    with tarfile.open(out / "set.tar.gz", "w:gz") as tar:
        for f in files:
            tar.add(f, arcname=f.relative_to(folder).as_posix())
    with zipfile.ZipFile(out / "set.zip", "w") as archive:
        for f in files:
            archive.write(f, f.relative_to(folder).as_posix())
    return {"tar.gz": out / "set.tar.gz", "zip": out / "set.zip"}


@pytest.fixture(scope="session")
def tree_archives(image_tree, tmp_path_factory) -> dict[str, Path]:
    return write_archives(image_tree, tmp_path_factory.mktemp("archives"))


@pytest.fixture(scope="session")
def cifar_folder(tmp_path_factory) -> Path:
    """A miniature CIFAR-10 python folder in the original pickle layout."""
    root = tmp_path_factory.mktemp("cifar-10-batches-py")
    rng = np.random.default_rng(1)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, f)
    for name, n in [*[(f"data_batch_{i}", 10) for i in range(1, 6)], ("test_batch", 20)]:
        batch = {b"batch_label": name.encode(), b"labels": list(rng.integers(0, 10, n)),
                 b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}
        with open(root / name, "wb") as f:
            pickle.dump(batch, f)
    return root


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.fixture(scope="session")
def mnist_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(2)
    write_idx(root / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (12, 28, 28)))
    write_idx(root / "t10k-labels-idx1-ubyte.gz", np.arange(12) % 10)
    write_idx(root / "train-images-idx3-ubyte", rng.integers(0, 256, (8, 28, 28)), compress=False)
    write_idx(root / "train-labels-idx1-ubyte", np.arange(8) % 10, compress=False)
    return root


@pytest.fixture(scope="session")
def tiny_aae():
    """A fitted AAE masker small enough to save and load in milliseconds (for tests of its files, not its quality)."""
    from veil.maskers import AAEMasker

    images = np.random.default_rng(0).random((32, 3, 32, 32), dtype=np.float32)
    return AAEMasker(gauss_dim=6, cat_dim=2, channels=4, epochs=1, batch_size=16).fit(images, progress=False)


@pytest.fixture(scope="session")
def trained_masker(tmp_path_factory):
    """An AAE masker trained briefly on half of digits (public part), saved with its decoder."""
    from veil.data import load, stratified_split
    from veil.workflows import train_masker

    digits = load("digits")
    public, _ = stratified_split(digits.labels, 0.5, 0)
    out = tmp_path_factory.mktemp("masker")
    masker = train_masker(digits.subset(public), out, epochs=2, batch_size=32, seed=0, progress=False)
    return out, masker


def pytest_configure(config):
    """One torch thread per test process: the suite runs as 2 xdist workers on 2 cores, and oversubscribed
    OpenMP threads slow everything down many times over."""
    import torch

    torch.set_num_threads(1)


def assert_claims_table_matches_claims_json(out) -> None:
    """report.md opens with the claims table, and each row's status is the one claims.json holds."""
    claims = json.loads((out / "claims.json").read_text())
    report = (out / "report.md").read_text().splitlines()
    first = next(i for i, line in enumerate(report) if line.startswith("## "))
    assert "claims" in report[first]
    rows = [line for line in report if line.startswith("| ") and "**" in line]
    assert len(rows) == len(claims["details"]["claims"]) > 0
    for row, claim in zip(rows, claims["details"]["claims"]):
        held = claims["figures"][f"claim_{claim['name']}_held"]
        assert f"**{claim['status']}**" in row
        expected = {None: "not testable here", 1.0: "held", 0.0: "NOT HELD"}[held]
        assert claim["status"].startswith(expected)


def wait_healthy(http, server: subprocess.Popen, timeout: float = 60.0) -> None:
    """Return once `veil serve` in `server` answers GET /health on `http` (an httpx.Client); fail the test if the
    process exits or `timeout` passes first."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if http.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail("veil serve never answered /health")
