"""The claims of papers 003 and 004, as the papers state them, checked against `veil reproduce tradeoff`'s JSON
(rules in `veil.experiments.claims`).

With several seeds (the JSON's `seeds`), a difference or ratio of two runs is paired by seed: the mean of the
per-seed differences or ratios, with its 95% t interval over seeds (n - 1 degrees of freedom). With one seed,
accuracies are over the test images (Wilson intervals), and a difference or ratio of two runs takes its interval
from their binomial errors as if independent: the runs are scored on the same images, which correlates them, so the
interval errs wide. A difference whose interval holds 0 (a ratio's, 1) is "no difference", neither a win nor a loss.
"""
from __future__ import annotations

import math
import operator
from typing import NamedTuple

import numpy as np

from veil.experiments import baseline_values as paper
from veil.experiments.claims import Claim, above, level, untestable
from veil.metrics import Z95, accuracy_interval, accuracy_se, t_interval

DOCS = ("convmixer_etc", "jpeg", "scramble", "tradeoff", "compress")
SCHEMES = ("blur", "randfilter", "iidfilter", "scramble")


def baseline_claims(docs: dict) -> list[Claim]:
    """Every claim, in the report's order; `docs` maps each name of DOCS to its JSON (or None)."""
    return (_etc_claims(docs["convmixer_etc"]) + _jpeg_claims(docs["jpeg"], docs["convmixer_etc"])
            + _compress_claims(docs["compress"]) + _scramble_claims(docs["scramble"]) + _curve_claims(docs["tradeoff"]))


class Accuracy(NamedTuple):
    """A run's accuracy (the mean over seeds), its binomial standard error over the test images, and its value per
    seed ({} with one seed)."""
    value: float
    se: float
    seeds: dict


def accuracy(doc: dict, name: str) -> Accuracy:
    figures, seeds = doc["figures"], doc["config"]["seeds"]
    value = figures[f"{name}_accuracy"]
    per_seed = {seed: figures[f"{name}_accuracy_seed{seed}"] for seed in seeds} if len(seeds) > 1 else {}
    return Accuracy(value, accuracy_se(value, doc["config"]["n_test"]), per_seed)


def figure_interval(doc: dict, name: str) -> tuple[float, float]:
    """The 95% interval of an accuracy figure: over seeds when the JSON has several, else Wilson's over its test
    images."""
    figures = doc["figures"]
    if f"{name}_lo" in figures:
        return figures[f"{name}_lo"], figures[f"{name}_hi"]
    return accuracy_interval(figures[name], doc["config"]["n_test"])


def _paired(a: Accuracy, b: Accuracy, combine) -> tuple[float, tuple[float, float]] | None:
    """The mean of `combine` of a and b seed by seed and its t interval, when both have the same seeds."""
    if not a.seeds or a.seeds.keys() != b.seeds.keys():
        return None
    values = [combine(a.seeds[seed], b.seeds[seed]) for seed in a.seeds]
    return float(np.mean(values)), t_interval(values)


def ratio(a: Accuracy, b: Accuracy) -> tuple[float, tuple[float, float]]:
    paired = _paired(a, b, operator.truediv)
    if paired:
        return paired
    value = a.value / b.value
    half = Z95 * value * math.hypot(a.se / a.value, b.se / b.value)
    return value, (value - half, value + half)


def difference(a: Accuracy, b: Accuracy) -> tuple[float, tuple[float, float]]:
    paired = _paired(a, b, operator.sub)
    if paired:
        return paired
    value, half = a.value - b.value, Z95 * math.hypot(a.se, b.se)
    return value, (value - half, value + half)


def _mean(doc: dict, names: list[str]) -> Accuracy:
    """The mean of several runs' accuracies, its standard error, and its value per seed."""
    runs = [accuracy(doc, name) for name in names]
    seeds = {seed: float(np.mean([run.seeds[seed] for run in runs])) for seed in runs[0].seeds}
    return Accuracy(float(np.mean([run.value for run in runs])), math.sqrt(sum(run.se ** 2 for run in runs)) / len(runs),
                    seeds)


# ---------------------------------------------------------------- paper 003


def _etc_claims(doc) -> list[Claim]:
    statement, source = "ConvMixer on EtC images keeps the plain accuracy (EtC / plain)", "003, Table II"
    expected = paper.CONVMIXER_ETC / paper.CONVMIXER_PLAIN
    if doc is None:
        return [untestable("etc_ratio", statement, source, f"{expected:.3f}", "convmixer not run")]
    value, interval = ratio(accuracy(doc, "etc"), accuracy(doc, "plain"))
    note = (f"ours {doc['figures']['etc_accuracy']:.3f} / {doc['figures']['plain_accuracy']:.3f} after "
            f"{doc['figures']['epochs']:.0f} epochs; the paper: {paper.CONVMIXER_ETC} / {paper.CONVMIXER_PLAIN} %")
    return [level("etc_ratio", statement, source, value, interval, expected, (expected, expected), note=note,
                  same=1.0)]


def _jpeg_reference(jpeg: dict, etc) -> Accuracy | None:
    """EtC's uncompressed accuracy at the JPEG runs' training size: their own reference run, or the ConvMixer
    comparison's when it trained on as many images; None when neither did."""
    if "etc_uncompressed_accuracy" in jpeg["figures"]:
        return accuracy(jpeg, "etc_uncompressed")
    if etc is not None and etc["config"]["n_train"] == jpeg["config"]["n_train"]:
        return accuracy(etc, "etc")
    return None


def _jpeg_claims(doc, etc) -> list[Claim]:
    claims = []
    for quality, percent in paper.JPEG_ETC.items():
        statement = f"EtC after JPEG at quality {quality} keeps its uncompressed accuracy (JPEG / uncompressed)"
        source, expected = "003, Table III", percent / paper.CONVMIXER_ETC
        reference = None if doc is None else _jpeg_reference(doc, etc)
        if reference is None:
            reason = ("jpeg not run" if doc is None else f"no uncompressed EtC run on the JPEG runs' "
                      f"{doc['config']['n_train']} training images")
            claims.append(untestable(f"jpeg{quality}_ratio", statement, source, f"{expected:.3f}", reason))
            continue
        value, interval = ratio(accuracy(doc, f"etc_jpeg{quality}"), reference)
        claims.append(level(f"jpeg{quality}_ratio", statement, source, value, interval, expected,
                            (expected, expected), same=1.0))
    return claims


def _compress_claims(doc) -> list[Claim]:
    """File sizes over the whole set: exact, no interval."""
    claims = []
    for quality in paper.FILE_MB["plain"]:
        ratio = paper.FILE_MB["etc"][quality] / paper.FILE_MB["plain"][quality]
        same = f"EtC images compress as well as plain ones under JPEG {quality} (EtC / plain size)"
        smaller = f"JPEG {quality} of EtC images saves more than half the uncompressed size (saving - 0.5)"
        saving = 1 - paper.FILE_MB["etc"][quality] / paper.UNCOMPRESSED_MB
        if doc is None:
            claims += [untestable(f"compress{quality}_same", same, "003, Table IV", f"{ratio:.3f}", "compress not run"),
                       untestable(f"compress{quality}_saving", smaller, "003, Sec IV-C", f"{saving - 0.5:.3f}",
                                  "compress not run")]
            continue
        f = doc["figures"]
        ours = f[f"etc_jpeg{quality}_mb"] / f[f"plain_jpeg{quality}_mb"]
        tolerance = paper.SAME_SIZE_TOLERANCE
        note = (f"held within {tolerance:.0%} of equal size; our source images were JPEG (quality 75) before, so "
                "sizes are not the paper's")
        claims.append(level(f"compress{quality}_same", same, "003, Table IV", ours, (ours, ours), ratio,
                            (1 - tolerance, 1 + tolerance), higher_is_better=False, note=note))
        margin = 1 - f[f"etc_jpeg{quality}_mb"] / f["uncompressed_mb"] - paper.LOSSY_REDUCTION
        claims.append(above(f"compress{quality}_saving", smaller, "003, Sec IV-C", margin, (margin, margin),
                            f"{saving - paper.LOSSY_REDUCTION:.3f}"))
    return claims


# ---------------------------------------------------------------- paper 004


def _scramble_claims(doc) -> list[Claim]:
    source = "004, Secs 4.1, 4.5"
    keep = paper.CNN_SCRAMBLE8 / paper.CNN_PLAIN
    kept = "8x8 block scrambling keeps this share of the CNN's plain accuracy (scrambled / plain)"
    descrambler = "a descrambler layer changes the scrambled accuracy by about -10 points (with - without)"
    if doc is None:
        return [untestable("scramble8_kept", kept, source, f"{keep:.3f}", "scramble not run"),
                untestable("descrambler_change", descrambler, "004, Sec 4.6", f"{paper.DESCRAMBLER_CHANGE:.3f}",
                           "scramble not run")]
    value, interval = ratio(accuracy(doc, "cnn_scramble8"), accuracy(doc, "cnn_plain"))
    change, change_interval = difference(accuracy(doc, "descrambler_scramble8"), accuracy(doc, "cnn_scramble8"))
    return [level("scramble8_kept", kept, source, value, interval, keep, (keep, keep),
                  note=f"the paper: {paper.CNN_SCRAMBLE8} / {paper.CNN_PLAIN}", same=1.0),
            level("descrambler_change", descrambler, "004, Sec 4.6", change, change_interval, paper.DESCRAMBLER_CHANGE,
                  (paper.DESCRAMBLER_CHANGE,) * 2, note="the paper's descrambler \"has not learned the descrambling\"",
                  same=0.0)]


def _sizes(doc: dict, scheme: str) -> list[int]:
    return sorted(int(name.split("_")[1]) for name in doc["figures"]
                  if name.startswith(f"{scheme}_") and name.endswith("_accuracy"))


def _curve_claims(doc) -> list[Claim]:
    blur = "Gaussian blur costs less than 5 points at every kernel size (0.05 - drop, worst size)"
    iid = "i.i.d. random filters fall almost 20 points below a single random filter (mean over sizes)"
    over_iid = "scrambling scores above i.i.d. random filters (mean over sizes, difference)"
    under_random = "scrambling scores slightly below a single random filter (mean over sizes, difference)"
    blur_drop = "Gaussian blur has a definite drop below plain images (plain minus blur, mean over sizes)"
    blur_trend = "the wider the blur, the worse for classification (smallest minus largest kernel's accuracy)"
    rows = {"blur_drop": (blur_drop, "004, Sec 4.2"), "blur_trend": (blur_trend, "004, Sec 3"),
            "blur_small_drop": (blur, "004, Sec 4.2"), "iid_drop": (iid, "004, Sec 4.4"),
            "scramble_over_iid": (over_iid, "004, Sec 4.5"), "scramble_under_randfilter": (under_random, "004, Sec 4.5")}
    if doc is None:
        return [untestable(name, text, source, "-", "curves not run") for name, (text, source) in rows.items()]
    plain = accuracy(doc, "plain")
    worst = max((difference(plain, accuracy(doc, f"blur_{size}")) for size in _sizes(doc, "blur")),
                key=lambda d: d[0])
    means = {scheme: _mean(doc, [f"{scheme}_{size}" for size in _sizes(doc, scheme)]) for scheme in SCHEMES}
    below_plain, below_interval = difference(plain, means["blur"])
    blur_sizes = _sizes(doc, "blur")
    narrow_wide, narrow_wide_interval = difference(accuracy(doc, f"blur_{blur_sizes[0]}"),
                                                   accuracy(doc, f"blur_{blur_sizes[-1]}"))
    drop, drop_interval = difference(means["randfilter"], means["iidfilter"])
    over, over_interval = difference(means["scramble"], means["iidfilter"])
    under, under_interval = difference(means["randfilter"], means["scramble"])
    band = paper.IID_DROP_BAND
    return [above("blur_drop", *rows["blur_drop"], below_plain, below_interval, "> 0"),
            above("blur_trend", *rows["blur_trend"], narrow_wide, narrow_wide_interval, "> 0",
                  note=f"kernel {blur_sizes[0]} minus kernel {blur_sizes[-1]}"),
            above("blur_small_drop", *rows["blur_small_drop"], paper.BLUR_MAX_DROP - worst[0],
                  (paper.BLUR_MAX_DROP - worst[1][1], paper.BLUR_MAX_DROP - worst[1][0]), "> 0",
                  note=f"worst drop {worst[0]:.3f}"),
            level("iid_drop", *rows["iid_drop"], drop, drop_interval, sum(band) / 2, band,
                  note="\"almost 20%\" read as 15 to 20 points", same=0.0),
            above("scramble_over_iid", *rows["scramble_over_iid"], over, over_interval, "> 0"),
            above("scramble_under_randfilter", *rows["scramble_under_randfilter"], under, under_interval, "> 0",
                  note="random filter minus scrambling")]


def strength_trends(doc: dict) -> list[str]:
    """Each scheme's accuracy against its strength, as Markdown lines (the paper draws these as Figs 5, 7, 9 and 11,
    which its text does not give as numbers: reported here; only the blur's direction is stated, and checked as a
    claim)."""
    lines = []
    for scheme in SCHEMES:
        cells = [f"{size}: {doc['figures'][f'{scheme}_{size}_accuracy']:.3f} "
                 "[{:.3f}, {:.3f}]".format(*figure_interval(doc, f"{scheme}_{size}_accuracy"))
                 for size in _sizes(doc, scheme)]
        lines.append(f"- {scheme}: " + ", ".join(cells))
    return lines
