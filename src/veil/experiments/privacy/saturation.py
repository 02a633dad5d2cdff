"""Budgets to saturation: a privacy figure is the strongest attack the threat model allows, so an attack's budget is
doubled until more budget stops helping, and only then is the figure taken.

For one (scheme, attack, threat): run the attack at budget scale 1, 2, 4, ... (the attack's own `budget_fields`
multiplied), until neither the median SSIM nor the semantic accuracy gains more than `tolerance` (0.02) over the
previous scale. The figure is then the curve's strongest point (the highest median SSIM, then semantic accuracy),
usually the last: more budget can also do worse (a GAN that drifts, a fit that overfits its pairs), and the
strongest attack found is the figure, never a weaker later one. Every point is measured on all the
victims, not on a subset: an attack's cost is its training, which does not depend on how many victims are scored,
so a subset would save little and the final figure would have to be trained again; and attacks that learn from the
masked victims themselves (the GAN, the blind deconvolution) are given all the attacker holds at every point.

A search that would pass its time cap with its next point (predicted to take twice the last one, since the budget
doubles), or that reaches its largest scale first, is not saturated: its figure is a lower bound, and says so
(`saturated` 0). The cap counts the process's CPU seconds (all its threads), not wall time, so that the same commit
stops at the same point whether or not the machine is shared; each point records both (`cpu_s`, `s`). A point that
reuses a model an earlier run trained (an AAE of the attacker's own, `veil.attacks.own_aae`) does not pay for it
again; that model is kept in the work folder, so a report resumed in a new process pays what one uninterrupted
process would have paid (except the point interrupted after training its model, which finds it there when redone).

Each point of the curve is written to the work folder as soon as it is measured, so an interrupted search resumes.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from veil.attacks.base import Budget
from veil.io.read import read_json

from veil.io.write import write_json

#: the figures whose gain decides saturation (semantic accuracy only when a judge scored the run)
WATCHED = ("ssim_median", "semantic_accuracy")


@dataclass(frozen=True)
class Search:
    """How far a saturation search may go."""

    tolerance: float = 0.02  # a doubling that gains no more than this on every watched figure has saturated
    max_scale: int = 32  # the largest multiple of the base budget tried
    time_cap_s: float = 2400.0  # no point is started whose predicted end passes this many CPU seconds of search

    @classmethod
    def quick(cls) -> "Search":
        return cls(tolerance=0.02, max_scale=2, time_cap_s=600.0)


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


def strength(figures: dict) -> tuple[float, ...]:
    """How strong an attack's point is, to compare points: its median SSIM, then its semantic accuracy."""
    return tuple(figures.get(name, 0.0) for name in WATCHED)


def gains(previous: dict, current: dict) -> dict[str, float]:
    """The gain of every watched figure both points have."""
    return {name: current[name] - previous[name] for name in WATCHED if name in previous and name in current}


def saturate(measure: Callable[[Budget], dict], base: Budget, fields: tuple[str, ...], search: Search,
             work: Path | None = None) -> Saturation:
    """Double `fields` of `base` until the watched figures of `measure(budget)` (an attack run on every
    victim) stop gaining. An attack with no budget fields (a closed form) is saturated at scale 1 by
    construction. `work`: a folder for the curve's points, reused when present."""
    if not fields:
        return Saturation(base, 1, True, "closed form: no budget to raise", [])
    curve, spent, scale = [], 0.0, 1
    while True:
        point = _point(measure, base.scaled(scale, fields), scale, work)
        curve.append(point)
        spent += point["cpu_s"]
        if len(curve) > 1:
            gained = gains(curve[-2], point)
            if all(value <= search.tolerance for value in gained.values()):
                return _strongest(base, fields, curve, True, f"doubling from x{scale // 2} to x{scale} gained at "
                                                             f"most {search.tolerance}")
        if scale * 2 > search.max_scale:
            return _strongest(base, fields, curve, False, f"largest scale x{scale} reached before saturating")
        if spent + 2 * point["cpu_s"] > search.time_cap_s:
            return _strongest(base, fields, curve, False, f"x{scale * 2} would pass the time cap of "
                                                          f"{search.time_cap_s:.0f} CPU s")
        scale *= 2


def _strongest(base: Budget, fields: tuple[str, ...], curve: list[dict], saturated: bool,
               reason: str) -> Saturation:
    """The search's outcome at its strongest point: the highest median SSIM, then semantic accuracy."""
    best = max(curve, key=strength)
    if best is not curve[-1]:
        reason += f"; x{best['scale']} was the strongest point"
    return Saturation(base.scaled(best["scale"], fields), best["scale"], saturated, reason, curve)


def _point(measure: Callable[[Budget], dict], budget: Budget, scale: int, work: Path | None) -> dict:
    path = None if work is None else Path(work) / f"x{scale}.json"
    if path is not None and path.exists():
        point = read_json(path)
        if point.get("budget") == json.loads(json.dumps(asdict(budget))):  # as JSON keeps it: tuples are lists
            return point
    start, cpu_start = time.time(), time.process_time()
    figures = measure(budget)
    point = {"scale": scale, **{name: figures[name] for name in WATCHED if name in figures},
             "s": round(time.time() - start, 1), "cpu_s": round(time.process_time() - cpu_start, 1),
             "budget": asdict(budget)}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, point)
    return point
