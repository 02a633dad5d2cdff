"""Budgets to saturation: the search doubles exactly the attack's own budget fields, stops when a doubling gains no
more than the tolerance, says "not saturated" when it runs out of scale or time, and resumes from its work folder."""
from __future__ import annotations

from veil.attacks.base import Budget
from veil.experiments.privacy.saturation import Search, saturate


class Curve:
    """A fake attack whose median SSIM at budget scale s (read off its epochs) is `values[s]`; counts its runs."""

    def __init__(self, values: dict[int, float], seconds: float = 0.0):
        self.values, self.calls, self.seconds = values, [], seconds

    def __call__(self, budget: Budget) -> dict:
        self.calls.append(budget)
        return {"ssim_median": self.values[budget.epochs], "semantic_accuracy": 0.1, "other": 9.0}


def test_doubling_stops_once_a_doubling_gains_no_more_than_the_tolerance():
    curve = Curve({1: 0.30, 2: 0.45, 4: 0.46, 8: 0.99})
    result = saturate(curve, Budget(epochs=1, gan_steps=7), ("epochs",), Search(tolerance=0.02, max_scale=64))
    assert result.saturated and result.scale == 4
    assert [point["scale"] for point in result.curve] == [1, 2, 4]
    assert [b.epochs for b in curve.calls] == [1, 2, 4]
    assert all(b.gan_steps == 7 for b in curve.calls)  # only the attack's own fields are doubled
    assert result.budget.epochs == 4 and result.record()["saturated"] == 1


def test_the_figure_is_the_strongest_point_when_more_budget_did_worse():
    """A doubling that loses (a GAN that drifts) has saturated, and its weaker point is not the figure."""
    result = saturate(Curve({1: 0.08, 2: 0.05, 4: 0.5}), Budget(epochs=1), ("epochs",), Search(max_scale=64))
    assert result.saturated and result.scale == 1 and result.budget.epochs == 1
    assert [point["scale"] for point in result.curve] == [1, 2] and "x1 was the strongest" in result.reason


def test_a_gain_in_semantic_accuracy_alone_keeps_the_search_going():
    class Semantic(Curve):
        def __call__(self, budget):
            return {"ssim_median": 0.5, "semantic_accuracy": {1: 0.1, 2: 0.3, 4: 0.31}[budget.epochs]}

    result = saturate(Semantic({}), Budget(epochs=1), ("epochs",), Search(max_scale=64))
    assert result.saturated and result.scale == 4


def test_a_search_that_runs_out_of_scale_is_a_lower_bound():
    result = saturate(Curve({1: 0.1, 2: 0.2, 4: 0.3}), Budget(epochs=1), ("epochs",), Search(max_scale=4))
    assert not result.saturated and result.scale == 4
    assert "largest scale" in result.reason and result.record()["saturated"] == 0


def test_a_search_whose_next_point_would_pass_its_time_cap_is_a_lower_bound(monkeypatch):
    # each point takes 100 CPU s: after x2 (200 s spent) the x4 point, predicted at 200 s more, would pass 350 s
    clock = iter(range(0, 10_000, 100))
    monkeypatch.setattr("veil.experiments.privacy.saturation.time.process_time", lambda: next(clock))
    result = saturate(Curve({1: 0.1, 2: 0.2, 4: 0.3, 8: 0.4}), Budget(epochs=1), ("epochs",),
                      Search(max_scale=64, time_cap_s=350))
    assert not result.saturated and result.scale == 2 and "time cap" in result.reason


def test_a_closed_form_attack_is_saturated_without_a_search():
    curve = Curve({1: 0.5})
    result = saturate(curve, Budget(), (), Search())
    assert result.saturated and result.curve == [] and curve.calls == []


def test_an_interrupted_search_resumes_from_its_work_folder(tmp_path):
    first = Curve({1: 0.30, 2: 0.45})
    try:
        saturate(first, Budget(epochs=1), ("epochs",), Search(max_scale=64), tmp_path)
    except KeyError:  # the run stops at scale 4, which this fake cannot measure: an interruption
        pass
    again = Curve({1: 0.0, 2: 0.0, 4: 0.46})
    result = saturate(again, Budget(epochs=1), ("epochs",), Search(max_scale=64), tmp_path)
    assert [b.epochs for b in again.calls] == [4]  # scales 1 and 2 were read back, not run again
    assert result.saturated and [p["ssim_median"] for p in result.curve] == [0.30, 0.45, 0.46]


def test_budget_scaled_multiplies_only_the_named_fields():
    budget = Budget(epochs=2, gan_steps=300, batch_size=64).scaled(4, ("epochs", "gan_steps"))
    assert (budget.epochs, budget.gan_steps, budget.batch_size) == (8, 1200, 64)
