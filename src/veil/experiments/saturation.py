"""Budgets to saturation: a privacy figure is the strongest attack the threat model allows, so an attack's budget is
doubled until more budget stops helping, and only then is the figure taken.

For one (scheme, attack, threat): run the attack on a fixed subset of the victims (1,000 at full size) at budget
scale 1, 2, 4, ... (the attack's own `budget_fields` multiplied), until neither the median SSIM nor the semantic
accuracy gains more than `tolerance` (0.02) over the previous scale. That scale is the saturated budget, at which the
figure is then taken on every victim. A search that reaches its time cap or its largest scale first is not saturated:
its figure is a lower bound, and says so (`saturated` 0).

Each point of the curve is written to the work folder as soon as it is measured, so an interrupted search resumes.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from veil.attacks.base import Budget
from veil.io import read_json, write_json

#: the figures whose gain decides saturation (semantic accuracy only when a judge scored the run)
WATCHED = ("ssim_median", "semantic_accuracy")


@dataclass(frozen=True)
class Search:
    """How far a saturation search may go."""

    tolerance: float = 0.02  # a doubling that gains no more than this on every watched figure has saturated
    max_scale: int = 32  # the largest multiple of the base budget tried
    time_cap_s: float = 3600.0  # the search stops (unsaturated) once its points have taken this long in all
    subset: int = 1000  # victims each point is measured on

    @classmethod
    def quick(cls) -> "Search":
        return cls(tolerance=0.02, max_scale=2, time_cap_s=600.0, subset=100)


@dataclass
class Saturation:
    """The outcome of a search: the budget for the final figure, whether it saturated, and the curve behind it."""

    budget: Budget
    scale: int
    saturated: bool
    reason: str
    curve: list[dict]

    def record(self) -> dict:
        """What a run's JSON keeps: `saturated` among its figures, the rest in its details."""
        return {"saturated": int(self.saturated), "scale": self.scale, "reason": self.reason,
                "budget_curve": self.curve}


def gains(previous: dict, current: dict) -> dict[str, float]:
    """The gain of every watched figure both points have."""
    return {name: current[name] - previous[name] for name in WATCHED if name in previous and name in current}


def saturate(measure: Callable[[Budget], dict], base: Budget, fields: tuple[str, ...], search: Search,
             work: Path | None = None) -> Saturation:
    """Double `fields` of `base` until the watched figures of `measure(budget)` (an attack run on the search's
    victim subset) stop gaining. An attack with no budget fields (a closed form) is saturated at scale 1 by
    construction. `work`: a folder for the curve's points, reused when present."""
    if not fields:
        return Saturation(base, 1, True, "closed form: no budget to raise", [])
    curve, spent, scale = [], 0.0, 1
    while True:
        budget = base.scaled(scale, fields)
        point = _point(measure, budget, scale, work)
        curve.append(point)
        spent += point["s"]
        if len(curve) > 1:
            gained = gains(curve[-2], point)
            if all(value <= search.tolerance for value in gained.values()):
                return Saturation(budget, scale, True, f"doubling to x{scale} gained at most {search.tolerance}",
                                  curve)
        if scale * 2 > search.max_scale:
            return Saturation(budget, scale, False, f"largest scale x{scale} reached before saturating", curve)
        if spent >= search.time_cap_s:
            return Saturation(budget, scale, False, f"time cap {search.time_cap_s:.0f} s reached at x{scale}", curve)
        scale *= 2


def _point(measure: Callable[[Budget], dict], budget: Budget, scale: int, work: Path | None) -> dict:
    path = None if work is None else Path(work) / f"x{scale}.json"
    if path is not None and path.exists():
        point = read_json(path)
        if point.get("budget") == json.loads(json.dumps(asdict(budget))):  # as JSON keeps it: tuples are lists
            return point
    start = time.time()
    figures = measure(budget)
    point = {"scale": scale, **{name: figures[name] for name in WATCHED if name in figures},
             "s": round(time.time() - start, 1), "budget": asdict(budget)}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, point)
    return point
