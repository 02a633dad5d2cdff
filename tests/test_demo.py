import json

from veil.experiments.lis2021.demo import run_demo


def test_demo_writes_results_and_figure(tmp_path):
    figures = run_demo(tmp_path, epochs=2, progress=False)
    doc = json.loads((tmp_path / "results.json").read_text())
    names = {f"{m}_{k}" for m in ("nn", "rf", "adaboost") for k in ("accuracy", "precision", "recall")}
    assert names | {"reconstruction_mse"} == set(doc["figures"])
    assert all(0.0 <= figures[n] <= 1.0 for n in names)
    assert figures["rf_accuracy"] > 0.5
    assert doc["config"]["classifier_params"]["adaboost"]["max_depth"] is None  # the paper's AdaBoost: decision stumps
    assert (tmp_path / "fig1_masked_examples.png").stat().st_size > 1000
