"""`veil reproduce tradeoff --quick` on digits: the contract figure names, results shape and report."""
from __future__ import annotations

import json

from veil.cli import main
from veil.experiments import protocol


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


def test_reproduce_refuses_options_a_protocol_does_not_take(tmp_path, capsys):
    assert main(["reproduce", "tradeoff", "--out", str(tmp_path), "--masker", "m"]) == 2
    assert "reproduce tradeoff takes no --masker" in capsys.readouterr().err
    assert main(["reproduce", "tradeoff", "--out", str(tmp_path), "--jobs", "0"]) == 2
    assert main(["reproduce", "table1", "--out", str(tmp_path), "--jobs", "2"]) == 2
    assert not any(tmp_path.iterdir())
