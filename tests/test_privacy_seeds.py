"""A trained victim (an AAE) is attacked once per victim seed: the report averages each run over the seeds that have
it, with a t interval over seeds, calls it saturated only when every seed's run is, and names each seed's missing
runs."""
from __future__ import annotations

import json

import pytest

from veil.experiments.privacy.protocol import PrivacySetup as Setup, missing_runs, over_victim_seeds, run_name, plan


def write_run(folder, name, ssim, saturated=1):
    folder.mkdir(parents=True, exist_ok=True)
    figures = {"ssim_median": ssim, "linkage": ssim / 2, "saturated": saturated}
    (folder / f"{name}.json").write_text(json.dumps({"figures": figures}))


def test_runs_are_averaged_over_victim_seeds_with_a_t_interval(tmp_path):
    folder = tmp_path / "runs" / "aae"
    for where, ssim in ((folder, 0.2), (folder / "seed1", 0.4), (folder / "seed2", 0.6)):
        write_run(where, "itn_b", ssim)
    write_run(folder / "seed2", "mismatch_a", 0.1, saturated=0)
    write_run(folder, "mismatch_a", 0.1)
    figures = over_victim_seeds(folder, "aae")
    assert figures["aae_itn_b_ssim_seeds"] == pytest.approx(0.4)
    assert figures["aae_itn_b_ssim_seeds_low"] < 0.4 < figures["aae_itn_b_ssim_seeds_high"]
    assert figures["aae_itn_b_linkage_seeds"] == pytest.approx(0.2)
    assert figures["aae_itn_b_victim_seeds"] == 3 and figures["aae_itn_b_saturated"] == 1
    assert figures["aae_mismatch_a_victim_seeds"] == 2
    assert figures["aae_mismatch_a_saturated"] == 0  # one seed's search did not saturate: a lower bound


def test_a_shares_interval_over_few_seeds_stays_within_zero_and_one(tmp_path):
    folder = tmp_path / "runs" / "aae"
    for where, ssim in ((folder, 0.0), (folder / "seed1", 0.0), (folder / "seed2", 0.1)):
        write_run(where, "gan_a", ssim)  # linkage 0, 0, 0.05: the plain t interval reaches -0.04
    figures = over_victim_seeds(folder, "aae")
    assert figures["aae_gan_a_linkage_seeds_low"] == 0.0
    assert figures["aae_gan_a_ssim_seeds_low"] < 0.0  # SSIM can be negative, so it is not cut at 0


def test_a_scheme_without_seed_folders_has_no_seed_figures(tmp_path):
    write_run(tmp_path / "runs" / "pe", "itn_b", 0.9)
    assert over_victim_seeds(tmp_path / "runs" / "pe", "pe") == {}


def test_missing_runs_names_each_victim_seeds_runs(tmp_path):
    setup = Setup.make(quick=False)
    first = run_name(*plan("aae", setup.pairs)[0])
    write_run(tmp_path / "runs" / "aae", first, 0.5)
    missing = missing_runs(tmp_path, setup, seed=0)
    assert f"aae/{first}" not in missing
    assert f"aae/seed1/{first}" in missing and f"aae/seed2/{first}" in missing
    paper_first = run_name(*plan("aae_paper", setup.pairs)[0])
    assert f"aae_paper/seed2/{paper_first}" in missing and not any(name.startswith("pe/seed") for name in missing)


def test_the_summary_reads_a_trained_schemes_best_attack_as_its_mean_over_seeds_and_marks_a_lower_bound():
    from veil.experiments.privacy.report import _best

    figures = {"aae_latent-linear_a_ssim": 0.25, "aae_latent-linear_a_ssim_seeds": 0.19,
               "aae_latent-linear_a_semantic": 0.36, "aae_latent-linear_a_semantic_seeds": 0.35,
               "aae_latent-linear_a_saturated": 1, "aae_gan_a_ssim": 0.04, "aae_gan_a_saturated": 1}
    assert _best(figures, "aae", "a") == "0.190 (0.35) [latent-linear_a]"  # seed 0 alone read 0.250
    assert _best({**figures, "aae_gan_a_saturated": 0}, "aae", "a").startswith("≥ 0.190")
    assert _best(figures, "aae", "b") == "n/a"
