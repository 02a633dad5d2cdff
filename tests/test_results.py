"""The committed results: every JSON in results/ has the one shape (figures, meta, config), and each reproduction
folder comes from one run at one clean commit, as its report says."""
from __future__ import annotations

import json
import re

import pytest

from conftest import REPO

RESULTS = REPO / "results"
META = ("command", "commit", "seed", "wall_s", "machine")
COMMIT = re.compile(r"[0-9a-f]{40}(-dirty)?")
#: folders that `veil reproduce` writes whole: one call, one commit
REPRODUCTIONS = {"paper": "veil reproduce all", "baselines": "veil reproduce tradeoff"}


def result_files():
    """Every results JSON (not the hidden record of who wrote a folder's files, `veil.io.RECORD`)."""
    return sorted(path for path in RESULTS.rglob("*.json") if not path.name.startswith("."))


@pytest.mark.parametrize("path", result_files(), ids=lambda p: str(p.relative_to(RESULTS)))
def test_every_results_json_has_figures_meta_and_config(path):
    doc = json.loads(path.read_text())
    assert {"figures", "meta", "config"} <= set(doc), f"{path.name} lacks {({'figures', 'meta', 'config'} - set(doc))}"
    assert all(value is None or isinstance(value, (int, float)) for value in doc["figures"].values())
    assert set(META) <= set(doc["meta"]) and COMMIT.fullmatch(doc["meta"]["commit"])
    assert isinstance(doc["config"], dict)


@pytest.mark.parametrize("folder", sorted(REPRODUCTIONS))
def test_each_reproduction_comes_from_one_run_at_a_clean_commit(folder):
    metas = [json.loads(path.read_text())["meta"] for path in result_files() if path.parent == RESULTS / folder]
    assert metas
    assert {meta["commit"] for meta in metas} == {metas[0]["commit"]} and not metas[0]["commit"].endswith("-dirty")
    assert {meta["command"] for meta in metas} == {metas[0]["command"]}
    assert metas[0]["command"].startswith(REPRODUCTIONS[folder])
