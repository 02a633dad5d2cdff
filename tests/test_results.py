"""The committed results: every JSON in results/ has the one shape (figures, meta, config), and each reproduction
folder comes from one run at one clean commit, as its report says."""
from __future__ import annotations

import json
import re

import pytest

from conftest import REPO
from veil.results import COPIED_TREE

RESULTS = REPO / "results"
META = ("command", "commit", "seed", "wall_s", "machine")
#: a checkout's commit, or the one a tree copied to another machine (a GPU run) names
COMMIT = re.compile(rf"[0-9a-f]{{40}}(-dirty|{re.escape(COPIED_TREE)})?")
#: folders that `veil reproduce` writes whole: one run (its parts may be separate calls, see `one_run`), one commit
REPRODUCTIONS = {"paper": "reproduce all", "baselines": "reproduce tradeoff"}


def runs_subcommand(command: str, subcommand: str) -> bool:
    """Whether `command` is `veil [global options] SUBCOMMAND ...` (a global option such as `--threads 2` comes
    before the subcommand)."""
    return re.match(rf"veil(?: --[\w-]+(?: [^-\s]\S*)?)* {subcommand}(?: |$)", command) is not None


def result_files():
    """Every results JSON (not the hidden record of who wrote a folder's files, `veil.io.output.RECORD`)."""
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
    assert {one_run(meta["command"]) for meta in metas} == {one_run(metas[0]["command"])}
    assert runs_subcommand(metas[0]["command"], REPRODUCTIONS[folder]), metas[0]["command"]


def one_run(command: str) -> str:
    """The command with `--parts P` and `--force` left out: a run made one part per call (each call keeps its part
    when it ends, so a run longer than a session resumes) is one run if every call is otherwise the same, with the
    same --out and --work, at one commit."""
    return re.sub(r" --force(?= |$)| --parts \S+", "", command)


def test_calls_of_one_run_differ_only_in_their_parts():
    calls = "veil --threads 2 reproduce all --parts {} --out o --work w"
    assert one_run(calls.format("width")) == one_run(calls.format("table1") + " --force") == one_run(
        "veil --threads 2 reproduce all --out o --work w")
    assert one_run(calls.format("width")) != one_run(calls.format("width").replace("--out o", "--out other"))
    assert one_run(calls.format("width")) != one_run(calls.format("width") + " --quick")


def test_a_reproduction_command_is_recognised_after_global_options_only():
    assert runs_subcommand("veil --threads 2 reproduce all --out x", "reproduce all")
    assert runs_subcommand("veil reproduce tradeoff", "reproduce tradeoff")
    assert not runs_subcommand("veil reproduce table1 --out x", "reproduce all")
    assert not runs_subcommand("veil demo reproduce all", "reproduce all")
