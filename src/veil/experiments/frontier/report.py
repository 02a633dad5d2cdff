"""frontier.json, the plots and report.md of `veil report frontier`, rebuilt from the run files under `runs/`.

The goal (issue 26: nothing beyond the label, at no cost in accuracy), for one point, at saturation:
- utility kept (its vectors' MLP accuracy over the plain CNN of the encoder's size) of at least `GOAL_UTILITY`;
- under each of threats a, b and c, the best attack's median SSIM at most `GOAL_SSIM_MARGIN` above the class-mean
  image's (`classmean_ssim`: each victim image against the mean public image of its class, the best a label alone
  gives) and linkage at most `GOAL_LINKAGE` (twice chance among 100 candidates);
- every run of the point saturated (`saturated` 1), so that no figure is a lower bound.
Beside the goal, not part of it: `encoder_linkage` (`veil.attacks.scoring.encoder_linkage`), the share of victims an
attacker holding the encoder and the candidate images confirms by masking the candidates itself. The issue's
linkage is the reconstruction's; a deterministic encoder scores 1 here whatever its reconstructions reveal, and only
fresh masking noise can lower it, so the report gives it for every point and at the goal's point.
The `best_*_at_goal` figures are those of the point with the highest utility among the points that meet the goal,
or, when none does (`goal_met` 0), of the nearest point: the smallest total shortfall over the constraints.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from veil.attacks.base import THREATS
from veil.errors import VeilError
from veil.experiments.privacy.protocol import scheme_figures
from veil.experiments.privacy.verdicts import threat_verdicts, verdict, verdict_figures
from veil.io.read import read_json
from veil.io.write import write_bytes
from veil.results import write_results

GOAL_UTILITY = 0.95
GOAL_SSIM_MARGIN = 0.03
GOAL_LINKAGE = 0.02
CLASSMEAN = "classmean.json"
THREAT_NAMES = tuple(THREATS)
#: what each point's record and the at-goal figures hold under each threat (verdict parts)
PARTS = ("ssim", "semantic", "linkage")


def classmean_record(public, victim) -> tuple[dict, dict]:
    """(figures, config) of the class-mean baseline: the median SSIM between each victim image and the mean public
    image of its class, with its 95% bootstrap interval: what the label alone reveals of the picture."""
    from veil.attacks.scoring import median_interval, per_image

    means = {k: public.images[public.labels == k].mean(0) for k in np.unique(public.labels)}
    guess = np.stack([means[k] for k in victim.labels])
    ssim = per_image(victim.images, guess)["ssim"]
    low, high = median_interval(ssim)
    return ({"classmean_ssim": float(np.median(ssim)), "classmean_ssim_low": low, "classmean_ssim_high": high},
            {"public": public.source, "victim_scored": len(victim)})


def assemble(out_dir: Path, setup, seed: int, privacy_report=None) -> dict:
    """frontier.json (figures, meta, config; each point's record under details), plots and report.md."""
    from veil.experiments.frontier.sweep import sweep

    points = {p.name: p for p in sweep()}
    runs_dir = out_dir / "runs"
    if not (runs_dir / CLASSMEAN).exists():
        raise VeilError("no class-mean baseline (runs/classmean.json): run the frontier first", out_dir)
    figures, runs = dict(read_json(runs_dir / CLASSMEAN)["figures"]), {}
    present = [name for name in points if (runs_dir / name / "accuracy.json").exists()]
    if not present:
        raise VeilError("no frontier point has been measured yet", runs_dir)
    for name in present:
        figures.update(scheme_figures(out_dir, name, runs))
    for path in sorted(runs_dir.glob("plain_*.json")):
        plain = read_json(path)["figures"]
        figures.update({f"{path.stem}_accuracy{end}": plain[f"accuracy{end}"] for end in ("", "_low", "_high")})
    judged = [run["figures"] for run in runs.values() if "semantic_accuracy_plain" in run["figures"]]
    if judged:
        figures.update({name: judged[0][name] for name in ("semantic_accuracy_plain", "semantic_chance")})
    chances = [run["figures"]["linkage_chance"] for run in runs.values() if "linkage_chance" in run["figures"]]
    if chances:  # 0.01 with 100 candidates of each class; more with fewer victims per class (a quick run)
        figures["linkage_chance"] = max(chances)
    verdicts, details = verdict_figures(figures, present)
    figures.update(verdicts)
    records = [point_record(points[name], figures) for name in present]
    for record in records:
        figures[f"{record['name']}_goal_shortfall"] = record["shortfall"]
        figures[f"{record['name']}_meets_goal"] = int(record["meets_goal"])
    chosen = goal_point(records)
    figures.update(goal_figures(chosen, figures))
    figures.update(keyed_figures(figures))
    reference = reference_points(privacy_report)
    config = {"setup": {k: v for k, v in asdict(setup.privacy).items() if k != "attack"},
              "budget": asdict(setup.privacy.attack), "obfuscator_epochs": setup.obfuscator_epochs,
              "aae_epochs": setup.aae_epochs, "headline_seeds": list(setup.headline_seeds),
              "schemes": {name: {"method": points[name].method, "family": points[name].family,
                                 "knob": points[name].knob, "value": points[name].value, **points[name].params}
                          for name in present},
              "table_schemes": [name for name in present if points[name].headline],
              "goal": {"utility_kept": GOAL_UTILITY, "ssim_above_classmean": GOAL_SSIM_MARGIN,
                       "linkage": GOAL_LINKAGE, "saturated": True},
              "goal_point": chosen["name"], "goal_met": chosen["meets_goal"],
              "missing_points": [name for name in points if name not in present],
              "privacy_report": None if privacy_report is None else str(privacy_report)}
    doc = write_results(out_dir / "frontier.json", figures, seed=seed, config=config,
                        details={**details, "points": records})
    write_plots(out_dir, records, figures, reference)
    write_bytes(out_dir / "report.md", report_text(doc, records, chosen, reference).encode())
    return figures


def point_record(point, figures: dict) -> dict:
    """One point: its configuration, utility kept, each threat's worst-case parts and saturation, whether it meets
    the goal and by how much it misses it."""
    name = point.name
    record = {"name": name, "family": point.family, "knob": point.knob, "value": point.value,
              "method": point.method, "params": point.params, "headline": point.headline,
              "utility_kept": figures.get(f"{name}_utility_kept"),
              "utility_kept_low": figures.get(f"{name}_utility_kept_low"),
              "utility_kept_high": figures.get(f"{name}_utility_kept_high"),
              "owner_ssim": figures.get(f"{name}_owner_ssim"),
              **{f"encoder_linkage{end}": figures.get(f"{name}_encoder_linkage{end}") for end in ("", "_low", "_high")},
              "saturation": {run[len(name) + 1:-len("_saturated")]: value for run, value in figures.items()
                             if run.startswith(f"{name}_") and run.endswith("_saturated")}}
    for threat in THREAT_NAMES:
        v = verdict(figures, name, threat)
        record[threat] = None if v is None else {**{part: v.parts[part][0] for part in v.parts},
                                                  "runs": {part: v.parts[part][1] for part in v.parts},
                                                  "saturated": not v.lower_bound}
    record["shortfall"] = shortfall(record, figures["classmean_ssim"])
    record["meets_goal"] = record["shortfall"] == 0 and all(record[t] and record[t]["saturated"]
                                                             for t in THREAT_NAMES)
    return record


def shortfall(record: dict, classmean: float) -> float:
    """How far a point misses the goal's figures in all (0: it meets them); a threat not measured misses by 1."""
    return float(sum(shortfall_parts(record, classmean).values()))


def shortfall_parts(record: dict, classmean: float) -> dict[str, float]:
    """Each of the goal's constraints that a point misses, with by how much: what limits it (report.md lists them
    for the nearest point when none meets the goal)."""
    utility = record["utility_kept"]
    missed = {"utility kept": 1.0 if utility is None else max(0.0, GOAL_UTILITY - utility)}
    for threat in THREAT_NAMES:
        parts = record[threat]
        if not parts or "ssim" not in parts or "linkage" not in parts:
            missed[f"threat {threat} not measured"] = 1.0
            continue
        missed[f"threat {threat} SSIM"] = max(0.0, parts["ssim"] - classmean - GOAL_SSIM_MARGIN)
        missed[f"threat {threat} linkage"] = max(0.0, parts["linkage"] - GOAL_LINKAGE)
    return {name: amount for name, amount in missed.items() if amount > 0}


def goal_point(records: list[dict]) -> dict:
    """The point meeting the goal with the highest utility kept; else the nearest (smallest shortfall)."""
    meeting = [r for r in records if r["meets_goal"]]
    if meeting:
        return max(meeting, key=lambda r: r["utility_kept"])
    return min(records, key=lambda r: (r["shortfall"], -(r["utility_kept"] or 0.0)))


def goal_figures(chosen: dict, figures: dict) -> dict:
    """The `best_*_at_goal` figures of the chosen point (see the module docstring)."""
    found = {"goal_met": int(chosen["meets_goal"]), "best_goal_shortfall": chosen["shortfall"]}
    for end in ("", "_low", "_high"):
        found[f"best_utility_kept_at_goal{end}"] = chosen[f"utility_kept{end}"]
        found[f"best_encoder_linkage_b_at_goal{end}"] = chosen[f"encoder_linkage{end}"]
    for threat in THREAT_NAMES:
        parts = chosen[threat] or {}
        for part in PARTS:
            found[f"best_{part}_{threat}_at_goal"] = parts.get(part)
        found[f"best_saturated_{threat}_at_goal"] = int(bool(parts.get("saturated")))
    found["best_saturated_at_goal"] = int(all(found[f"best_saturated_{t}_at_goal"] for t in THREAT_NAMES))
    found["classmean_ssim"] = figures["classmean_ssim"]
    return found


def reference_points(privacy_report) -> dict[str, dict]:
    """threat -> {scheme: (worst-case SSIM, utility kept)} of a privacy report's schemes, to draw beside the points
    ({} without a report)."""
    if privacy_report is None:
        return {}
    from veil.experiments.privacy.verdicts import load_report, schemes_of

    doc = load_report(privacy_report)
    return {threat: {v.scheme: (v.parts["ssim"][0], v.utility[0]) for v in
                     threat_verdicts(doc["figures"], schemes_of(doc), threat) if v.utility and "ssim" in v.parts}
            for threat in THREAT_NAMES}


def pareto(points: dict[str, tuple[float, float]]) -> list[str]:
    """The names no other point dominates (lower or equal SSIM and higher or equal utility, one strictly)."""
    return [name for name, (x, y) in points.items()
            if not any(a <= x and b >= y and (a < x or b > y) for a, b in points.values())]


def write_plots(out_dir: Path, records: list[dict], figures: dict, reference: dict) -> None:
    from veil.experiments.plots import frontier

    goal_x = figures["classmean_ssim"] + GOAL_SSIM_MARGIN
    for threat in THREAT_NAMES:
        points = {r["name"]: (r[threat]["ssim"], r["utility_kept"]) for r in records
                  if r[threat] and "ssim" in r[threat] and r["utility_kept"] is not None}
        if points:
            frontier(out_dir / f"frontier_{threat}.png", points, pareto(points),
                     f"best attack's median SSIM under threat {threat}",
                     "utility kept (vectors' MLP / plain CNN of the encoder's size)",
                     f"threat {threat}: the sweep (goal: SSIM ≤ {goal_x:.3f}, utility ≥ {GOAL_UTILITY})",
                     reference=reference.get(threat), goal=(goal_x, GOAL_UTILITY),
                     lower_bounds=frozenset(r["name"] for r in records if r[threat] and not r[threat]["saturated"]))


def _f(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _threat_cell(parts: dict | None) -> str:
    if not parts:
        return "n/a"
    bound = "" if parts["saturated"] else "≥ "
    return " · ".join(f"{part} {bound}{_f(parts.get(part))}" for part in PARTS)


def _limits(record: dict, classmean: float) -> str:
    """The goal's constraints a point misses, by how much, and whether its figures are lower bounds."""
    missed = [f"{name} by {_f(amount)}" for name, amount in shortfall_parts(record, classmean).items()]
    if not all(record[t] and record[t]["saturated"] for t in THREAT_NAMES):
        missed.append("not every run saturated (its figures are lower bounds)")
    return "; ".join(missed)


def report_text(doc: dict, records: list[dict], chosen: dict, reference: dict) -> str:
    figures, meta, config = doc["figures"], doc["meta"], doc["config"]
    classmean = figures["classmean_ssim"]
    verdict_line = (f"**The goal is met** by `{chosen['name']}`." if chosen["meets_goal"] else
                    f"**No point meets the goal.** The nearest is `{chosen['name']}` (total shortfall "
                    f"{_f(chosen['shortfall'])}). What limits it: {_limits(chosen, classmean)}.")
    lines = ["# The privacy frontier: learned obfuscation, AAE knobs and the keyed AAE", "",
             f"Produced by `{meta['command']}` (commit {meta['commit']}, seed {meta['seed']}).", "",
             f"Goal, at saturation under threats a, b and c: utility kept ≥ {GOAL_UTILITY}; the best attack's median "
             f"SSIM ≤ the class-mean image's ({_f(classmean)} [{_f(figures.get('classmean_ssim_low'))}, "
             f"{_f(figures.get('classmean_ssim_high'))}]) + {GOAL_SSIM_MARGIN}; linkage ≤ {GOAL_LINKAGE} "
             f"(chance: {_f(figures.get('linkage_chance'))} here; 0.01 with 100 victims of each class).", "",
             verdict_line, "",
             f"At that point: utility kept {_f(figures['best_utility_kept_at_goal'])} "
             f"[{_f(figures['best_utility_kept_at_goal_low'])}, {_f(figures['best_utility_kept_at_goal_high'])}]; "
             + "; ".join(f"threat {t}: SSIM {_f(figures[f'best_ssim_{t}_at_goal'])} (class mean {_f(classmean)}), "
                         f"linkage {_f(figures[f'best_linkage_{t}_at_goal'])}, saturated "
                         f"{figures[f'best_saturated_{t}_at_goal']:.0f}" for t in THREAT_NAMES) + ".", "",
             "Utility kept: the masked vectors' MLP accuracy over a plain CNN of the encoder's size (widths 16, 32) "
             f"at the same budget: {_f(figures.get('plain_cnn16x32_accuracy'))}. Parts: the worst case over the "
             "attacks run under the threat (SSIM: median; semantic: the judge's accuracy above chance, normalised; "
             "linkage among 100 same-class candidates); ≥: not every run saturated.", "",
             f"Encoder linkage (threat b, beside the goal, not part of it): the share of victims that an attacker "
             f"holding the encoder and the 100 candidate images picks out by masking the candidates itself; "
             f"{_f(figures['best_encoder_linkage_b_at_goal'])} at `{chosen['name']}`. A deterministic encoder scores "
             "1 whatever its reconstructions reveal: only fresh masking noise lowers it.", "",
             "| point | family | knob = value | utility kept | owner SSIM | threat a | threat b | threat c | "
             "encoder linkage (b) | meets goal |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(f"| {r['name']} | {r['family']} | {r['knob']} = {r['value']:g} | {_f(r['utility_kept'])} "
                     f"[{_f(r['utility_kept_low'])}, {_f(r['utility_kept_high'])}] | {_f(r['owner_ssim'])} | "
                     + " | ".join(_threat_cell(r[t]) for t in THREAT_NAMES)
                     + f" | {_f(r['encoder_linkage'])} | {'yes' if r['meets_goal'] else 'no'} |")
    lines += ["", *_keyed_lines(figures), "",
              "![threat a](frontier_a.png) ![threat b](frontier_b.png) ![threat c](frontier_c.png)", "",
              _reference_line(config["privacy_report"], reference), "",
              *(["Points not measured yet: " + ", ".join(config["missing_points"]) + "."]
                if config["missing_points"] else [])]
    return "\n".join(lines) + "\n"


def _reference_line(privacy_report, reference: dict) -> str:
    if privacy_report is None:
        return "Existing schemes drawn beside the points: none (no privacy report given, `--report`)."
    drawn = sorted({name for schemes in reference.values() for name in schemes})
    return (f"Existing schemes drawn beside the points (grey crosses), from {privacy_report}: "
            + (", ".join(drawn) if drawn else "none: its privacy.json has no utility kept (a report made before "
               "`utility_kept` existed)") + ".")


def keyed_figures(figures: dict) -> dict:
    """`keyed_aae_key_undone` (1/0): whether the key-procrustes attack, without the key, decodes the keyed AAE's
    victims within `GOAL_SSIM_MARGIN` of the owner's median SSIM with the key (absent when either is not measured)."""
    attack, owner = figures.get("aae-keyed_key-procrustes_a_ssim"), figures.get("aae-keyed_owner_ssim")
    if attack is None or owner is None:
        return {}
    return {"keyed_aae_key_undone": int(attack >= owner - GOAL_SSIM_MARGIN),
            "keyed_aae_attack_over_owner_ssim": attack / owner if owner else None}


def _keyed_lines(figures: dict) -> list[str]:
    """Whether the class statistics undo the keyed AAE's key: the key-procrustes attack beside the owner's decoding
    with the key, on the same victims."""
    attack, owner = figures.get("aae-keyed_key-procrustes_a_ssim"), figures.get("aae-keyed_owner_ssim")
    if "keyed_aae_key_undone" not in figures:
        return ["Keyed AAE: not measured."]
    undone = bool(figures["keyed_aae_key_undone"])
    return [f"Keyed AAE: the key-procrustes attack (threat a: the shared network, the labelled masked set and public "
            f"images, no key) reaches median SSIM {_f(attack)} against the owner's {_f(owner)} with the key: the "
            f"class statistics {'undo' if undone else 'do not undo'} the key (within {GOAL_SSIM_MARGIN} of the owner "
            f"{'or better' if undone else 'is not reached'})."]

