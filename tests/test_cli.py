"""The `veil` command end to end on digits, and its answers to bad input: one line, exit code 2, no output file."""
import json
import tarfile

import numpy as np
import pytest

from veil.cli import main


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(capsys, args, message, leftover=None):
    code, out, err = run(capsys, *args)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("veil: error:"), err
    assert message in err, err
    assert "Traceback" not in err
    if leftover is not None:
        assert not leftover.exists()
        assert not list(leftover.parent.glob(f".{leftover.name}*"))


@pytest.fixture(scope="module")
def masked_digits(trained_masker, tmp_path_factory):
    masker_dir, _ = trained_masker
    out = tmp_path_factory.mktemp("cli")
    assert main(["mask", "--masker", str(masker_dir), "--data", "digits", "--out", str(out / "digits.npz")]) == 0
    return out / "digits.npz"


def test_pipeline(trained_masker, masked_digits, tmp_path, capsys):
    masker_dir, _ = trained_masker
    for model in ("nn", "rf", "adaboost"):
        params = ["--epochs", "2"] if model == "nn" else ["--params", '{"n_estimators": 10}']
        assert run(capsys, "train", "--masked", masked_digits, "--model", model, "--out", tmp_path / model, *params)[0] == 0
        code, out, _ = run(capsys, "evaluate", "--model", tmp_path / model, "--masked", masked_digits,
                           "--json", tmp_path / f"{model}.json")
        assert code == 0 and "accuracy" in out
        doc = json.loads((tmp_path / f"{model}.json").read_text())
        assert set(doc["figures"]) == {"accuracy", "precision", "recall", "n"}
        assert set(doc["meta"]) >= {"command", "commit", "seed", "wall_s", "machine"}
        assert 0.0 <= doc["figures"]["accuracy"] <= 1.0 and doc["figures"]["n"] == 1797
    code, _, _ = run(capsys, "unmask", "--masker", masker_dir, "--masked", masked_digits, "--out", tmp_path / "recon",
                     "--data", "digits", "--limit", "20")
    assert code == 0 and len(list((tmp_path / "recon").glob("*.png"))) == 20
    mse = json.loads((tmp_path / "recon" / "mse.json").read_text())["figures"]
    # well below a decoder that outputs the mean image of digits, scored on the same 20 images (about 0.04)
    from veil.data import load
    from veil.metrics import reconstruction_mse

    images = load("digits").images
    mean_image_mse = reconstruction_mse(images[:20], np.broadcast_to(images.mean(axis=0), images[:20].shape))
    assert mse["n"] == 20 and mse["reconstruction_mse"] < 0.3 * mean_image_mse


def test_masked_file_holds_no_secret(masked_digits, trained_masker):
    _, masker = trained_masker
    with np.load(masked_digits, allow_pickle=False) as archive:
        assert set(archive.files) == {"data", "labels", "class_names", "meta"}
        assert archive["data"].shape == (1797, 404)
        meta = json.loads(str(archive["meta"]))
    assert meta["fingerprint"] == masker.fingerprint
    text = json.dumps(meta)  # the recipe names decoder settings (decoder_skip), never the decoder's weights or seed
    assert "decoder.safetensors" not in text and "seed" not in meta["recipe"] and len(text) < 4000


def test_mask_works_from_encoder_only_and_unmask_then_refuses(trained_masker, tmp_path, capsys):
    masker_dir, _ = trained_masker
    assert run(capsys, "export-encoder", "--masker", masker_dir, "--out", tmp_path / "enc")[0] == 0
    assert not (tmp_path / "enc" / "decoder.safetensors").exists()
    assert run(capsys, "mask", "--masker", tmp_path / "enc", "--data", "digits", "--classes", "1,7",
               "--out", tmp_path / "m.npz")[0] == 0
    assert_clean_error(capsys, ["unmask", "--masker", tmp_path / "enc", "--masked", tmp_path / "m.npz",
                                "--out", tmp_path / "r"], "no decoder", leftover=tmp_path / "r")


def test_missing_path(tmp_path, capsys, trained_masker):
    masker_dir, _ = trained_masker
    assert_clean_error(capsys, ["mask", "--masker", masker_dir, "--data", tmp_path / "nope", "--out", tmp_path / "o.npz"],
                       "no such file", leftover=tmp_path / "o.npz")


def test_corrupt_image(tmp_path, capsys, image_tree, trained_masker):
    import shutil

    masker_dir, _ = trained_masker
    shutil.copytree(image_tree / "train", tmp_path / "set")
    (tmp_path / "set" / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert_clean_error(capsys, ["mask", "--masker", masker_dir, "--data", tmp_path / "set", "--out", tmp_path / "o.npz"],
                       "broken.jpg", leftover=tmp_path / "o.npz")


def test_truncated_archive(tmp_path, capsys, tree_archives, trained_masker):
    masker_dir, _ = trained_masker
    data = tree_archives["tar.gz"].read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) // 2])
    assert_clean_error(capsys, ["mask", "--masker", masker_dir, "--data", tmp_path / "cut.tar.gz",
                                "--out", tmp_path / "o.npz"], "corrupt or truncated archive", leftover=tmp_path / "o.npz")


def test_empty_dataset(tmp_path, capsys, trained_masker):
    masker_dir, _ = trained_masker
    (tmp_path / "empty").mkdir()
    with tarfile.open(tmp_path / "empty.tar", "w"):
        pass
    for source in ("empty", "empty.tar"):
        assert_clean_error(capsys, ["mask", "--masker", masker_dir, "--data", tmp_path / source,
                                    "--out", tmp_path / "o.npz"], "empty", leftover=tmp_path / "o.npz")


def test_single_class_training(trained_masker, tmp_path, capsys):
    masker_dir, _ = trained_masker
    assert run(capsys, "mask", "--masker", masker_dir, "--data", "digits", "--classes", "3",
               "--out", tmp_path / "one.npz")[0] == 0
    assert_clean_error(capsys, ["train", "--masked", tmp_path / "one.npz", "--model", "rf", "--out", tmp_path / "rf"],
                       "single class", leftover=tmp_path / "rf")


def test_masked_file_from_another_encoder(trained_masker, masked_digits, tmp_path, capsys):
    from veil.masked import MaskedSet

    other = MaskedSet.load(masked_digits)
    other.fingerprint = "aae:" + "0" * 32
    other.save(tmp_path / "other.npz")
    assert run(capsys, "train", "--masked", masked_digits, "--model", "rf", "--out", tmp_path / "rf",
               "--params", '{"n_estimators": 5}')[0] == 0
    assert_clean_error(capsys, ["evaluate", "--model", tmp_path / "rf", "--masked", tmp_path / "other.npz",
                                "--json", tmp_path / "e.json"], "another masker", leftover=tmp_path / "e.json")


def test_unknown_class_and_bad_arguments(tmp_path, capsys, trained_masker):
    masker_dir, _ = trained_masker
    assert_clean_error(capsys, ["mask", "--masker", masker_dir, "--data", "digits", "--classes", "7,zebra",
                                "--out", tmp_path / "o.npz"], "unknown class", leftover=tmp_path / "o.npz")
    assert_clean_error(capsys, ["train", "--masked", "x.npz", "--model", "svm", "--out", tmp_path / "m"], "invalid choice")


def test_reproduce_quick_end_to_end(tmp_path, capsys):
    from conftest import SHARED_DATA

    if not (SHARED_DATA / "cifar10-jpeg.tar.gz").exists():
        pytest.skip("shared CIFAR-10 not present")
    code, out, err = run(capsys, "reproduce", "all", "--quick", "--out", tmp_path / "paper", "--work", tmp_path / "work",
                         "--data", SHARED_DATA / "cifar10-jpeg.tar.gz", "--mnist", SHARED_DATA / "mnist")
    assert code == 0, err
    table1 = json.loads((tmp_path / "paper" / "table1.json").read_text())
    for method in ("nn", "rf", "adaboost"):
        for k in (2, 3, 4):
            for metric in ("accuracy", "precision", "recall"):
                assert 0.0 <= table1["figures"][f"{method}_k{k}_{metric}"] <= 1.0
                assert f"{method}_k{k}_{metric}_std" in table1["figures"]
    assert {row["k"] for row in table1["details"]["rows"]} == {2, 3, 4}
    table2 = json.loads((tmp_path / "paper" / "table2.json").read_text())["figures"]
    assert all(0.0 <= table2[f"{m}_accuracy"] <= 1.0 for m in ("nn", "rf", "adaboost"))
    pairs = json.loads((tmp_path / "paper" / "pairs.json").read_text())
    for name in ("P", "P_stress", "T", "V"):
        assert pairs["figures"][f"{name}_matched_mse"] < pairs["figures"][f"{name}_mismatched_mse"]
    assert "reconstruction_mse" in pairs["figures"] and pairs["meta"]["commit"]
    # every hyperparameter behind each JSON: the budget, the masker's configuration, each classifier's parameters
    doc2 = json.loads((tmp_path / "paper" / "table2.json").read_text())["config"]
    assert doc2["setup"]["name"] == "quick" and doc2["masker"]["config"]["epochs"] == doc2["setup"]["epochs"]
    assert doc2["classifiers"]["rf"]["n_estimators"] == 100
    assert {"rf_depth4_accuracy", "rf_depth8_accuracy"} <= set(table2) and doc2["n_test"] < doc2["n"]
    width = json.loads((tmp_path / "paper" / "width.json").read_text())
    picked = width["details"]["picked"]
    assert picked in ([256, 128], [512, 256])
    assert width["config"]["n_fit"] + width["config"]["n_val"] + doc2["n_test"] == doc2["n"]
    # the NN of both tables uses the width chosen on validation data, not a width chosen on a test split
    table1_config = json.loads((tmp_path / "paper" / "table1.json").read_text())["config"]
    assert doc2["classifiers"]["nn"]["hidden"] == table1_config["classifiers"]["nn"]["hidden"] == picked
    assert_report_shows_our_figures(tmp_path / "paper")
    assert len(list((tmp_path / "paper").glob("fig*.png"))) == 8


def assert_report_shows_our_figures(out) -> None:
    """report.md shows, in each Table 1 row, the figures this run computed (table1.json), and the reconstruction
    MSE from pairs.json; the paper's numbers alone would not do."""
    from veil.metrics import t_interval

    report = (out / "report.md").read_text().splitlines()
    table1 = json.loads((out / "table1.json").read_text())
    figures = table1["figures"]
    names = {"nn": "Neural Network", "rf": "Random Forest", "adaboost": "Ada Boost"}
    for method, name in names.items():
        for k in (2, 3, 4):
            rows = [line for line in report if line.startswith(f"| {name} | {k} |")]
            assert len(rows) == 1, (method, k, rows)
            cells = [cell.strip() for cell in rows[0].strip("|").split("|")][2:]
            for cell, metric in zip(cells, ("accuracy", "precision", "recall"), strict=True):
                low, high = t_interval([r[f"{method}_{metric}"] for r in table1["details"]["rows"] if r["k"] == k])
                ours = (f"{figures[f'{method}_k{k}_{metric}']:.3f} ± {figures[f'{method}_k{k}_{metric}_std']:.3f} "
                        f"[{low:.3f}, {high:.3f}]")
                assert cell.split(" (")[0] == ours, (metric, ours, rows[0])
    pairs = json.loads((out / "pairs.json").read_text())["figures"]
    assert f"Reconstruction MSE of instance 0 on V: {pairs['reconstruction_mse']:.6f} " in "\n".join(report)
    from conftest import assert_claims_table_matches_claims_json

    assert_claims_table_matches_claims_json(out)

