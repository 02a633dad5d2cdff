"""`veil reproduce at224`: paper 003 at the size it used, 224x224 with 16-pixel EtC blocks (196 blocks an image).

Parts (`--parts a,b`; all by default), each writing its own JSON (a later `--parts c --force` into the same folder
adds to it, and the report covers every JSON there):
- `convmixer`: ConvMixer (patch 16 at the CPU budgets; the paper's ConvMixer-384/8, patch 4, on `gpu`) trained on
  plain and on EtC images (block 16) of CIFAR-10 resized to 224, same data, epochs and seed -> convmixer224.json
- `vit`: the same for a ViT-B/16-shaped model (patch 16 = block 16; small width and depth at the CPU budgets,
  ViT-B/16's 768/12/12 on `gpu`) -> vit224.json
- `jigsaw`: the ciphertext-only jigsaw attack (`veil.attacks.jigsaw`) at 224 with 16-pixel blocks on two sets, each
  masked under one random key: CIFAR-10 test images resized to 224, and the colour photographs that ship inside
  scikit-image and scikit-learn (`veil.data.photos`, cropped to 224); blocks restored exactly, SSIM and linkage
  (`veil.attacks.scoring`), and the same CIFAR-10 images attacked at 32x32 beside them -> jigsaw224.json and a
  picture per set
Then report.md (claims, figures with their 95% intervals, the budget, what differs from the paper).

`--data` is any labelled source with train and test splits; a folder in Imagenette's layout (`train/<wnid>/*.JPEG`,
`val/<wnid>/*.JPEG`) is read as it is, `val` standing for the test split. Images of one size (CIFAR-10's 32x32) are
subsampled first and then resized (all 50,000 at 224 would take 7.5 GB of uint8); the images stay uint8 throughout
and the classifiers convert each batch. `--size` (default 224) and `--resize` (default crop: the short side scaled,
the centre cut) change the size; `--epochs N` caps every run at N epochs, and the report names such a run "N of
<budget's> epochs". Seeds, intervals and per-seed figures are those of `veil reproduce tradeoff`.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from veil import defaults
from veil.data import ImageSet, load, stratified_subsample, to_pixel_images
from veil.data.convert import Resize
from veil.attacks.jigsaw import ORIENTATIONS, dihedral
from veil.attacks.scoring import blocks_correct, per_image
from veil.data.photos import PHOTOS
from veil.errors import VeilError
from veil.experiments import register_protocol
from veil.experiments.claims import claims_table, write_claims
from veil.experiments.kiya2022 import values as paper
from veil.experiments.kiya2022.claims import at224_claims
from veil.experiments.manolakos.tradeoff import (AUGMENT, PartOutcome, chosen_parts, chosen_seeds, json_section,
                                                 run_folder, run_part, train_runs)
from veil.io.read import read_json
from veil.io.write import write_bytes
from veil.keyfiles import experiment_secret
from veil.maskers.base import masker_class
from veil.metrics import proportion_interval
from veil.results import write_results
from veil.schemes.keyed import CHANNEL_ORDERS
from veil.training import progress_mode

PARTS = ("convmixer", "vit", "jigsaw")
SIZE = 224
BLOCK = 16
#: paper 003 trained encrypted images with mixup and CutMix only (plain ones with timm's whole set, AUGMENT)
MIX = {"mixup": 0.8, "cutmix": 1.0}
#: the paper's ConvMixer epochs, against which an `--epochs` cap is named
PAPER_EPOCHS = 300


@dataclass(frozen=True)
class Recipe:
    """How one architecture trains in both arms of its comparison: the classifier, its architecture and training
    options, batch and epochs (the same for both arms), and what each arm adds (`plain`, `etc`: the paper augmented
    them differently). `paper`: what the paper did where this differs."""
    model: str
    options: dict
    epochs: int
    batch_size: int = 64
    plain: dict = field(default_factory=dict)
    etc: dict = field(default_factory=dict)
    paper: str = ""


@dataclass(frozen=True)
class At224Budget:
    """Training and test images (None: the whole split), the two recipes, and the jigsaw attack's CIFAR-10 images
    (one key) and public images (their mean image resolves the whole-image orientation)."""
    n_train: int | None
    n_test: int | None
    convmixer: Recipe
    vit: Recipe
    jigsaw_images: int
    public_images: int
    seeds: int = 1
    name: str = ""


BUDGETS = {
    # sized for about 75 minutes on 2 cores with --jobs 2 (the plain and EtC runs of a model train at once, one
    # thread each). Training speed at 224, batch 64, one thread, measured on the models alone at a load average of
    # 4: the ConvMixer below 69 images/s, a ViT of this width with a 2x MLP 41 (this one's 4x MLP: ~35, estimated);
    # through the classifier (uint8 input, validation included) at a load average of 7.5: 17.7 and 7.1. With the 2
    # cores to itself, 7,000 x 12 epochs take 84,000 x (1/69 + 1/35) s = 60 min,
    # plus validation and test passes, masking and resizing (~5 min) and the jigsaw part (500 CIFAR-10 images at 224 and at 32, 10 photographs: ~2 min a set
    # at 224, 5 GB peak): about 75 minutes; on a busy machine several times that
    "full": At224Budget(7000, 1000,
                        Recipe("convmixer", {"dim": 128, "depth": 4, "kernel": 9, "patch": 16}, 12, 64, MIX, MIX),
                        Recipe("vit", {"patch": 16, "dim": 128, "depth": 4, "heads": 2, "mlp_ratio": 4}, 12, 64, MIX,
                               MIX, "ViT-B/16 pretrained on ImageNet-21k, fine-tuned"),
                        500, 500),
    # paper 003's settings (Sec IV-A) on the whole splits: ConvMixer-384/8 (k 9, patch 4, as for Imagenette at 224),
    # AdamW lr 0.01 wd 0.01 with a triangular schedule, batch 64, 300 epochs, timm's augmentation on plain images and
    # mixup + CutMix on encrypted ones; ViT-B/16 (768 wide, 12 layers, 12 heads, MLP 4x) at the paper's batch 512 and
    # its plain run's 10,000 steps (103 epochs of 50,000) for both arms. The paper fine-tuned an ImageNet-21k
    # ViT-B/16 with SGD (lr 0.03, momentum 0.9, warm-up and cosine decay; 20,000 steps for encrypted images); no
    # pretrained weights are reachable here, so this trains from scratch, with the classifier's AdamW at lr 1e-3.
    # Both train their forward passes under bfloat16 autocast (timm's ConvMixer recipe trains with mixed precision)
    "gpu": At224Budget(None, None,
                       Recipe("convmixer", {"dim": 384, "depth": 8, "kernel": 9, "patch": 4, "lr": 0.01,
                                            "weight_decay": 0.01, "bf16": True}, PAPER_EPOCHS, 64, AUGMENT, MIX),
                       Recipe("vit", {"patch": 16, "dim": 768, "depth": 12, "heads": 12, "mlp_ratio": 4, "lr": 1e-3,
                                      "weight_decay": 0.01, "bf16": True}, 103, 512, MIX, MIX,
                              "ViT-B/16 pretrained on ImageNet-21k, fine-tuned with SGD lr 0.03 momentum 0.9, batch "
                              "512, 10,000 steps (plain) and 20,000 (EtC)"),
                       2000, 2000),
    # a smoke run
    "quick": At224Budget(100, 50,
                         Recipe("convmixer", {"dim": 16, "depth": 1, "kernel": 3, "patch": 16}, 1, 32, MIX, MIX),
                         Recipe("vit", {"patch": 16, "dim": 16, "depth": 1, "heads": 2, "mlp_ratio": 2}, 1, 32, MIX,
                                MIX),
                         40, 40),
}


@register_protocol("at224")
def run(out_dir, quick: bool = False, seed: int = 0, data: str | None = None, parts: str | None = None,
        jobs: int = 1, budget: str | None = None, work: str | None = None, seeds=None, epochs: int | None = None,
        size=None, resize: str | None = None) -> dict:
    """`budget`: a name of BUDGETS (default "full", or "quick" with `quick`); `epochs`: cap every run at this many
    epochs; `size`, `resize`: the image size (default 224) and how images are fitted to it (default crop). Runs
    checkpoint under `work` (default runs/at224) and a later call resumes them."""
    if jobs < 1:
        raise VeilError(f"--jobs must be at least 1, got {jobs}")
    name = budget or ("quick" if quick else "full")
    if name not in BUDGETS:
        raise VeilError(f"unknown budget {name!r}; budgets are {', '.join(BUDGETS)}")
    chosen = chosen_parts(parts, PARTS)
    chosen_budget = capped(replace(BUDGETS[name], name=name), epochs)
    fit = Resize.of(SIZE if size is None else size, resize or "crop")
    seed_list = chosen_seeds(seeds, seed, chosen_budget)
    out_dir = Path(out_dir)
    source = data or defaults.CIFAR10
    figures = {}
    if set(chosen) - {"jigsaw"}:
        train, test = (native_split(source, split, fit) for split in ("train", held_out_split(source)))
        experiments = [Experiment(train, draw(test, chosen_budget.n_test, s, fit), chosen_budget, s, out_dir, jobs,
                                  Path(work or "runs/at224") / run_folder(f"{source}@{fit.describe()}", chosen_budget, s),
                                  fit)
                       for s in seed_list]
        for part in chosen:
            if part != "jigsaw":
                figures.update({f"{part}/{key}": value for key, value in run_part(experiments, part).items()})
    if "jigsaw" in chosen:
        figures.update({f"jigsaw/{key}": value
                        for key, value in jigsaw_part(source, chosen_budget, seed_list[0], fit, out_dir).items()})
    write_bytes(out_dir / "report.md", report(out_dir, chosen_budget, seed_list, fit).encode())
    return figures


run.parts = (*PARTS, "report")


def capped(budget: At224Budget, epochs: int | None) -> At224Budget:
    """The budget with every recipe cut to `epochs` (None: as it is); the recipe's own count stays in
    `epochs_of` of each JSON's config, through `Experiment.full_epochs`."""
    if epochs is None:
        return budget
    if epochs < 1:
        raise VeilError(f"--epochs must be at least 1, got {epochs}")
    return replace(budget, convmixer=replace(budget.convmixer, epochs=min(epochs, budget.convmixer.epochs)),
                   vit=replace(budget.vit, epochs=min(epochs, budget.vit.epochs)))


def held_out_split(source: str) -> str:
    """"val" for a folder in Imagenette's layout (train/ and val/, no test/), else "test"."""
    path = Path(source)
    return "val" if (path / "val").is_dir() and not (path / "test").exists() else "test"


def native_split(source: str, split: str, fit: Resize) -> ImageSet:
    """`split` as uint8 images at their own size when they share one (CIFAR-10's 32x32: subsets are drawn before
    resizing, since all 50,000 at 224 would take 7.5 GB), else at `fit`'s size (a source whose images differ in size,
    such as Imagenette's photographs, cannot be read without one)."""
    try:
        return load(source, split=split, pixels=True)
    except VeilError:  # images of several sizes (an unreadable source fails the same way again below)
        return load(source, split=split, pixels=True, size=fit.size, resize=fit.mode)


def draw(images: ImageSet, n: int | None, seed: int, fit: Resize) -> ImageSet:
    """A stratified draw of n of the images (all with n None), fitted to `fit`'s size."""
    return resized(images if n is None else stratified_subsample(images, n, seed), fit)


def resized(images: ImageSet, fit: Resize) -> ImageSet:
    """uint8 images (N, 3, h, w) fitted to `fit`'s size, uint8."""
    if images.size == fit.size:
        return images
    channels_last = np.ascontiguousarray(images.images.transpose(0, 2, 3, 1))
    return ImageSet(to_pixel_images(fit.images(channels_last)), images.labels, list(images.class_names),
                    images.source)


class Experiment:
    """One seed's plain vs EtC comparison of each architecture (a method per part, as `run_part` calls them)."""

    def __init__(self, train: ImageSet, test: ImageSet, budget: At224Budget, seed: int, out_dir: Path, jobs: int,
                 work_dir: Path, fit: Resize):
        self.train, self.test, self.budget, self.seed, self.out_dir = train, test, budget, seed, out_dir
        self.jobs, self.work_dir, self.fit = jobs, work_dir, fit

    def convmixer(self) -> PartOutcome:
        return self.compare("convmixer", "convmixer224.json")

    def vit(self) -> PartOutcome:
        return self.compare("vit", "vit224.json")

    def compare(self, part: str, file: str) -> PartOutcome:
        """Both arms of `part`'s recipe on this seed's training subset (resized), each scored on its test images."""
        recipe = getattr(self.budget, part)
        train, (etc_train, etc_test) = self.train_subset, self.encrypted
        arms = {"plain": (train.images, self.test.images, recipe.plain),
                "etc": (etc_train, etc_test, recipe.etc)}
        progress = progress_mode() is not None
        specs = {arm: (recipe.model, {**recipe.options, **extra}, train_x, test_x, self.work_dir / part / arm,
                       train.labels, list(train.class_names), self.test.labels, recipe.epochs, recipe.batch_size,
                       self.seed, progress) for arm, (train_x, test_x, extra) in arms.items()}
        runs = train_runs(specs, self.jobs)
        plain, encrypted = runs["plain"]["accuracy"], runs["etc"]["accuracy"]
        figures = {"plain_accuracy": plain, "etc_accuracy": encrypted, "ratio": encrypted / plain if plain else None,
                   "epochs": recipe.epochs}
        return PartOutcome(file, figures, runs, len(train),
                           {"recipe": asdict(recipe), "epochs_of": self.full_epochs(part), "etc_block": BLOCK,
                            "size": list(self.fit.size), "resize": self.fit.mode})

    @cached_property
    def train_subset(self) -> ImageSet:
        """This seed's training images, resized: drawn once for both architectures."""
        return draw(self.train, self.budget.n_train, self.seed, self.fit)

    @cached_property
    def encrypted(self) -> tuple[np.ndarray, np.ndarray]:
        """The training subset and the test images under this seed's stand-in EtC key, encrypted once for both
        architectures."""
        etc = masker_class("etc")(experiment_secret(self.seed), block=BLOCK)
        return etc.transform(self.train_subset.images), etc.transform(self.test.images)

    def full_epochs(self, part: str) -> int:
        """The epochs of the named budget's recipe, before any `--epochs` cap."""
        return getattr(BUDGETS[self.budget.name], part).epochs


# ---------------------------------------------------------------------------------------------- the jigsaw part


def jigsaw_part(source: str, budget: At224Budget, seed: int, fit: Resize, out_dir: Path) -> dict:
    """The jigsaw attack on CIFAR-10 test images at `fit`'s size and at their own, and on the photographs, each set
    under one random key; jigsaw224.json and a picture of each set."""
    from veil.attacks import Budget

    start = time.time()
    test = native_split(source, held_out_split(source), fit)
    victims = {"cifar": draw(test, budget.jigsaw_images, seed, fit),
               "photos": load(PHOTOS, size=fit.size, resize=fit.mode, pixels=True, require_labels=False),
               **({"cifar_native": stratified_subsample(test, budget.jigsaw_images, seed)} if test.size != fit.size
                  else {})}
    public_train = stratified_subsample(native_split(source, "train", fit), budget.public_images, seed)
    attack_budget = Budget(train_images=budget.public_images)
    figures, config = {}, {}
    for name, victim in victims.items():
        public = public_train if victim.size == public_train.size else resized(public_train, fit)
        outcome = attack_set(victim, public, attack_budget, seed, out_dir / f"jigsaw_{name}.png")
        figures.update({f"{name}_{key}": value for key, value in outcome.figures.items()})
        config[name] = {"images": len(victim), "size": list(victim.size), "source": victim.source,
                        "attack_s": outcome.config["attack_s"]}
    write_results(out_dir / "jigsaw224.json", figures, seed=seed, wall_s=time.time() - start,
                  config={"sets": config, "block": BLOCK, "public_images": budget.public_images,
                          "key": "one random key per set, never written", "budget": asdict(budget)})
    return figures


def attack_set(victim: ImageSet, public: ImageSet, budget, seed: int, picture: Path):
    """Mask `victim` under one fresh random key (EtC, block 16), attack it ciphertext-only with the jigsaw solver,
    score it; the blocks-correct figure gets a 95% Wilson interval over the image's blocks (one key places every
    image's blocks alike, so the blocks, not the images, are the independent draws)."""
    from veil.attacks import run_attack
    from veil.attacks.grid import attack_grid
    from veil.workflows import mask_images

    plain = float_set(victim)
    masked = mask_images(masker_class("etc")(secrets.token_bytes(32), block=BLOCK), victim)
    masked.data = masked.data.astype(np.float32) / np.float32(255) if masked.data.dtype == np.uint8 else masked.data
    outcome = run_attack("jigsaw", "a", masked, plain, float_set(public), seed=seed, budget=budget)
    blocks = (victim.size[0] // BLOCK) * (victim.size[1] // BLOCK)
    turned = whole_image_symmetry(plain.images, outcome.reconstructions)
    outcome.figures.update({"blocks": blocks, "blocks_correct_any_symmetry": blocks_correct(plain.images, turned, BLOCK),
                            "ssim_median_any_symmetry": float(np.median(per_image(plain.images, turned)["ssim"]))})
    for figure in ("blocks_correct", "blocks_correct_any_symmetry"):
        low, high = proportion_interval(int(round(outcome.figures[figure] * blocks)), blocks)
        outcome.figures.update({f"{figure}_low": low, f"{figure}_high": high})
    shown = slice(0, 6)
    attack_grid(picture, plain.images[shown], masked.data[shown], outcome.reconstructions[shown],
                f"jigsaw on EtC {victim.size[0]}x{victim.size[1]}, block {BLOCK}, one key: blocks exact "
                f"{outcome.figures['blocks_correct']:.0%} ({outcome.figures['blocks_correct_any_symmetry']:.0%} up to "
                f"a whole-image symmetry), median SSIM {outcome.figures['ssim_median']:.2f}")
    return outcome


def whole_image_symmetry(victim: np.ndarray, recon: np.ndarray, probe: int = 20) -> np.ndarray:
    """The reconstructions under the one whole-image symmetry (rotation or flip, channel order, negative-positive;
    one for the whole set, as its key is one) that restores most blocks of the first `probe` images.

    The jigsaw solver places blocks from their seams alone, which no whole-image symmetry changes; it picks the
    symmetry by the public images' mean, which can miss. A reconstruction turned, colour-swapped or inverted shows
    the image all the same, so the report gives the blocks restored up to that choice beside the exact figure."""
    square = victim.shape[-1] == victim.shape[-2]
    variants = [(op, order, negate) for op in range(ORIENTATIONS) if square or op % 2 == 0
                for order in range(len(CHANNEL_ORDERS)) for negate in (False, True)]

    def turn(images, op, order, negate):
        images = dihedral(images, op, axes=(2, 3))[:, CHANNEL_ORDERS[order]]
        return 1 - images if negate else images

    best = max(variants, key=lambda v: blocks_correct(victim[:probe], turn(recon[:probe], *v), BLOCK))
    return np.ascontiguousarray(turn(recon, *best))


def float_set(images: ImageSet) -> ImageSet:
    """The float32 form of uint8 images (what the attacks and their scoring take)."""
    return ImageSet(images.images.astype(np.float32) / np.float32(255), images.labels, list(images.class_names),
                    images.source)


# ---------------------------------------------------------------------------------------------- the report


#: each accuracy JSON the report shows, and the run its accuracies are compared with (jigsaw224.json has its own
#: table)
REPORTED = {"convmixer224.json": "plain", "vit224.json": "plain"}
DOCS = ("convmixer224", "vit224", "jigsaw224")
CLAIMS_RULE = ("Each claim as the paper states it, checked by code on this folder's JSON (also in `claims.json`), by "
               "the rules of `veil reproduce tradeoff`: accuracies with 95% Wilson intervals over the test images (t "
               "intervals over seeds with several seeds), ratios with the normal interval from the two runs' "
               "binomial errors (paired by seed with several).")


def report(out_dir: Path, budget: At224Budget, seeds, fit: Resize) -> str:
    docs = {name: read_json(out_dir / f"{name}.json") if (out_dir / f"{name}.json").exists() else None
            for name in DOCS}
    claims = at224_claims(docs)
    write_claims(out_dir / "claims.json", claims, seed=next((d["meta"]["seed"] for d in docs.values() if d), None),
                 runs={name: d["meta"] for name, d in docs.items() if d})
    lines = [f"# Paper 003 at {fit.size[0]}x{fit.size[1]} (`veil reproduce at224`)", "",
             *claims_table(claims, "The paper's claims in these runs", CLAIMS_RULE),
             *budget_lines(docs, budget, seeds, fit), *differences(budget)]
    for name, reference in REPORTED.items():
        if (out_dir / name).exists():
            lines += json_section(name, read_json(out_dir / name), reference)
    if docs["jigsaw224"]:
        lines += jigsaw_lines(docs["jigsaw224"])
    return "\n".join(lines)


def budget_lines(docs: dict, budget: At224Budget, seeds, fit: Resize) -> list[str]:
    lines = ["## Budget", "",
             f"Budget `{budget.name}`: {budget.n_train or 'all'} training and {budget.n_test or 'all'} test images "
             f"at {fit.describe()}, EtC block {BLOCK}, seeds {', '.join(map(str, seeds))}.", ""]
    for part in ("convmixer", "vit"):
        doc = docs[f"{part}224"]
        if doc:
            recipe, epochs, full = doc["config"]["recipe"], doc["figures"]["epochs"], doc["config"]["epochs_of"]
            run = f"{epochs:.0f} of {full} epochs" if epochs < full else f"{epochs:.0f} epochs"
            lines.append(f"- {part}: {recipe['options']}, batch {recipe['batch_size']}, {run}; plain arm adds "
                         f"{recipe['plain']}, EtC arm {recipe['etc']}.")
    return lines + [""]


def differences(budget: At224Budget) -> list[str]:
    notes = [recipe.paper for recipe in (budget.convmixer, budget.vit) if recipe.paper]
    return ["## What differs from the paper", "",
            "- Imagenette and pretrained ViT weights cannot be downloaded here: the classifiers train from scratch on "
            "CIFAR-10 resized to 224 (the paper's ViT data set; its ConvMixer-384/8 ran on Imagenette). A folder in "
            "Imagenette's layout (`train/<wnid>/*.JPEG`, `val/<wnid>/*.JPEG`) given as `--data` is read unchanged.",
            *(f"- The paper's ViT: {note}; here from scratch with AdamW." for note in notes),
            "- The paper attacked EtC with FR, GAN and ITN attacks; the jigsaw solver here is ciphertext-only and "
            "solves one key over the whole set at once (every image shares the key).",
            "- The whole CPU budget: `veil reproduce at224 --jobs 2 --out DIR` (about 75 minutes on 2 idle cores); the "
            "paper's settings on a GPU: `veil reproduce at224 --budget gpu --parts convmixer,vit --data CIFAR10 --out "
            "DIR`, with `--epochs N` for a shorter run (reported as N of 300 epochs).", ""]


def jigsaw_lines(doc: dict) -> list[str]:
    """The attack's table, one row per set, and the answer to the question the part asks."""
    f, sets, meta = doc["figures"], doc["config"]["sets"], doc["meta"]
    rows = [f"| {name} | {info['images']} | {info['size'][0]}x{info['size'][1]} | {f[f'{name}_blocks']:.0f} | "
            f"{_interval(f, name, 'blocks_correct')} | {_interval(f, name, 'blocks_correct_any_symmetry')} | "
            f"{_interval(f, name, 'ssim_median')} | {f[f'{name}_ssim_median_any_symmetry']:.3f} | "
            f"{f[f'{name}_masked_ssim_median']:.3f} | {_interval(f, name, 'linkage')} "
            f"(chance {f[f'{name}_linkage_chance']:.3f}) | {info['attack_s']:.0f} |" for name, info in sets.items()]
    size = "x".join(map(str, sets["photos"]["size"]))
    shared = [name for name in ("cifar", "photos") if f[f"{name}_blocks_correct_any_symmetry"] > paper.ROBUST_BLOCKS]
    restored = ", ".join(f"{f[f'{name}_blocks_correct_any_symmetry']:.0%} of the blocks of {name}" for name in shared)
    answer = (f"No: under one key the ciphertext-only jigsaw solver restores {restored} at {size}, up to one "
              "whole-image symmetry, because it pools the seams of every image of the set." if shared else
              f"Yes on these sets: at most {paper.ROBUST_BLOCKS:.0%} of blocks are restored at {size}, even up to a "
              "whole-image symmetry.")
    return ["## The jigsaw attack, one key per set", "",
            f"Run: `{meta['command']}` at commit `{meta['commit']}` on {meta['machine']}, {meta['wall_s']:.0f} s; "
            f"EtC block "
            f"{doc['config']['block']}, each set under its own random key (never written), threat a "
            f"(ciphertext-only: the masked set and the mean of {doc['config']['public_images']} public images).", "",
            "| set | images | size | blocks per image | blocks restored exactly [95%] | up to a whole-image symmetry "
            "[95%] | SSIM median [95%] | SSIM median, up to the symmetry | SSIM of the masked images | linkage [95%] | "
            "attack s |", "|---|---|---|---|---|---|---|---|---|---|---|", *rows, "",
            "Blocks restored exactly: every value of the block within half a level of the original (position, "
            "rotation, flip, negative-positive and channel order all right); its interval is over an image's blocks. "
            "Up to a whole-image symmetry: the same after turning the whole reconstruction by the one rotation or flip, "
            "channel order and negative-positive (of 96, one for the set) that restores most blocks: the solver places "
            "blocks by their seams, and only the whole image's orientation and colours rest on the public mean image "
            "(a mirror-symmetric mean, such as CIFAR-10's, cannot tell an image from its mirror image); a turned or "
            "colour-swapped image shows its content all the same, and the choice is one of 96 for the whole set. "
            "Linkage: the share of reconstructions nearest their own original among up to 100 of the set "
            "(`veil.attacks.scoring.linkage`).", "",
            f"**Does EtC hold at the size the paper used, for a set that shares one key?** {answer}", "",
            *[f"![jigsaw on {name}](jigsaw_{name}.png)" for name in sets], ""]


def _interval(figures: dict, name: str, figure: str) -> str:
    """"value [low, high]" of set `name`'s `figure`."""
    return (f"{figures[f'{name}_{figure}']:.3f} [{figures[f'{name}_{figure}_low']:.3f}, "
            f"{figures[f'{name}_{figure}_high']:.3f}]")
