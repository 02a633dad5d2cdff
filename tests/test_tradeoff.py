"""`veil reproduce tradeoff --quick` on digits: the contract figure names, results shape and report."""
from __future__ import annotations

import json

import numpy as np
import pytest

from veil.cli import main
from veil.experiments import protocol
from veil.data import ImageSet
from veil.experiments.manolakos.tradeoff import CURVES, DOCS, baseline_claims, example_images
from veil.metrics import t_interval


def test_quick_tradeoff_writes_the_contract_figures(tmp_path):
    work = tmp_path / "work"
    figures = protocol("tradeoff")(tmp_path, quick=True, seed=0, data="digits", parts="convmixer,scramble", jobs=2,
                                   work=str(work))
    convmixer = json.loads((tmp_path / "convmixer_etc.json").read_text())
    assert set(convmixer["figures"]) == {"plain_accuracy", "etc_accuracy", "ratio", "epochs"}
    assert convmixer["figures"]["ratio"] == convmixer["figures"]["etc_accuracy"] / convmixer["figures"]["plain_accuracy"]
    assert {"command", "commit", "seed", "wall_s", "machine"} <= set(convmixer["meta"])
    scramble = json.loads((tmp_path / "scramble.json").read_text())["figures"]
    assert {"cnn_plain_accuracy", "cnn_scramble8_accuracy", "descrambler_scramble8_accuracy"} <= set(scramble)
    assert figures["convmixer/epochs"] == 1
    report = (tmp_path / "report.md").read_text()
    assert "convmixer_etc.json" in report and "scramble.json" in report
    from conftest import assert_claims_table_matches_claims_json

    assert_claims_table_matches_claims_json(tmp_path)
    claims = json.loads((tmp_path / "claims.json").read_text())["figures"]
    assert claims["claim_etc_ratio_held"] in (0.0, 1.0)  # convmixer ran: testable
    assert claims["claim_iid_drop_held"] is None  # curves did not run: not testable here
    assert (tmp_path / "examples.png").stat().st_size > 0
    # every run checkpointed under --work; a second call resumes the finished runs and scores the same weights
    [log] = work.glob("quick-seed0-*/convmixer/etc/training_log.json")
    written = log.stat().st_mtime_ns
    again = protocol("tradeoff")(tmp_path / "again", quick=True, seed=0, data="digits", parts="convmixer", work=str(work))
    assert again["convmixer/ratio"] == figures["convmixer/ratio"]
    assert log.stat().st_mtime_ns == written  # not trained again


def test_a_forced_run_of_some_parts_continues_the_report_folder(tmp_path):
    out = tmp_path / "out"
    args = ["reproduce", "tradeoff", "--quick", "--data", "digits", "--work", str(tmp_path / "work"), "--out", str(out)]
    assert main([*args, "--parts", "convmixer"]) == 0
    convmixer = (out / "convmixer_etc.json").read_bytes()
    assert main([*args, "--parts", "jpeg", "--force"]) == 0
    assert (out / "convmixer_etc.json").read_bytes() == convmixer and (out / "jpeg.json").exists()
    report = (out / "report.md").read_text()
    assert "## convmixer_etc.json" in report and "## jpeg.json" in report
    claims = json.loads((out / "claims.json").read_text())["figures"]
    assert claims["claim_etc_ratio_held"] is not None and claims["claim_jpeg85_ratio_held"] is not None
    # --parts report runs nothing: the report is written again from the JSONs already in the folder
    (out / "report.md").write_text("an old report")
    (out / "notes.txt").write_text("mine")  # copied in for the run to see, but not made the run's
    assert main([*args, "--parts", "report", "--force"]) == 0
    assert (out / "report.md").read_text() == report
    assert (out / "convmixer_etc.json").read_bytes() == convmixer
    assert json.loads((out / ".veil-outputs.json").read_text()) == {"reproduce tradeoff": [
        "claims.json", "convmixer_etc.json", "examples.png", "jpeg.json", "report.md"]}


def test_the_report_shows_what_other_commands_wrote_into_its_folder(tmp_path):
    out = tmp_path / "out"
    args = ["reproduce", "tradeoff", "--quick", "--data", "digits", "--work", str(tmp_path / "work"), "--out", str(out),
            "--parts", "report"]
    assert main(args) == 0
    assert main(["bench", "encrypt", "--data", "digits", "--classes", "0", "--repeats", "1", "--json",
                 str(out / "bench_encrypt.json")]) == 0
    assert main(["compress-report", "--data", "digits", "--classes", "0", "--out", str(out), "--force"]) == 0
    assert main([*args, "--force"]) == 0
    report = (out / "report.md").read_text()
    assert "## bench_encrypt.json" in report and "## compress.json" in report and "178 images" in report


def test_the_compress_part_makes_the_compressibility_claims_testable(tmp_path):
    from veil.data import load
    from veil.experiments.kiya2022.compress import compress_into
    from veil.keyfiles import experiment_secret

    figures = protocol("tradeoff")(tmp_path, quick=True, data="digits", parts="compress", seeds=(2, 5),
                                   work=str(tmp_path / "work"))
    doc = json.loads((tmp_path / "compress.json").read_text())
    assert doc["config"]["images"] == doc["figures"]["images"] == 1797  # all of digits, not a split or a subset
    assert doc["config"]["data"] == "digits" and doc["meta"]["seed"] == 2
    assert figures["compress/etc_jpeg85_mb"] == doc["figures"]["etc_jpeg85_mb"]
    # under the first seed's stand-in key, as `veil compress-report --seed 2` would encrypt
    alone = compress_into(tmp_path / "alone", load("digits"), experiment_secret(2), 2, schemes=("etc",))
    assert alone["etc_png_mb"] == doc["figures"]["etc_png_mb"]
    claims = json.loads((tmp_path / "claims.json").read_text())["figures"]
    for quality in (85, 80):
        assert claims[f"claim_compress{quality}_same_held"] in (0.0, 1.0)
        assert claims[f"claim_compress{quality}_saving_held"] in (0.0, 1.0)
    assert "compress not run" not in (tmp_path / "report.md").read_text()


def test_reproduce_refuses_options_a_protocol_does_not_take(tmp_path, capsys):
    assert main(["reproduce", "tradeoff", "--out", str(tmp_path), "--masker", "m"]) == 2
    assert "reproduce tradeoff takes no --masker" in capsys.readouterr().err
    assert main(["reproduce", "tradeoff", "--out", str(tmp_path), "--jobs", "0"]) == 2
    assert main(["reproduce", "table1", "--out", str(tmp_path), "--jobs", "2"]) == 2
    assert not any(tmp_path.iterdir())


def test_three_seeds_aggregate_with_t_intervals_and_share_the_jpeg_reference(tmp_path):
    work = tmp_path / "work"
    protocol("tradeoff")(tmp_path, quick=True, data="digits", parts="convmixer,jpeg", seeds=(0, 1, 2), work=str(work))
    doc = json.loads((tmp_path / "convmixer_etc.json").read_text())
    f = doc["figures"]
    assert doc["config"]["seeds"] == [0, 1, 2] and doc["meta"]["seed"] == [0, 1, 2] and f["epochs"] == 1
    for name in ("plain_accuracy", "etc_accuracy", "ratio"):
        values = [f[f"{name}_seed{seed}"] for seed in (0, 1, 2)]
        assert f[name] == pytest.approx(np.mean(values))
        assert (f[f"{name}_lo"], f[f"{name}_hi"]) == pytest.approx(t_interval(values))
    assert f["ratio_seed1"] == pytest.approx(f["etc_accuracy_seed1"] / f["plain_accuracy_seed1"])
    config = doc["config"]
    assert config["runs"]["etc_seed2"]["params"]["randaugment"] == 2 and config["budget"]["convmixer"]["erasing"] == 0.25
    # each seed checkpoints in its own folder; the JPEG runs' reference is the ConvMixer comparison's EtC run
    assert len(list(work.glob("quick-seed*-*/convmixer/etc/training_log.json"))) == 3
    assert not list(work.glob("*/jpeg/etc_uncompressed"))
    jpeg = json.loads((tmp_path / "jpeg.json").read_text())
    assert jpeg["config"]["reference_shared_with_convmixer"] is True
    assert all(jpeg["figures"][f"etc_uncompressed_accuracy_seed{s}"] == f[f"etc_accuracy_seed{s}"] for s in (0, 1, 2))
    claims = json.loads((tmp_path / "claims.json").read_text())["figures"]
    ratios = [f[f"ratio_seed{seed}"] for seed in (0, 1, 2)]
    assert claims["claim_etc_ratio_value"] == pytest.approx(np.mean(ratios))
    assert (claims["claim_etc_ratio_low"], claims["claim_etc_ratio_high"]) == pytest.approx(t_interval(ratios))
    report = (tmp_path / "report.md").read_text()
    assert "seeds 0, 1, 2" in report and "plain_accuracy_seed0" not in report


def test_an_accuracy_interval_over_seeds_stays_within_0_and_1():
    from veil.experiments.manolakos.tradeoff import combine_seeds

    accuracies, ratios = [0.12, 0.37, 0.07], [0.2, 1.4, 0.3]
    figures = combine_seeds({seed: {"etc_accuracy": accuracy, "ratio": ratio, "epochs": 1}
                             for seed, (accuracy, ratio) in enumerate(zip(accuracies, ratios))})
    low, high = t_interval(accuracies)
    assert low < 0 and (figures["etc_accuracy_lo"], figures["etc_accuracy_hi"]) == (0.0, pytest.approx(high))
    assert (figures["ratio_lo"], figures["ratio_hi"]) == pytest.approx(t_interval(ratios))  # not clipped
    assert figures["ratio_lo"] < 0
    high_ones = combine_seeds({seed: {"plain_accuracy": value} for seed, value in enumerate([0.99, 0.9, 1.0])})
    assert high_ones["plain_accuracy_hi"] == 1.0 and high_ones["plain_accuracy_lo"] < 0.99


def _convmixer_doc(plain, etc, n_test=1000):
    """A convmixer_etc.json with one accuracy per seed."""
    seeds = list(range(len(plain)))
    figures = {"plain_accuracy": float(np.mean(plain)), "etc_accuracy": float(np.mean(etc)), "epochs": 1.0}
    for seed in seeds:
        figures |= {f"plain_accuracy_seed{seed}": plain[seed], f"etc_accuracy_seed{seed}": etc[seed]}
    return {"figures": figures, "config": {"seeds": seeds, "n_test": n_test, "n_train": 100}}


def _etc_claim(doc):
    docs = dict.fromkeys(DOCS) | {"convmixer_etc": doc}
    return next(claim for claim in baseline_claims(docs) if claim.name == "etc_ratio")


def test_seeded_comparisons_are_paired_and_an_interval_over_1_is_no_difference():
    # EtC equal to plain within seed noise: not the paper's 0.965, but no difference rather than an overshoot
    level = _etc_claim(_convmixer_doc([0.70, 0.80, 0.60], [0.70, 0.805, 0.598]))
    assert level.status == "NOT HELD: no difference" and level.direction == 0
    assert level.interval[0] < 1 < level.interval[1] < 1.05  # paired: seed-to-seed spread cancels
    # a clear loss stays a shortfall
    assert _etc_claim(_convmixer_doc([0.70, 0.80, 0.60], [0.50, 0.58, 0.43])).status == "NOT HELD: shortfall"
    # one seed: the binomial interval over the test images, as before
    single = _etc_claim(_convmixer_doc([0.70], [0.68]))
    assert single.value == pytest.approx(0.68 / 0.70) and single.interval[1] - single.interval[0] > 0.05


def test_seeds_option_is_parsed_and_checked(tmp_path, capsys):
    assert main(["reproduce", "tradeoff", "--out", str(tmp_path / "a"), "--seeds", "0,0"]) == 2
    assert "seeds must differ" in capsys.readouterr().err
    assert main(["reproduce", "table1", "--out", str(tmp_path / "b"), "--seeds", "0,1"]) == 2
    assert "takes no --seeds" in capsys.readouterr().err


def _curves_doc(blur: dict[int, list[float]], plain: list[float]) -> dict:
    """A tradeoff.json with per-seed accuracies for plain and blur (the other schemes flat at plain's level)."""
    runs = {"plain": plain, **{f"blur_{k}": v for k, v in blur.items()},
            **{f"{scheme}_{k}": plain for scheme, sizes in CURVES.items() if scheme != "blur" for k in sizes}}
    seeds = list(range(len(plain)))
    figures = {f"{name}_accuracy": float(np.mean(values)) for name, values in runs.items()}
    for name, values in runs.items():
        figures |= {f"{name}_accuracy_seed{seed}": value for seed, value in zip(seeds, values)}
    return {"figures": figures, "config": {"seeds": seeds, "n_test": 2000, "n_train": 100}}


def _blur_claims(doc) -> dict:
    docs = dict.fromkeys(DOCS) | {"tradeoff": doc}
    return {claim.name: claim for claim in baseline_claims(docs) if claim.name in ("blur_drop", "blur_trend")}


def test_blur_trend_claim_holds_only_when_wider_blur_scores_lower():
    falling = _blur_claims(_curves_doc({3: [0.60, 0.62, 0.61], 5: [0.57, 0.58, 0.58], 7: [0.54, 0.55, 0.56]},
                                       [0.63, 0.64, 0.62]))
    assert falling["blur_trend"].status == "held" and falling["blur_drop"].status == "held"
    flat = _blur_claims(_curves_doc({3: [0.60, 0.58, 0.61], 5: [0.59, 0.60, 0.60], 7: [0.61, 0.57, 0.60]},
                                    [0.60, 0.59, 0.60]))
    assert flat["blur_trend"].status == "NOT HELD" and "no difference" in flat["blur_trend"].note
    assert flat["blur_drop"].status == "NOT HELD"


def test_the_examples_come_from_six_classes_of_a_split_listed_class_by_class():
    labels = np.repeat(np.arange(10), 5)
    images = (labels[:, None, None, None] / 10 + np.zeros((1, 3, 4, 4))).astype(np.float32)
    shown = example_images(ImageSet(images, labels, [str(k) for k in range(10)]))
    assert len(shown) == 6 and len(np.unique(shown[:, 0, 0, 0])) == 6
