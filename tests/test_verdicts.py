"""Leakage, the Pareto front, `veil recommend` and README's generated table, on small privacy.json files written
here (and on the committed results/privacy for the README check)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from veil.cli import main
from veil.experiments.privacy.verdicts import privacy_table, readme_with_table

ROOT = Path(__file__).resolve().parents[1]

#: three schemes under threat a: "open" keeps all utility and leaks all, "tight" keeps little and leaks little,
#: "worse" is dominated by "tight" (less utility, more leakage); "tight" has a saturated run, "open" one that is not
FIGURES = {
    "semantic_accuracy_plain": 0.8, "semantic_chance": 0.1,
    "open_utility_kept": 1.0, "open_utility_kept_low": 0.97, "open_utility_kept_high": 1.03,
    "open_itn_a_ssim": 0.95, "open_itn_a_semantic": 0.8, "open_itn_a_linkage": 0.9, "open_itn_a_saturated": 0,
    "tight_utility_kept": 0.6, "tight_utility_kept_low": 0.55, "tight_utility_kept_high": 0.65,
    "tight_fr_a_ssim": 0.05, "tight_fr_a_semantic": 0.24, "tight_fr_a_saturated": 1,
    "tight_itn_a_ssim": 0.1, "tight_itn_a_semantic": 0.1, "tight_itn_a_linkage": 0.02, "tight_itn_a_saturated": 1,
    "tight_best_a_ssim": 0.1,  # an aggregate, not a run
    "worse_utility_kept": 0.5, "worse_utility_kept_low": 0.45, "worse_utility_kept_high": 0.55,
    "worse_itn_a_ssim": 0.3, "worse_itn_a_semantic": 0.1,
}


@pytest.fixture
def report(tmp_path) -> Path:
    folder = tmp_path / "privacy"
    folder.mkdir()
    schemes = {name: {"method": name} for name in ("open", "tight", "worse", "unattacked")}
    (folder / "privacy.json").write_text(json.dumps({"figures": FIGURES, "config": {"schemes": schemes}}))
    return folder


def recommend(capsys, report, *extra) -> tuple[int, str, str]:
    code = main(["recommend", "--report", str(report), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_recommend_lists_the_front_schemes_that_meet_the_constraints(report, capsys):
    code, out, _ = recommend(capsys, report, "--threat", "a", "--min-utility", "0.55")
    assert code == 0 and "2 of 3 schemes attacked are on the front" in out
    lines = out.splitlines()
    tight = next(line for line in lines if line.startswith("tight:"))
    # leakage = max(SSIM 0.1, semantic (0.24 - 0.1) / (0.8 - 0.1) = 0.2 from fr_a, linkage 0.02): all saturated
    assert "utility kept 0.600 [0.550, 0.650]" in tight and "leakage 0.200 =" in tight
    assert "semantic 0.200 [fr_a]" in tight and "ssim 0.100 [itn_a]" in tight and "≥" not in tight
    opened = next(line for line in lines if line.startswith("open:"))
    assert "leakage ≥ 1.000" in opened and "lower bound" in opened  # its run did not saturate
    assert not any(line.startswith("worse:") for line in lines)  # dominated: not on the front


def test_recommend_names_the_nearest_when_none_meets_the_constraints(report, capsys):
    code, out, _ = recommend(capsys, report, "--threat", "a", "--min-utility", "0.9", "--max-ssim", "0.2")
    assert code == 0 and "none meets both (--min-utility 0.9, --max-ssim 0.2); the nearest:" in out
    assert out.splitlines()[-1].startswith("tight:")  # misses by 0.3 in utility; open misses by 0.75 in SSIM
    code, out, _ = recommend(capsys, report, "--threat", "a", "--min-utility", "0.9", "--max-ssim", "0.2",
                             "--max-leakage", "0.1")
    assert "none meets all" in out


def test_recommend_says_when_no_front_can_be_drawn(report, capsys):
    code, out, _ = recommend(capsys, report, "--threat", "b")
    assert code == 0 and "0 of 0 schemes" in out and "no front" in out


@pytest.mark.parametrize("extra, message", [
    (["--threat", "d"], "unknown threat model 'd'"),
    (["--threat", "a", "--min-utility", "1.5"], "--min-utility must be between 0 and 1, got 1.5"),
    (["--threat", "a", "--max-ssim", "-0.1"], "--max-ssim must be between 0 and 1"),
])
def test_recommend_refuses_bad_arguments_in_one_line(report, capsys, extra, message):
    code, out, err = recommend(capsys, report, *extra)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and not out


def test_recommend_refuses_a_folder_that_is_not_a_privacy_report(tmp_path, capsys):
    code, _, err = recommend(capsys, tmp_path / "absent", "--threat", "a")
    assert code == 2 and "no such report folder" in err
    (tmp_path / "privacy.json").write_text(json.dumps({"figures": {}}))
    code, _, err = recommend(capsys, tmp_path, "--threat", "a")
    assert code == 2 and "not a privacy report" in err and len(err.strip().splitlines()) == 1


def test_the_table_says_not_measured_for_absent_figures(report):
    doc = json.loads((report / "privacy.json").read_text())
    del doc["figures"]["semantic_accuracy_plain"], doc["figures"]["worse_utility_kept"]
    (report / "privacy.json").write_text(json.dumps(doc))
    rows = {line.split(" | ")[0]: line for line in privacy_table(report).splitlines() if line.startswith("| ")}
    assert "semantic not measured" in rows["| open"] and "linkage not measured" in rows["| worse"]
    assert rows["| worse"].startswith("| worse | not measured |") and "| unattacked" not in rows
    assert "**≥ 0.950**" in rows["| open"] and "**0.100**" in rows["| tight"]  # leakage without semantic


def test_readme_table_is_the_one_generated_from_the_committed_report():
    """From results/privacy, and results/frontier's headline points once that report is committed."""
    readme = (ROOT / "README.md").read_text()
    reports = [ROOT / "results" / name for name in ("privacy", "frontier") if (ROOT / "results" / name).is_dir()]
    expected = readme_with_table(readme, privacy_table(reports), "README.md")
    flags = " ".join(f"--report results/{path.name}" for path in reports)
    assert readme == expected, (f"README's privacy table differs from {', '.join(p.name for p in reports)}; run "
                                f"`veil report privacy-table {flags} --readme README.md`")


def test_privacy_table_command_rewrites_only_the_marked_block(report, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- privacy-table: written by `veil report privacy-table --report results/privacy "
                      "--readme README.md` -->\nstale\n<!-- /privacy-table -->\nafter\n")
    assert main(["report", "privacy-table", "--report", str(report), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "stale" not in text and text.startswith("intro\n") and text.endswith("<!-- /privacy-table -->\nafter\n")
    assert "| tight | 0.600 [0.550, 0.650] |" in text and "| tight |" in capsys.readouterr().out
    assert main(["report", "privacy-table", "--readme", str(readme)]) == 2
    assert "required: --report" in capsys.readouterr().err


def _correct_doc(correct: list[bool]) -> dict:
    import numpy as np

    return {"config": {"victim_images": len(correct)},
            "details": {"correct": np.packbits(np.array(correct)).tobytes().hex()}}


def test_utility_kept_is_a_paired_ratio_with_nothing_clipped():
    from veil.experiments.privacy.protocol import utility_kept

    plain = [True, False] * 50 + [True] * 3  # 103 images: the packed bits' padding must not count
    same = utility_kept(_correct_doc(plain), _correct_doc(plain))
    assert same == {"utility_kept": 1.0, "utility_kept_low": 1.0, "utility_kept_high": 1.0}  # paired draws
    better = utility_kept(_correct_doc([True] * 103), _correct_doc(plain))
    assert better["utility_kept"] == pytest.approx(103 / 53) and better["utility_kept_low"] > 1  # not clipped to 1
    worse = utility_kept(_correct_doc([c and i % 4 == 0 for i, c in enumerate(plain)]), _correct_doc(plain))
    assert worse["utility_kept_low"] < worse["utility_kept"] < worse["utility_kept_high"] < 1


def test_a_trained_schemes_leakage_is_its_mean_over_victim_seeds():
    from veil.experiments.privacy.verdicts import verdict

    figures = {"aae_itn_b_ssim": 0.9, "aae_itn_b_ssim_seeds": 0.7, "aae_itn_b_linkage": 0.2,
               "aae_itn_b_linkage_seeds": 0.3, "aae_itn_b_saturated": 1}
    found = verdict(figures, "aae", "b")
    assert found.parts == {"ssim": (0.7, "itn_b"), "linkage": (0.3, "itn_b")}  # the seeds' means, not seed 0's
    assert not found.lower_bound
