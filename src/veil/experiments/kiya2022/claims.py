"""The claims of paper 003 (MaungMaung & Kiya, EtC + ConvMixer), as the paper states them, checked against `veil
reproduce tradeoff`'s convmixer_etc.json, jpeg.json and compress.json (rules in `veil.experiments.claims`, intervals
in `veil.experiments.run_accuracy`)."""
from __future__ import annotations

from veil.experiments.claims import Claim, above, level, untestable
from veil.experiments.kiya2022 import values as paper
from veil.experiments.run_accuracy import Accuracy, accuracy, ratio


def kiya_claims(docs: dict) -> list[Claim]:
    """Every claim of paper 003, in the report's order; `docs` maps each JSON's name to its contents (or None)."""
    return (_etc_claims(docs["convmixer_etc"]) + _jpeg_claims(docs["jpeg"], docs["convmixer_etc"])
            + _compress_claims(docs["compress"]))


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


def at224_claims(docs: dict) -> list[Claim]:
    """Paper 003's claims at 224x224, checked against `veil reproduce at224`'s convmixer224.json, vit224.json and
    jigsaw224.json (each None when not run)."""
    models = [("convmixer224", "ConvMixer", paper.CONVMIXER384_IMAGENETTE,
               "the paper's figure is ConvMixer-384/8 on Imagenette; ours CIFAR-10 resized unless --data is Imagenette"),
              ("vit224", "ViT-B/16", paper.VIT_CIFAR224,
               "the paper fine-tuned a pretrained ViT-B/16; ours trains from scratch")]
    claims = []
    for name, model, figures, note in models:
        statement = f"{model} on EtC images at 224 (block 16) keeps most of its plain accuracy (EtC / plain)"
        expected = figures["etc"] / figures["plain"]
        doc = docs[name]
        if doc is None or not doc["figures"]["plain_accuracy"]:
            reason = f"{name} not run" if doc is None else "the plain run scored 0: no ratio"
            claims.append(untestable(f"{name}_ratio", statement, "003, Table II", f"{expected:.3f}", reason))
            continue
        value, interval = ratio(accuracy(doc, "etc"), accuracy(doc, "plain"))
        claims.append(level(f"{name}_ratio", statement, "003, Table II", value, interval, expected,
                            (expected, expected), note=note, same=1.0))
    return claims + _robust_claims(docs["jigsaw224"])


def _robust_claims(doc) -> list[Claim]:
    claims = []
    for name, what in (("cifar", "CIFAR-10 resized to 224"), ("photos", "photographs cropped to 224")):
        statement = (f"EtC at 224 resists a ciphertext-only attack on a set under one key ({what}): share of blocks "
                     "restored")
        if doc is None:
            claims.append(untestable(f"robust_{name}", statement, "003, Sec IV-E", f"<= {paper.ROBUST_BLOCKS}",
                                     "jigsaw not run"))
            continue
        f, figure = doc["figures"], f"{name}_blocks_correct_any_symmetry"
        claims.append(level(f"robust_{name}", statement, "003, Sec IV-E", f[figure],
                            (f[f"{figure}_low"], f[f"{figure}_high"]), 0.0,
                            (0.0, paper.ROBUST_BLOCKS), higher_is_better=False,
                            note=f"the paper gives no number: robust read as at most {paper.ROBUST_BLOCKS:.0%} of "
                                 "blocks restored, up to one whole-image rotation, channel order and "
                                 "negative-positive; interval over the blocks of an image (the key places every "
                                 "image's blocks alike)"))
    return claims
