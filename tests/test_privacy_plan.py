"""What the privacy report spends its budget on: threat c always with a public prior (the ITN on the pairs alone only
where none fits), a searched run's figure is the search's saturated point (not trained a second time), and a trained
scheme's other victim seeds take the budget that the report's own seed's search found."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from veil.attacks.base import Budget
from veil.attacks.run import Outcome
from veil.experiments.privacy import protocol as privacy
from veil.experiments.privacy.protocol import SCHEMES, PrivacyContext as Context, plan
from veil.experiments.privacy.saturation import Search


def test_threat_c_runs_always_combine_the_pairs_with_a_public_prior():
    for scheme in SCHEMES:
        attacks_c = {attack for attack, threat, _ in plan(scheme) if threat == "c"}
        assert attacks_c, scheme
        assert "itn" not in attacks_c, scheme  # the ITN on the pairs alone is weaker by construction
        assert attacks_c <= {"itn-prior", "latent-linear", "deconv"}, (scheme, attacks_c)
    assert {pairs for attack, threat, pairs in plan("aae") if attack == "latent-linear" and threat == "c"} == set(
        privacy.PAIRS)



def test_the_obfuscator_alone_is_attacked_by_the_itn_on_the_known_pairs():
    """No attack gives the obfuscator a public prior of its own recipe (latent-linear's is an AAE), so the ITN on the
    pairs alone is the one attack under c that learns its inverse; the AAE keeps latent-linear alone."""
    def itn_c(method):
        return {pairs for attack, threat, pairs in privacy.plan_method(method, (100, 1000))
                if (attack, threat) == ("itn", "c")}

    assert itn_c("obfuscator") == {100, 1000}
    assert itn_c("aae") == itn_c("aae-keyed") == set()


def fake_context(tmp_path, seed=0) -> Context:
    context = Context.__new__(Context)
    context.out_dir, context.work_dir, context.seed = tmp_path / "out", tmp_path / "work", seed
    context.setup = SimpleNamespace(attack=Budget(epochs=1), search=Search(max_scale=64))
    context.victim = context.public = context.classifier = None
    context.measured = None
    return context


def test_the_saturated_point_is_the_figure_without_training_it_again(tmp_path, monkeypatch):
    ssim = {1: 0.30, 2: 0.45, 4: 0.46}
    calls = []

    def fake_attack(attack, threat, masked, victim, public, oracle, pairs, seed, budget, classifier, model_cache):
        calls.append(budget.epochs)
        assert model_cache == context.work_dir / "attacker-models"  # the attacker's AAEs outlive the process
        return Outcome({"ssim_median": ssim[budget.epochs]}, {}, np.zeros(1), np.zeros(1), {}, {})

    monkeypatch.setattr(privacy, "run_attack", fake_attack)
    context = fake_context(tmp_path)
    search = context.saturation("etc", 0, ("itn", "b", None), masked=None, oracle=None, known=None)
    assert search.saturated and search.budget.epochs == 4 and calls == [1, 2, 4]
    outcome = context.measure("itn", "b", None, None, None, search.budget)
    assert outcome.figures["ssim_median"] == 0.46 and calls == [1, 2, 4]  # the x4 point, not a fifth run


def test_other_victim_seeds_take_the_budget_the_report_seed_found(tmp_path, monkeypatch):
    monkeypatch.setattr(privacy, "run_attack", lambda *args, **kwargs: (_ for _ in ()).throw(AssertionError))
    context = fake_context(tmp_path)
    run = context.out_dir / "runs" / "aae" / "itn_b.json"
    run.parent.mkdir(parents=True)
    budget = Budget(epochs=8, aae_epochs=40)
    run.write_text(json.dumps({"config": {"budget": json.loads(json.dumps(budget.__dict__))},
                               "details": {"scale": 8, "saturated": 1, "reason": "doubling to x8 gained at most 0.02"}}))
    found = context.saturation("aae", 1, ("itn", "b", None), masked=None, oracle=None, known=None)
    assert found.budget == budget and found.saturated and found.scale == 8
    assert "victim seed 0" in found.reason and found.curve == []


def test_a_strength_variant_keeps_the_base_budget_unsaturated(tmp_path):
    found = fake_context(tmp_path).saturation("etc4", 0, ("itn", "b", None), masked=None, oracle=None, known=None)
    assert found.budget == Budget(epochs=1) and not found.saturated and "not searched" in found.reason



def test_a_victim_whose_runs_are_all_written_is_not_loaded_or_trained_again(tmp_path, monkeypatch):
    """A report resumed without its work folder (the victims' maskers gone) skips a finished victim outright, and
    trains one that still has a run to do."""
    trained = []
    context = fake_context(tmp_path)
    context.skip, context.setup.pairs = {"itn-prior_c100"}, privacy.PAIRS
    monkeypatch.setattr(context, "victim_masker", lambda scheme, seed: trained.append(seed) or 1 / 0)
    folder = context.out_dir / "runs" / "etc"
    folder.mkdir(parents=True)
    for name in ["accuracy", *(privacy.run_name(*run) for run in plan("etc"))]:
        if name != "itn-prior_c100":
            (folder / f"{name}.json").write_text("{}")
    context.attack_victim("etc", 0, folder)
    assert trained == []
    (folder / "jigsaw_a.json").unlink()
    with pytest.raises(ZeroDivisionError):
        context.attack_victim("etc", 0, folder)
    assert trained == [0]
