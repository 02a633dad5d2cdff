"""What a privacy report means for a user: each scheme's worst-case leakage under each threat model, the Pareto front
of utility kept against it, `veil recommend`, and README's table (`veil report privacy-table`), all computed from
the figures of `privacy.json` alone.

Leakage of a scheme under a threat model is the largest, over the attacks run under it, of three parts:
- `ssim`: the median SSIM of the reconstructions;
- `semantic`: the public judge's accuracy on them above chance, normalised by its accuracy on plain images above
  chance, (s - c) / (p - c): 1 means the reconstructions are recognised as often as the originals;
- `linkage`: the share of reconstructions that single out their own original among 100 of its class.
For a trained scheme attacked once per victim seed, each run's parts are its means over the seeds.
A figure absent from the report is "not measured", never 0. A leakage figure is a lower bound unless every run of
that threat model reached saturation (its `saturated` figure is 1): a stronger attacker may get more.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from veil.attacks.base import THREATS
from veil.errors import VeilError
from veil.io.read import read_json
from veil.io.write import write_bytes
from veil.registry import ATTACKS

THREAT_NAMES = tuple(THREATS)
PARTS = ("ssim", "semantic", "linkage")
#: a run's name in figures: attack_threat, with threat c's known pair count
RUN_NAME = re.compile(r"^(?P<attack>[a-z0-9-]+)_(?P<threat>[abc])(?P<pairs>\d*)$")
NOT_MEASURED = "not measured"
FRONT_MARK = "\\*"  # Markdown for a literal asterisk
README_BEGIN = "<!-- privacy-table: written by `veil report privacy-table --report results/privacy --readme README.md`"
README_END = "<!-- /privacy-table -->"


@dataclass
class Verdict:
    """One scheme under one threat model: each part's largest value and the run that gave it, the leakage (the
    largest part measured), whether it is a lower bound, and the utility kept with its interval."""

    scheme: str
    threat: str
    parts: dict = field(default_factory=dict)  # part -> (value, run)
    lower_bound: bool = True
    utility: tuple | None = None  # (kept, low, high)
    on_front: bool = False

    @property
    def leakage(self) -> float | None:
        return max((value for value, _ in self.parts.values()), default=None)

    @property
    def measured(self) -> bool:
        return self.leakage is not None and self.utility is not None


def scheme_runs(figures: dict, scheme: str) -> dict[str, str]:
    """run name -> threat, for every attack run of `scheme` in `figures` (aggregates such as best_a are not runs)."""
    runs = {}
    for name in figures:
        if not (name.startswith(f"{scheme}_") and name.endswith("_ssim")):
            continue
        match = RUN_NAME.match(name[len(scheme) + 1:-len("_ssim")])
        if match and match["attack"] in ATTACKS.names() and (match["threat"] != "c" or match["pairs"]):
            runs[match.group(0)] = match["threat"]
    return runs


def semantic_leakage(figures: dict, accuracy: float) -> float | None:
    """(s - c) / (p - c) with the judge's plain accuracy p and chance c from the report; None if either is absent."""
    plain, chance = figures.get("semantic_accuracy_plain"), figures.get("semantic_chance")
    if plain is None or chance is None or plain <= chance:
        return None
    return (accuracy - chance) / (plain - chance)


def verdict(figures: dict, scheme: str, threat: str) -> Verdict | None:
    """The scheme's verdict under `threat`, or None if no attack ran under it."""
    runs = [run for run, t in scheme_runs(figures, scheme).items() if t == threat]
    if not runs:
        return None
    found = Verdict(scheme, threat)
    for run in runs:
        values = {"ssim": run_figure(figures, scheme, run, "ssim"),
                  "linkage": run_figure(figures, scheme, run, "linkage")}
        if (semantic := run_figure(figures, scheme, run, "semantic")) is not None:
            values["semantic"] = semantic_leakage(figures, semantic)
        for part, value in values.items():
            if value is not None and (part not in found.parts or value > found.parts[part][0]):
                found.parts[part] = (value, run)
    found.lower_bound = any(figures.get(f"{scheme}_{run}_saturated") != 1 for run in runs)
    if f"{scheme}_utility_kept" in figures:
        found.utility = tuple(figures[f"{scheme}_utility_kept{end}"] for end in ("", "_low", "_high"))
    return found


def run_figure(figures: dict, scheme: str, run: str, part: str) -> float | None:
    """A run's figure: for a scheme attacked once per victim seed (a trained AAE), its mean over the seeds
    (`..._seeds`), the expected leakage of an instance a user trains; else the one run's figure."""
    name = f"{scheme}_{run}_{part}"
    return figures.get(f"{name}_seeds", figures.get(name))


def pareto_front(verdicts: list[Verdict]) -> list[str]:
    """The schemes no other dominates: none keeps at least as much utility at no more leakage, better in one."""
    measured = [v for v in verdicts if v.measured]

    def dominated(v: Verdict) -> bool:
        return any(w.utility[0] >= v.utility[0] and w.leakage <= v.leakage
                   and (w.utility[0] > v.utility[0] or w.leakage < v.leakage) for w in measured)

    return [v.scheme for v in sorted(measured, key=lambda v: v.leakage) if not dominated(v)]


def schemes_of(doc: dict) -> list[str]:
    return list(doc["config"]["schemes"])


def threat_verdicts(figures: dict, schemes: list[str], threat: str) -> list[Verdict]:
    """Every scheme attacked under `threat`, with `on_front` set."""
    found = [v for v in (verdict(figures, s, threat) for s in schemes) if v is not None]
    front = set(pareto_front(found))
    for v in found:
        v.on_front = v.scheme in front
    return found


def verdict_figures(figures: dict, schemes: list[str]) -> tuple[dict, dict]:
    """(figures, details) to add to privacy.json: `{scheme}_leakage_{threat}` and its parts
    (`..._{threat}_ssim` etc.), `{scheme}_leakage_{threat}_lower_bound` and `{scheme}_on_front_{threat}` (1/0, only
    where utility and leakage are both measured); details: the front of each threat, lowest leakage first, and the
    run behind each part."""
    added, details = {}, {"pareto": {}, "leakage_runs": {}}
    for threat in THREAT_NAMES:
        verdicts = threat_verdicts(figures, schemes, threat)
        details["pareto"][threat] = pareto_front(verdicts)
        for v in verdicts:
            name = f"{v.scheme}_leakage_{threat}"
            if v.leakage is not None:
                added[name] = v.leakage
                added[f"{name}_lower_bound"] = int(v.lower_bound)
            added.update({f"{name}_{part}": value for part, (value, _) in v.parts.items()})
            details["leakage_runs"][name] = {part: run for part, (_, run) in v.parts.items()}
            if v.measured:
                added[f"{v.scheme}_on_front_{threat}"] = int(v.on_front)
    return added, details


# ---------------------------------------------------------------- reading a report

#: the results file of each report whose schemes have verdicts: a privacy report, a frontier report (its points)
REPORT_FILES = ("privacy.json", "frontier.json")


def load_report(report_dir) -> dict:
    """privacy.json (or a frontier report's frontier.json, whose points are schemes alike) of a report folder; a
    one-line error if the folder or the file is not one."""
    folder = Path(report_dir)
    if not folder.is_dir():
        raise VeilError("no such report folder", folder)
    path = next((folder / name for name in REPORT_FILES if (folder / name).is_file()), None)
    if path is None:
        raise VeilError("not a privacy or frontier report (no privacy.json or frontier.json; made by `veil report "
                        "privacy` or `veil report frontier`)", folder)
    doc = read_json(path)
    if not isinstance(doc, dict) or "figures" not in doc or "schemes" not in doc.get("config", {}):
        raise VeilError(f"not a {path.stem} report ({path.name} has no figures or no config.schemes)", path)
    return doc


def table_schemes(doc: dict) -> list[str]:
    """The schemes a report puts in README's table: a frontier report's headline points, a privacy report's all."""
    return doc["config"].get("table_schemes", schemes_of(doc))


def as_folders(report_dirs) -> list:
    """One report folder or several, as a list."""
    return [report_dirs] if isinstance(report_dirs, (str, Path)) else list(report_dirs)


def reports_verdicts(report_dirs, threat: str, table: bool = False) -> list[Verdict]:
    """Every scheme of every report under `threat`, each judged within its own report (its own judge and
    baselines), with `on_front` set over all of them together. `table`: only the schemes a report puts in
    README's table (a frontier report's headline points). A scheme named in two reports is refused."""
    found, seen = [], {}
    for folder in as_folders(report_dirs):
        doc = load_report(folder)
        for v in threat_verdicts(doc["figures"], table_schemes(doc) if table else schemes_of(doc), threat):
            if v.scheme in seen:
                raise VeilError(f"scheme {v.scheme!r} is in two reports ({seen[v.scheme]} and {folder})", folder)
            seen[v.scheme] = folder
            found.append(v)
    front = set(pareto_front(found))
    for v in found:
        v.on_front = v.scheme in front
    return found


def _figure(value: float | None, lower_bound: bool = False) -> str:
    if value is None:
        return NOT_MEASURED
    return f"{'≥ ' if lower_bound else ''}{value:.3f}"


def _utility(v: Verdict) -> str:
    if v.utility is None:
        return NOT_MEASURED
    kept, low, high = v.utility
    return f"{kept:.3f} [{low:.3f}, {high:.3f}]"


def _parts(v: Verdict, separator: str = "; ") -> str:
    """Each part with the run that gave it (a lower bound when the leakage is, see `describe`)."""
    return separator.join(f"{part} {_figure(v.parts[part][0])} [{v.parts[part][1]}]" if part in v.parts
                          else f"{part} {NOT_MEASURED}" for part in PARTS)


def describe(v: Verdict) -> str:
    """One line: utility kept with its interval, the leakage and its parts, lower bounds marked with ≥."""
    bound = " (a lower bound, as each of its parts)" if v.lower_bound else ""
    return (f"{v.scheme}: utility kept {_utility(v)}; leakage {_figure(v.leakage, v.lower_bound)}{bound} = max of "
            f"{_parts(v)}")


# ---------------------------------------------------------------- veil recommend

def recommend(report_dir, threat: str, min_utility: float | None = None, max_ssim: float | None = None,
              max_leakage: float | None = None) -> str:
    """The schemes on `threat`'s front that meet every constraint given, with their figures; if none does,
    "none meets ..." and the nearest (the smallest total shortfall over the constraints). `report_dir`: one report
    folder or several (a privacy report and a frontier report), weighed together (`reports_verdicts`)."""
    if threat not in THREAT_NAMES:
        raise VeilError(f"unknown threat model {threat!r}; known: {', '.join(THREAT_NAMES)}")
    for flag, value in (("--min-utility", min_utility), ("--max-ssim", max_ssim), ("--max-leakage", max_leakage)):
        if value is not None and not 0 <= value <= 1:
            raise VeilError(f"{flag} must be between 0 and 1, got {value}")
    verdicts = reports_verdicts(report_dir, threat)
    front = sorted((v for v in verdicts if v.on_front), key=lambda v: v.leakage)
    header = (f"threat {threat}: {len(front)} of {len(verdicts)} schemes attacked are on the front of utility kept "
              "against worst-case leakage (≥: a lower bound: not every run reached saturation)")
    if not front:
        return header + (f"\nno front: utility kept or leakage is {NOT_MEASURED} for every scheme in "
                         f"{', '.join(map(str, as_folders(report_dir)))}")
    constraints = {"--min-utility": min_utility, "--max-ssim": max_ssim, "--max-leakage": max_leakage}
    given = {flag: value for flag, value in constraints.items() if value is not None}
    asked = ", ".join(f"{flag} {value:g}" for flag, value in given.items())
    meeting = [v for v in front if shortfall(v, min_utility, max_ssim, max_leakage) == 0]
    if meeting:
        return "\n".join([header, f"meeting {asked}:" if given else "the front:", *map(describe, meeting)])
    nearest = min(front, key=lambda v: shortfall(v, min_utility, max_ssim, max_leakage))
    none = {1: "none meets it", 2: "none meets both"}.get(len(given), "none meets all")
    return "\n".join([header, f"{none} ({asked}); the nearest:", describe(nearest)])


def shortfall(v: Verdict, min_utility, max_ssim, max_leakage) -> float:
    """How far `v` misses the constraints in all (0: it meets them); a constrained figure not measured misses by 1."""
    ssim = v.parts.get("ssim", (None,))[0]
    misses = [(min_utility, v.utility[0], -1), (max_ssim, ssim, 1), (max_leakage, v.leakage, 1)]
    return sum(1.0 if value is None else max(0.0, sign * (value - bound))
               for bound, value, sign in misses if bound is not None)


# ---------------------------------------------------------------- README's table

def privacy_table(report_dir) -> str:
    """The Markdown table of README's "What each scheme protects against", from `report_dir`'s privacy.json, or
    from several reports (a privacy report, then a frontier report's headline points), fronts taken over all."""
    folders = as_folders(report_dir)
    figures = load_report(folders[0])["figures"]
    by_threat = {t: {v.scheme: v for v in reports_verdicts(folders, t, table=True)} for t in THREAT_NAMES}
    schemes = [name for folder in folders for name in table_schemes(load_report(folder))]
    judge = figures.get("semantic_accuracy_plain")
    lines = [f"Leakage: the largest over the attacks run of the median SSIM, the semantic figure (the public judge's "
             f"accuracy above chance over its accuracy on plain images above chance; its accuracy on plain images: "
             f"{_figure(judge)}) and linkage (chance 0.01); each part with the run that gave it in brackets, for "
             "a trained AAE the mean over its victim seeds. ≥: a "
             "lower bound, with all its parts (not every run reached saturation). \\*: on the Pareto front of "
             "utility kept "
             "against leakage for that threat model. Utility kept: masked over plain accuracy of the same "
             "classifier, with its 95% interval."
             + (" Rows of a frontier report (`veil report frontier`): utility kept against a plain CNN of the "
                "encoder's size, leakage judged by that report's own judge." if len(folders) > 1 else ""), "",
             "| scheme | utility kept | threat a | threat b | threat c |", "|---|---|---|---|---|"]
    for scheme in schemes:
        verdicts = [by_threat[t].get(scheme) for t in THREAT_NAMES]
        present = [v for v in verdicts if v is not None]
        if not present:
            continue
        cells = ["n/a" if v is None else (FRONT_MARK if v.on_front else "")
                 + f"**{_figure(v.leakage, v.lower_bound)}**: {_parts(v, ' · ')}" for v in verdicts]
        lines.append(f"| {scheme} | {_utility(present[0])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def readme_with_table(readme_text: str, table: str, readme_path) -> str:
    """`readme_text` with the block between the privacy-table markers replaced by `table`."""
    start, end = readme_text.find(README_BEGIN), readme_text.find(README_END)
    if start < 0 or end < start:
        raise VeilError(f"no privacy-table block (a line starting {README_BEGIN!r} ... {README_END!r})", readme_path)
    head_end = readme_text.index("\n", start) + 1
    return readme_text[:head_end] + "\n" + table + "\n" + readme_text[end:]


def write_privacy_table(report_dir, readme=None) -> str:
    """`veil report privacy-table`: the table; with `readme`, also rewrite that file's block in place."""
    table = privacy_table(report_dir)
    if readme is not None:
        path = Path(readme)
        if not path.is_file():
            raise VeilError("no such README file", path)
        write_bytes(path, readme_with_table(path.read_text(), table, path).encode())
    return table
