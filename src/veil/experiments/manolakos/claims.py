"""The claims of paper 004 (Manolakos & Soltani, blur / filters / scrambling), as the paper states them, checked
against `veil reproduce tradeoff`'s scramble.json and tradeoff.json (rules in `veil.experiments.claims`, intervals
in `veil.experiments.run_accuracy`)."""
from __future__ import annotations

from veil.experiments.claims import Claim, above, level, untestable
from veil.experiments.manolakos import values as paper
from veil.experiments.run_accuracy import accuracy, difference, figure_interval, mean_accuracy, ratio

SCHEMES = ("blur", "randfilter", "iidfilter", "scramble")


def manolakos_claims(docs: dict) -> list[Claim]:
    """Every claim of paper 004, in the report's order; `docs` maps each JSON's name to its contents (or None)."""
    return _scramble_claims(docs["scramble"]) + _curve_claims(docs["tradeoff"])


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
    means = {scheme: mean_accuracy(doc, [f"{scheme}_{size}" for size in _sizes(doc, scheme)]) for scheme in SCHEMES}
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
