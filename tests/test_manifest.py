"""One manifest helper for maskers and classifiers: each manifest is read once on load, and verified."""
from __future__ import annotations

import numpy as np
import pytest

import veil.manifest
from veil.errors import VeilError


@pytest.fixture()
def reads(monkeypatch):
    """The manifest files read, in order."""
    seen = []
    real = veil.manifest.read_json
    monkeypatch.setattr(veil.manifest, "read_json", lambda path: seen.append(path.name) or real(path))
    return seen


def test_a_masker_manifest_is_read_once(tmp_path, reads):
    from veil.maskers import load_masker, masker_class

    masker_class("blur")(kernel=3).save(tmp_path / "blur")
    assert load_masker(tmp_path / "blur").kernel == 3
    assert reads == ["manifest.json"]


def test_a_classifier_manifest_is_read_once_and_verified(tmp_path, reads):
    from veil.classifiers import classifier_class, load_classifier

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 5)).astype(np.float32), np.arange(40) % 2
    classifier_class("rf")(n_estimators=3).fit(X, y).save(tmp_path / "rf")
    assert load_classifier(tmp_path / "rf").predict(X).shape == (40,)
    assert reads == ["model.json"]
    weights = next(p for p in (tmp_path / "rf").iterdir() if p.name != "model.json")
    weights.write_bytes(weights.read_bytes() + b"x")
    with pytest.raises(VeilError, match="checksum mismatch"):
        load_classifier(tmp_path / "rf")
