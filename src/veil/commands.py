"""One door per `veil` command: a frozen request (what the command line gave, typed) and the one function that
carries it out and returns the text the command prints.

The CLI (`veil.cli`) parses arguments into a request, calls its door and prints what comes back; everything else a
command does (loading images, reading the secret, building an attack's budget, choosing between a command's forms)
happens here. The library below is imported inside each door, so that `--help`, an argument error or a keyed mask
never imports torch; only plain option values a request carries (`veil.serve.options`) are imported here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from veil.errors import VeilError
from veil.serve.options import ServeOptions


# ---------------------------------------------------------------- what several commands share


@dataclass(frozen=True)
class ImageSource:
    """--data, --split, --classes, --size and --resize: where a command's images come from."""
    data: str | None
    split: str | None = None
    classes: str | None = None
    size: tuple[int, int] | None = None
    resize: str | None = None

    @property
    def class_names(self) -> list[str] | None:
        """--classes as a list of names (or numbers); None keeps every class."""
        return [c.strip() for c in self.classes.split(",") if c.strip()] if self.classes else None

    def _fit(self) -> str:
        if self.resize is not None and self.size is None:
            raise VeilError("--resize needs --size (the size to fit the images to)")
        return self.resize or "squash"

    def load(self, require_labels: bool = True, limit: int | None = None, pixels: bool = False):
        """The one way a command loads images (`veil.data.load`)."""
        from veil.data import load

        resize = self._fit()
        return load(self.data, split=self.split, classes=self.class_names, require_labels=require_labels,
                    limit=limit, pixels=pixels, size=self.size, resize=resize)

    def stream(self, limit: int | None = None, chunk_size: int | None = None):
        """The images to be read a chunk at a time (`veil.data.stream.open_stream`), labels optional."""
        from veil.data.stream import open_stream

        resize = self._fit()
        return open_stream(self.data, split=self.split, classes=self.class_names, require_labels=False, limit=limit,
                           chunk_size=chunk_size, size=self.size, resize=resize)


@dataclass(frozen=True)
class KeySource:
    """--key-file, --key-env, --insecure-key-permissions: where the secret is read from (never the secret)."""
    key_file: str | None = None
    key_env: str | None = None
    insecure_permissions: bool = False

    def secret(self) -> bytes | None:
        """The secret, or None when neither a file nor a variable is named."""
        from veil.keyfiles import read_secret

        if self.key_file is None and self.key_env is None:
            return None
        return read_secret(self.key_file, self.key_env, insecure_permissions=self.insecure_permissions)


def figure_lines(figures: dict) -> list[str]:
    """A command's figures, one `name  value` line each, names aligned."""
    width = max((len(k) for k in figures), default=0)
    return [f"{name:<{width}}  {value:.4f}" if isinstance(value, float) else f"{name:<{width}}  {value}"
            for name, value in figures.items()]


def _text(*lines: str) -> str:
    return "".join(f"{line}\n" for line in lines)


def _reply(figures: dict, wrote: str) -> str:
    """The reply of a door that measures and writes: its figures, one a line, then what it wrote where."""
    return _text(*figure_lines(figures), wrote)


def _require(command: str, **options) -> None:
    """Options that one form of a command needs (argparse's own message, for options it cannot require alone)."""
    missing = [f"--{name.replace('_', '-')}" for name, value in options.items() if value is None]
    if missing:
        raise VeilError(f"{command}: the following arguments are required: {', '.join(missing)}")


# ---------------------------------------------------------------- maskers and masking


@dataclass(frozen=True)
class TrainingRun:
    """How a training command runs, the same options for `train-masker` and `train`: epochs and recipe, the first
    `limit` samples, seed, resuming, processes, bfloat16, progress, and whether `out` may be replaced."""
    epochs: int | None = None
    preset: str | None = None
    limit: int | None = None
    seed: int | None = 0  # None: a masker's training draws one (`veil.training.training_seed`)
    resume: bool = False
    nproc: int | None = None
    bf16: bool = False
    progress: bool = True
    force: bool = False

    def options(self) -> dict:
        """The keyword arguments of the workflow's training function (all but `limit`, which picks the data)."""
        return {"epochs": self.epochs, "preset": self.preset, "seed": self.seed, "resume": self.resume,
                "nproc": self.nproc, "bf16": self.bf16, "progress": self.progress, "force": self.force}


@dataclass(frozen=True)
class TrainMaskerRequest:
    """`veil train-masker`: a masker of `method` trained on the images of `source` (an AAE: labels unused; the
    obfuscator: trained with them)."""
    source: ImageSource
    out: str
    run: TrainingRun
    batch_size: int | None = None
    device: str | None = None
    method: str = "aae"
    params: dict | None = None  # the masker's other parameters, by name (e.g. the obfuscator's privacy_weight)


def train_masker(request: TrainMaskerRequest) -> str:
    from veil import workflows

    r = request
    data = r.source.load(require_labels=workflows.trainable_masker(r.method).fits_on_labels, limit=r.run.limit)
    masker = workflows.train_masker(data, r.out, batch_size=r.batch_size, device=r.device, method=r.method,
                                    **r.run.options(), **(r.params or {}))
    if masker is None:  # a torchrun process other than rank 0
        return ""
    given_seed = () if r.run.seed is None else (
        "the --seed you gave is now as secret as the folder: anyone who knows or guesses it trains a masker whose "
        "decoder reads your vectors (veil attack --method seed-guess); leave --seed out to draw one",)
    return _text(*figure_lines(masker.report_), f"masker saved to {r.out}: keep the whole folder with the data owner "
                 "(a decoder is a private key, and anyone holding the encoder can train a decoder from public "
                 "images)", *given_seed)


@dataclass(frozen=True)
class ExportEncoderRequest:
    """`veil export-encoder`: a copy of a masker folder without its decoder."""
    masker: str
    out: str
    force: bool = False


def export_encoder(request: ExportEncoderRequest) -> str:
    from veil import workflows

    workflows.export_encoder(request.masker, request.out, force=request.force)
    return _text(f"encoder only (no decoder) written to {request.out}. It is not safe to publish: anyone holding it "
                 "can train a decoder from public images (veil attack --method itn --threat b; results/privacy). Keep "
                 "it on the data owner's own masking machines.")


@dataclass(frozen=True)
class KeygenRequest:
    """`veil keygen`: a new random secret in a new owner-only file."""
    out: str
    force: bool = False


def keygen(request: KeygenRequest) -> str:
    from veil.keyfiles import write_new_key

    return _text(f"new secret key written to {write_new_key(request.out, force=request.force)} (mode 0600; keep it "
                 "private, back it up)")


@dataclass(frozen=True)
class MaskRequest:
    """`veil mask`: to one .npz, or (`shards`, or an --out that names a folder) to a shard folder, which alone
    takes `resume`, `lossless`, `jpeg_quality` and `chunk_size`."""
    source: ImageSource
    out: str
    method: str
    masker: str | None = None
    key: KeySource = KeySource()
    limit: int | None = None
    block: int | None = None
    kernel: int | None = None
    seed: int | None = None
    force: bool = False
    nproc: int | None = None
    shards: bool = False
    chunk_size: int | None = None
    resume: bool = False
    lossless: bool = False
    jpeg_quality: int | None = None
    progress: bool = True

    @property
    def scheme_options(self) -> dict:
        return {"block": self.block, "kernel": self.kernel, "seed": self.seed}


def mask(request: MaskRequest) -> str:
    from veil.shards import is_shard_output

    r = request
    if is_shard_output(r.out, r.shards):
        return _mask_to_shards(r)
    if r.resume or r.lossless or r.jpeg_quality or r.chunk_size:
        raise VeilError("mask: --resume, --lossless, --jpeg-quality and --chunk-size are for a shard folder "
                        "(--out DIR or --shards), not an .npz")
    from veil import workflows
    from veil.maskers.masking import masks_pixels

    data = r.source.load(require_labels=False, limit=r.limit, pixels=masks_pixels(r.method))
    masked = workflows.mask(data, r.out, method=r.method, masker_dir=r.masker, secret=r.key.secret(), force=r.force,
                            nproc=r.nproc, **r.scheme_options)
    if masked is None:  # a torchrun process other than rank 0
        return ""
    return _text(*figure_lines(masked.meta.get("latent_conformity", {})), f"{len(masked)} images masked -> {r.out} "
                 f"({masked.data.shape[1:]} per image, {masked.fingerprint[:24]})")


def _mask_to_shards(r: MaskRequest) -> str:
    from veil import workflows

    stream = r.source.stream(limit=r.limit, chunk_size=r.chunk_size)
    manifest = workflows.mask_stream(stream, r.out, method=r.method, masker_dir=r.masker, secret=r.key.secret(),
                                     force=r.force, resume=r.resume, nproc=r.nproc, lossless=r.lossless,
                                     jpeg_quality=r.jpeg_quality, progress=r.progress, **r.scheme_options)
    storage = manifest["storage"]
    stored = f"{storage['ext']}" + (f" quality {storage['quality']}, lossy" if storage["lossy"] else "")
    return _text(*figure_lines(manifest["meta"].get("latent_conformity", {})),  # of the first shard
                 f"{manifest['count']} images masked -> {r.out} ({len(manifest['shards'])} shards, "
                 f"{tuple(manifest['sample_shape'])} per image as {stored}, {manifest['fingerprint'][:24]})")


@dataclass(frozen=True)
class UnmaskRequest:
    """`veil unmask`; `source.data` None: no source images, so no reconstruction MSE."""
    masked: str
    out: str
    source: ImageSource
    masker: str | None = None
    key: KeySource = KeySource()
    limit: int | None = None
    force: bool = False


def unmask(request: UnmaskRequest) -> str:
    from veil import workflows

    r = request
    data = r.source.load(require_labels=False) if r.source.data else None
    figures = workflows.unmask(r.masked, r.out, masker_dir=r.masker, secret=r.key.secret(), data=data, limit=r.limit,
                               force=r.force)
    return _reply(figures, f"reconstructions written to {r.out}")


# ---------------------------------------------------------------- classifiers


@dataclass(frozen=True)
class TrainRequest:
    """`veil train`: a classifier of kind `model` trained on a masked set (`params` override its recipe)."""
    masked: str
    model: str
    out: str
    run: TrainingRun
    params: dict | None = None


def train(request: TrainRequest) -> str:
    from veil import workflows
    from veil.shards import open_masked

    r = request
    masked = open_masked(r.masked)
    estimator = workflows.train_classifier(masked, r.model, r.out, limit=r.run.limit, **r.run.options(),
                                           **(r.params or {}))
    if estimator is None:  # a torchrun process other than rank 0
        return ""
    n = len(masked) if r.run.limit is None else min(r.run.limit, len(masked))
    return _text(f"{estimator.kind} model trained on {n} masked samples -> {r.out}")


@dataclass(frozen=True)
class EvaluateRequest:
    """`veil evaluate`: a trained classifier scored on a masked set."""
    model: str
    masked: str
    json: str | None = None
    force: bool = False


def evaluate(request: EvaluateRequest) -> str:
    from veil import workflows

    return _text(*figure_lines(workflows.evaluate(request.model, request.masked, json_file=request.json,
                                                  force=request.force)))


@dataclass(frozen=True)
class TransformModelRequest:
    """`veil transform-model`: a plain ViT or ConvMixer turned into one for a keyed scheme's images."""
    model: str
    out: str
    method: str
    key: KeySource
    block: int | None = None
    force: bool = False


def transform_model(request: TransformModelRequest) -> str:
    from veil.classifiers.transform import transform_model as transform

    r = request
    model = transform(r.model, r.out, r.method, r.key.secret(), block=r.block, force=r.force)
    return _text(f"{model.kind} transformed for {r.method} images (block {model.key_transform_['block']}) -> {r.out}; "
                 "this folder is secret-bearing: the key can be read off its weights with the plain model")


@dataclass(frozen=True)
class ServeRequest:
    """`veil serve`: the HTTP prediction service of one model folder."""
    model: str
    max_batch: int
    max_body_mb: int
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    security: ServeOptions = ServeOptions()
    access_log: bool = False


def serve(request: ServeRequest) -> str:
    """Serves until interrupted; prints only, on stderr, where the token is and whether the network sees it."""
    from veil.serve import run
    from veil.serve.security import ServeSecurity

    r = request
    run(r.model, host=r.host, port=r.port, workers=r.workers, max_batch=r.max_batch,
        max_body=r.max_body_mb * 1_000_000, security=ServeSecurity(**asdict(r.security)), access_log=r.access_log)
    return ""


# ---------------------------------------------------------------- attacks and reports


@dataclass(frozen=True)
class AttackRequest:
    """`veil attack`: a masked set under threat a, b or c, or (method model-key) a key-transformed model."""
    method: str
    threat: str
    victim: ImageSource
    public: ImageSource
    masked: str | None = None
    out: str | None = None
    masker: str | None = None
    key: KeySource = KeySource()
    pairs: int | None = None
    train_images: int | None = None
    epochs: int | None = None
    quick: bool = False
    seed: int = 0
    force: bool = False
    progress: bool = True
    model: str | None = None
    base: str | None = None
    json: str | None = None
    work: str | None = None


def attack(request: AttackRequest) -> str:
    if request.method == "model-key":
        return _attack_model(request)
    from veil.attacks import Budget
    from veil.attacks.run import attack_files

    r = request
    _require("attack", masked=r.masked, public=r.public.data, out=r.out)
    budget = Budget.quick() if r.quick else Budget()
    overrides = {"train_images": r.train_images, "epochs": r.epochs}
    budget = replace(budget, **{k: v for k, v in overrides.items() if v is not None})
    victim = r.victim.load()
    public = r.public.load(require_labels=False)
    figures = attack_files(r.method, r.threat, r.masked, victim, public, r.out, masker_dir=r.masker,
                           secret=r.key.secret(), pairs=r.pairs, seed=r.seed, budget=budget, force=r.force,
                           progress=r.progress, model_cache=None if r.work is None else Path(r.work))
    return _reply(figures, f"attack.json and grid.png written to {r.out}")


def _attack_model(r: AttackRequest) -> str:
    """`veil attack --method model-key`: read the key off a key-transformed model (the victim's images as they
    are: no --classes or --size)."""
    from veil.attacks.model_key import model_key_files
    from veil.data import load

    _require("attack --method model-key", model=r.model, base=r.base, json=r.json)
    victim = load(r.victim.data, split=r.victim.split, require_labels=False, pixels=True)
    figures = model_key_files(r.model, r.base, r.threat, victim, r.key.secret(), r.json, seed=r.seed, force=r.force)
    return _reply(figures, f"figures written to {r.json}")


#: `veil report NAME`: the reports there are, and what each one is
REPORTS = {"privacy": "every scheme attacked under every threat model, beside the accuracy it keeps",
           "privacy-table": "README's table of what each scheme protects against, from a privacy report's "
                            "privacy.json and optionally a frontier report's frontier.json (--report, repeated; "
                            "--readme rewrites that file's marked block)",
           "frontier": "the privacy-trained obfuscator, the AAE's noise and latent-size knobs and the keyed AAE, "
                       "swept and attacked to saturation under threats a, b and c (--report: a privacy report "
                       "drawn beside them; --schemes: the points to run)"}


@dataclass(frozen=True)
class ReportRequest:
    """`veil report NAME` (`REPORTS`): privacy and frontier need `out`, privacy-table `report` (one or more)."""
    name: str
    out: str | None = None
    report: tuple[str, ...] | None = None
    readme: str | None = None
    data: str | None = None
    masker: str | None = None
    work: str | None = None
    schemes: str | None = None
    skip: str | None = None
    assemble: bool = False
    quick: bool = False
    seed: int = 0
    force: bool = False


def report(request: ReportRequest) -> str:
    r = request
    if r.name == "privacy-table":
        from veil.experiments.privacy.verdicts import write_privacy_table

        _require(f"report {r.name}", report=r.report)
        table = write_privacy_table(r.report, r.readme)
        return table + (_text(f"the privacy-table block of {r.readme} rewritten") if r.readme else "")
    if r.name == "frontier":
        from veil.experiments.frontier.sweep import run as frontier

        _require(f"report {r.name}", out=r.out)
        if r.report and len(r.report) > 1 or r.masker:
            raise VeilError("report frontier takes one --report (a privacy report drawn beside it) and no --masker")
        figures = frontier(r.out, work=r.work, quick=r.quick, seed=r.seed, data=r.data, points=r.schemes,
                           skip=r.skip, privacy_report=r.report[0] if r.report else None, assemble_only=r.assemble,
                           force=r.force)
        return _text(f"{len(figures)} figures; frontier.json, report.md and plots written to {r.out}")
    from veil.experiments.privacy.protocol import run

    _require(f"report {r.name}", out=r.out)
    figures = run(r.out, quick=r.quick, seed=r.seed, data=r.data, masker=r.masker, work=r.work, schemes=r.schemes,
                  assemble_only=r.assemble, skip=r.skip, force=r.force)
    return _text(f"{len(figures)} figures; privacy.json, report.md and plots written to {r.out}")


@dataclass(frozen=True)
class RecommendRequest:
    """`veil recommend`: the schemes on a threat model's front that meet the constraints given, from one or more
    reports (a privacy report, a frontier report)."""
    report: tuple[str, ...]
    threat: str
    min_utility: float | None = None
    max_ssim: float | None = None
    max_leakage: float | None = None


def recommend(request: RecommendRequest) -> str:
    from veil.experiments.privacy.verdicts import recommend as pareto_choice

    r = request
    return _text(pareto_choice(r.report, r.threat, r.min_utility, r.max_ssim, r.max_leakage))


# ---------------------------------------------------------------- measurements and papers


@dataclass(frozen=True)
class CompressReportRequest:
    """`veil compress-report`: JPEG and PNG sizes, plain and under each keyed scheme."""
    source: ImageSource
    out: str
    key: KeySource = KeySource()
    seed: int = 0
    force: bool = False


def compress_report(request: CompressReportRequest) -> str:
    """Without a key, a stand-in secret derived from the seed."""
    from veil.experiments.kiya2022.compress import compress_report as write_report
    from veil.keyfiles import experiment_secret

    r = request
    data = r.source.load(require_labels=False)
    secret = r.key.secret() or experiment_secret(r.seed)
    figures = write_report(data, r.out, secret, seed=r.seed, force=r.force, split=r.source.split,
                           classes=r.source.classes)
    return _reply(figures, f"compress.json and compress.md written to {r.out}")


@dataclass(frozen=True)
class BenchRequest:
    """`veil bench NAME`: each benchmark takes those of the options it needs."""
    what: str
    json: str
    source: ImageSource
    limit: int | None = None
    repeats: int = 5
    params: dict | None = None
    seed: int = 0
    masker: str | None = None
    model: str | None = None
    duration: int = 30
    workers: int = 1
    auth: bool = True
    progress: bool = True
    force: bool = False


def bench(request: BenchRequest) -> str:
    from veil.experiments.bench import run_benchmark

    r = request
    figures = run_benchmark(r.what, r.json, data=r.source.data, split=r.source.split, classes=r.source.class_names,
                            limit=r.limit, repeats=r.repeats, params=r.params, seed=r.seed, masker_dir=r.masker,
                            model_dir=r.model, duration_s=r.duration, workers=r.workers, auth=r.auth,
                            progress=r.progress, force=r.force)
    return _reply(figures, f"written to {r.json}")


@dataclass(frozen=True)
class DemoRequest:
    """`veil demo`: the whole pipeline on scikit-learn's digits."""
    out: str
    seed: int = 0
    force: bool = False


def demo(request: DemoRequest) -> str:
    from veil.experiments.lis2021.demo import run_demo

    figures = run_demo(request.out, seed=request.seed, force=request.force)
    lines = [f"\n{'model':<10}{'accuracy':>10}{'precision':>11}{'recall':>9}"]
    for name in [key.removesuffix("_accuracy") for key in figures if key.endswith("_accuracy")]:
        lines.append(f"{name:<10}{figures[f'{name}_accuracy']:>10.3f}{figures[f'{name}_precision']:>11.3f}"
                     f"{figures[f'{name}_recall']:>9.3f}")
    return _text(*lines, f"reconstruction MSE (matching decoder): {figures['reconstruction_mse']:.4f}",
                 f"results.json and fig1_masked_examples.png written to {request.out}")


@dataclass(frozen=True)
class ReproduceRequest:
    """`veil reproduce`; `name` "list", or `parts` "list": the parts of every protocol (or of `name`), not a run."""
    name: str
    out: str | None = None
    quick: bool = False
    seed: int = 0
    force: bool = False
    masker: str | None = None
    data: str | None = None
    mnist: str | None = None
    work: str | None = None
    parts: str | None = None
    jobs: int | None = None
    budget: str | None = None
    seeds: tuple[int, ...] | None = None
    epochs: int | None = None
    size: str | None = None
    resize: str | None = None


def reproduce(request: ReproduceRequest) -> str:
    from veil.experiments import protocol_parts, run_protocol
    from veil.registry import PROTOCOLS

    r = request
    if r.name == "list" or r.parts == "list":
        return _text(*(f"{name:<10} parts: {', '.join(protocol_parts(name))}"
                       for name in ([r.name] if r.name != "list" else PROTOCOLS.names())))
    _require("reproduce", out=r.out)
    options = {k: v for k, v in {"masker": r.masker, "data": r.data, "mnist": r.mnist, "work": r.work,
                                 "parts": r.parts, "jobs": r.jobs, "budget": r.budget, "seeds": r.seeds,
                                 "epochs": r.epochs, "size": r.size, "resize": r.resize}.items() if v is not None}
    figures = run_protocol(r.name, r.out, force=r.force, quick=r.quick, seed=r.seed, **options)
    return _reply(figures, f"report and JSON written to {r.out}")
