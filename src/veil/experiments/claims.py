"""A paper's claims, each checked by code against the figures a run wrote: one row of a claims table in report.md
and figures in claims.json.

Every claim has a status: held, not held, or not testable here (what the run cannot measure). A level claim ("our
figure is the paper's") is held when our 95% interval meets the paper's band; when it misses, it says on which side:
a shortfall (ours worse) or an overshoot (ours better than the paper), each as plainly as the other; a level claim
on a comparison of two runs (a ratio, a difference) that misses while its interval holds the value of no difference
(1, 0) is "no difference" instead, neither a shortfall nor an overshoot (direction 0). A direction claim
("A above B") is held only when the whole interval of the difference is on the paper's side; an interval that spans
zero is "no difference". In claims.json, per claim `claim_<name>_held` (1, 0, null when not testable),
`claim_<name>_value` with `_low` and `_high` (our number and its 95% interval) and `claim_<name>_direction` (-1
shortfall, +1 overshoot, 0 neither).
"""
from __future__ import annotations

from dataclasses import dataclass

from veil.results import write_results

@dataclass
class Claim:
    """One row: the claim as the paper states it, where it states it, its number, ours, and the verdict."""

    name: str
    statement: str
    source: str
    paper: str  # the paper's number, as the report shows it
    value: float | None = None  # ours (None: not testable here)
    interval: tuple[float, float] | None = None
    held: bool | None = None
    direction: int = 0
    note: str = ""  # the rule applied, why it is not testable, or what explains an overshoot
    digits: int = 3
    no_difference: bool = False  # missed, with the two runs compared indistinguishable

    @property
    def status(self) -> str:
        if self.held is None:
            return "not testable here"
        if self.held:
            return "held"
        if self.no_difference:
            return "NOT HELD: no difference"
        return {-1: "NOT HELD: shortfall", 1: "NOT HELD: overshoot"}.get(self.direction, "NOT HELD")

    def ours(self) -> str:
        if self.value is None:
            return "-"
        text = f"{self.value:.{self.digits}f}"
        return text + (f" [{self.interval[0]:.{self.digits}f}, {self.interval[1]:.{self.digits}f}]"
                       if self.interval else "")

    def figures(self) -> dict:
        low, high = self.interval or (self.value, self.value)
        return {f"claim_{self.name}_held": None if self.held is None else float(self.held),
                f"claim_{self.name}_value": self.value, f"claim_{self.name}_low": low,
                f"claim_{self.name}_high": high,
                f"claim_{self.name}_direction": float(self.direction)}


def level(name: str, statement: str, source: str, value: float, interval: tuple[float, float],
          paper: float, band: tuple[float, float], higher_is_better: bool = True, note: str = "",
          digits: int = 3, same: float | None = None) -> Claim:
    """Our figure at the paper's level: held when our interval meets the paper's band; else a shortfall or an
    overshoot (which side is better: `higher_is_better`), or, for a comparison of two runs whose value of no
    difference is `same` (1 for a ratio, 0 for a difference), "no difference" when the interval holds it."""
    low, high = interval
    above = low > band[1]
    meets = high >= band[0] and not above
    level_with = not meets and same is not None and low <= same <= high
    direction = 0 if meets or level_with else (1 if above == higher_is_better else -1)
    band_text = f" [{band[0]:.{digits}f}, {band[1]:.{digits}f}]" if band[0] != band[1] else ""
    return Claim(name, statement, source, f"{paper:.{digits}f}{band_text}", value, interval, meets, direction, note,
                 digits, level_with)


def above(name: str, statement: str, source: str, difference: float, interval: tuple[float, float], paper: str,
          note: str = "", digits: int = 3) -> Claim:
    """A positive difference (A - B, or A's margin over a threshold): held when the whole interval is above zero."""
    held = interval[0] > 0
    verdict = "" if held else ("no difference: the interval spans 0" if interval[1] >= 0 else "the other way round")
    return Claim(name, statement, source, paper, difference, interval, held, 0,
                 "; ".join(part for part in (verdict, note) if part), digits)


def untestable(name: str, statement: str, source: str, paper: str, reason: str, value: float | None = None,
               interval: tuple[float, float] | None = None) -> Claim:
    return Claim(name, statement, source, paper, value, interval, None, 0, reason)


def claims_table(claims: list[Claim], title: str, rule: str) -> list[str]:
    """The Markdown claims section: one row per claim, then how many held."""
    held = sum(c.held is True for c in claims)
    testable = sum(c.held is not None for c in claims)
    rows = [f"| {c.statement} | {c.source} | {c.paper} | {c.ours()} | **{c.status}** | {c.note} |" for c in claims]
    return [f"## {title}", "", rule, "", f"{held} of {testable} testable claims held; "
            f"{len(claims) - testable} not testable here.", "",
            "| claim | where | paper | ours [95% interval] | status | note |", "|---|---|---|---|---|---|", *rows, ""]


def write_claims(path, claims: list[Claim], seed, runs: dict) -> dict:
    """claims.json: every claim's figures, the runs they were checked on (`runs`: the meta of each JSON) as
    its config, and the statements and statuses as its details."""
    figures = {name: value for claim in claims for name, value in claim.figures().items()}
    rows = [{"name": c.name, "statement": c.statement, "source": c.source, "paper": c.paper, "status": c.status,
             "note": c.note} for c in claims]
    return write_results(path, figures, seed=seed, config={"runs": runs}, details={"claims": rows})
