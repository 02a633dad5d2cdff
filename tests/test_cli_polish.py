"""The command line's surface: --version, help on every option, choices from the registries, --help and argument
errors without torch, --limit, --quiet and `reproduce list`."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import veil
from veil.cli import build_parser, main
from veil.registry import ARCHITECTURES, ATTACKS, CLASSIFIERS, MASKERS, PROTOCOLS

SRC = str(Path(veil.__file__).resolve().parents[1])


def _python(code: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                          cwd=cwd)


def _subparsers(parser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _option(parser, flag: str) -> argparse.Action:
    return next(a for a in parser._actions if flag in a.option_strings or a.dest == flag)


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"veil {veil.__version__}"


HEAVY = ("torch", "sklearn", "scipy", "skimage", "matplotlib", "fastapi", "uvicorn", "httpx")


def _heavy_modules_after(argv, cwd=None) -> list[str]:
    done = _python(f"import sys\nfrom veil.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
                   f"print([name for name in {HEAVY!r} if name in sys.modules])", cwd=cwd)
    assert done.returncode == 0, done.stderr
    return eval(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], ["mask", "--help"], ["train", "--help"], ["reproduce", "--help"],
                                  ["train", "--model", "svm", "--masked", "m.npz", "--out", "o"], ["serve", "--help"],
                                  ["serve", "--model", "m", "--port", "70000"], ["bench", "serve", "--help"]])
def test_help_and_argument_errors_import_nothing_heavy(argv):
    assert _heavy_modules_after(argv) == []


@pytest.mark.parametrize("method", ["etc", "pe", "blur", "randfilter", "iidfilter"])
def test_keyed_and_filter_masking_import_nothing_heavy(method, image_tree, tmp_path, monkeypatch):
    """`veil mask` with a scheme that needs no training uses its NumPy-only form (veil.schemes): no scikit-learn,
    SciPy, torch, scikit-image or matplotlib, though the estimators are scikit-learn's (issue 12)."""
    monkeypatch.setenv("VEIL_TEST_KEY", "0" * 64)
    key = ["--key-env", "VEIL_TEST_KEY"] if method != "blur" else []
    argv = ["mask", "--method", method, *key, "--data", str(image_tree), "--split", "test",
            "--out", str(tmp_path / "m.npz")]
    assert _heavy_modules_after(argv, cwd=tmp_path) == []
    assert (tmp_path / "m.npz").exists()


def test_every_option_has_help():
    missing = [f"{name} {'/'.join(action.option_strings) or action.dest}"
               for name, parser in _subparsers(build_parser()).items() for action in parser._actions
               if not action.help]
    assert missing == []


def test_choices_come_from_the_registries():
    commands = _subparsers(build_parser())
    assert _option(commands["mask"], "--method").choices == MASKERS.names()
    assert _option(commands["train"], "--model").choices == CLASSIFIERS.names()
    assert _option(commands["attack"], "--method").choices == ATTACKS.names()
    assert set(PROTOCOLS.names()) <= set(_option(commands["reproduce"], "name").choices)


@pytest.mark.parametrize("registry", [MASKERS, CLASSIFIERS, ARCHITECTURES, ATTACKS, PROTOCOLS], ids=lambda r: r.kind)
def test_registries_declare_exactly_what_their_modules_register(registry):
    for name in registry.names():
        registry.get(name)
    assert sorted(registry.entries) == registry.names()


def test_reproduce_lists_its_parts(capsys):
    assert main(["reproduce", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("all") and "table1, table2, pairs" in line for line in lines)
    assert any(line.startswith("tradeoff") and "convmixer" in line for line in lines)
    assert main(["reproduce", "tradeoff", "--parts", "list"]) == 0
    assert capsys.readouterr().out.startswith("tradeoff")


@pytest.fixture()
def keyed_digits(tmp_path, capsys):
    key = tmp_path / "key"
    assert main(["keygen", "--out", str(key)]) == 0
    masked = tmp_path / "etc.npz"
    assert main(["mask", "--method", "etc", "--key-file", str(key), "--data", "digits", "--limit", "30",
                 "--out", str(masked)]) == 0
    capsys.readouterr()
    return masked


def test_mask_limit(keyed_digits):
    from veil.masked import MaskedSet

    masked = MaskedSet.load(keyed_digits)
    assert len(masked) == 30 and masked.meta["n"] == 30


def test_train_limit(keyed_digits, tmp_path, capsys):
    assert main(["--quiet", "train", "--masked", str(keyed_digits), "--model", "rf", "--limit", "20",
                 "--params", '{"n_estimators": 3}', "--out", str(tmp_path / "rf")]) == 0
    assert "trained on 20 masked samples" in capsys.readouterr().out


def test_train_preset_is_a_recipe_that_params_override(keyed_digits, tmp_path, capsys):
    assert main(["--quiet", "train", "--masked", str(keyed_digits), "--model", "nn", "--preset", "paper",
                 "--epochs", "1", "--params", '{"hidden": [8, 8]}', "--out", str(tmp_path / "nn")]) == 0
    params = json.loads((tmp_path / "nn" / "model.json").read_text())["params"]
    assert (params["batch_size"], params["schedule"], params["epochs"], params["hidden"]) == (4, "constant", 1, [8, 8])
    assert main(["train", "--masked", str(keyed_digits), "--model", "adaboost", "--preset", "paper",
                 "--out", str(tmp_path / "adaboost")]) == 2
    assert "adaboost has no preset 'paper' (presets: none)" in capsys.readouterr().err


def test_train_masker_limit_and_quiet(tmp_path, capsys):
    assert main(["train-masker", "--data", "digits", "--limit", "40", "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "m")]) == 0
    assert json.loads((tmp_path / "m" / "training.json").read_text())["config"]["n_images"] == 40
    captured = capsys.readouterr()
    assert "\r" not in captured.err and "seed you gave" not in captured.out
    assert main(["train-masker", "--data", "digits", "--limit", "40", "--epochs", "1", "--quiet", "--seed", "731947",
                 "--out", str(tmp_path / "typed")]) == 0
    out = capsys.readouterr().out  # the seed is a secret: named, never printed
    assert "the --seed you gave is now as secret as the folder" in out and "731947" not in out


def test_mask_refuses_an_option_the_method_does_not_take(tmp_path, capsys):
    assert main(["mask", "--method", "blur", "--seed", "3", "--block", "4", "--data", "digits",
                 "--out", str(tmp_path / "m.npz")]) == 2
    assert "blur takes --kernel, not --block, --seed" in capsys.readouterr().err
    assert not (tmp_path / "m.npz").exists()


def test_one_entry_point_masks_with_every_method(tmp_path, trained_masker, monkeypatch):
    """`veil mask` reaches `workflows.mask` for every method, and only it writes the file."""
    import veil.workflows as workflows

    calls = []
    real = workflows.mask
    monkeypatch.setattr(workflows, "mask", lambda *a, **k: calls.append(k["method"]) or real(*a, **k))
    from veil.data import load
    from veil.maskers.obfuscator import ObfuscatorMasker

    monkeypatch.setenv("VEIL_KEY", "a passphrase of 16 bytes or more")
    obfuscator = tmp_path / "obfuscator"
    ObfuscatorMasker(latent_dim=8, epochs=1, adversaries=1, batch_size=16).fit(
        load("digits").subset(slice(0, 40)), progress=False).save(obfuscator)
    # the trained maskers' folders (the keyed AAE's is the AAE it shares), then the key of the keyed ones
    folders = {"aae": trained_masker[0], "aae-keyed": trained_masker[0], "obfuscator": obfuscator}
    for method in MASKERS.names():
        source = (["--masker", str(folders[method])] if method in folders else []) + (
            ["--key-env", "VEIL_KEY"] if MASKERS.get(method).keyed else [])
        assert main(["mask", "--method", method, *source, "--data", "digits", "--limit", "8",
                     "--out", str(tmp_path / f"{method}.npz")]) == 0
    assert calls == MASKERS.names()
    assert np.all([(tmp_path / f"{m}.npz").exists() for m in MASKERS.names()])


def test_bench_startup_times_help_and_an_error(tmp_path):
    import json

    from veil.cli import main

    assert main(["bench", "startup", "--json", str(tmp_path / "startup.json"), "--repeats", "1"]) == 0
    doc = json.loads((tmp_path / "startup.json").read_text())
    assert set(doc["figures"]) == {"help_s", "error_s"} and all(v > 0 for v in doc["figures"].values())
    assert doc["config"]["repeats"] == 1 and doc["config"]["cases"]["help_s"] == ["veil", "--help"]


def test_bench_mask_runs_whole_processes_on_the_test_split(tree_archives, tmp_path):
    import json

    from veil.cli import main

    out = tmp_path / "mask.json"
    assert main(["bench", "mask", "--data", str(tree_archives["tar.gz"]), "--json", str(out), "--repeats", "2"]) == 0
    doc = json.loads(out.read_text())
    assert set(doc["figures"]) == {"mask_cold_images_per_s", "mask_warm_images_per_s", "etc_folder_10k_s",
                                   "peak_rss_mb"}
    assert all(value > 0 for value in doc["figures"].values())
    assert doc["config"]["images"] == 6  # the fixture's test split, not its train split
    runs = doc["config"]["runs"]
    assert [len(runs[name]) for name in ("cold_s", "warm_s", "etc_s")] == [2, 2, 2]
    assert doc["figures"]["mask_warm_images_per_s"] == 6 / min(runs["warm_s"])  # the best run counts


def test_bench_train_times_and_scores_each_classifier(cifar_folder, trained_masker, tmp_path):
    out = tmp_path / "train.json"
    assert main(["--quiet", "bench", "train", "--data", str(cifar_folder), "--masker", str(trained_masker[0]),
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    runs = ("nn", "nn_paper", "rf", "adaboost")
    assert set(doc["figures"]) == {f"{run}_{figure}" for run in runs
                                   for figure in ("s", "accuracy", "accuracy_low", "accuracy_high")}
    for run in runs:
        figures = [doc["figures"][f"{run}_{name}"] for name in ("accuracy_low", "accuracy", "accuracy_high")]
        assert doc["figures"][f"{run}_s"] > 0 and 0 <= figures[0] <= figures[1] <= figures[2] <= 1
    config = doc["config"]
    assert (config["train_vectors"], config["test_vectors"]) == (50, 20)  # the fixture's splits, whole
    assert config["masker"]["dir"] == str(trained_masker[0])
    nn, paper = config["classifiers"]["nn"], config["classifiers"]["nn_paper"]
    assert (nn["preset"], paper["preset"], paper["batch_size"]) == (None, "paper", 4)


def test_bench_train_masker_refuses_an_unknown_parameter_before_any_output(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(["bench", "train-masker", "--data", "digits", "--json", str(out), "--params", '{"bogus": 1}']) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid masker configuration" in err and "bogus" in err
    assert not out.exists()
