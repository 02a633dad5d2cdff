"""The `veil` command: parses arguments into a request, calls the command's one door (`veil.commands`), prints.
Errors: one line, exit code 2."""
from __future__ import annotations

import argparse
import json
import os
import sys

from veil import __version__, commands, defaults
from veil.commands import (REPORTS, AttackRequest, BenchRequest, CompressReportRequest, DemoRequest,
                           EvaluateRequest, ExportEncoderRequest, ImageSource, KeygenRequest, KeySource, MaskRequest,
                           RecommendRequest, ReportRequest, ReproduceRequest, ServeOptions, ServeRequest,
                           TrainMaskerRequest, TrainRequest, TrainingRun, TransformModelRequest, UnmaskRequest)
from veil.distributed import launch_rank
from veil.errors import VeilError
from veil.registry import ATTACKS, BENCHMARKS, CLASSIFIERS, MASKERS, PROTOCOLS, SCHEMES
from veil import threads  # imported at start: the window of its idle-core measurement opens here


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # main() prints "veil: error: "; a subcommand's name ("train: ...") is all the prefix left to add
        command = self.prog.removeprefix("veil").strip()
        raise VeilError(f"{command}: {message}" if command else message)


def _positive_int(text: str) -> int:
    """argparse type of every count and size: 0 and negatives are refused (a slice would take -1 as "all but one")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is at most 65535, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed is an integer from 0 up, got {text!r}")
    return value


def _seeds(text: str) -> tuple[int, ...]:
    seeds = tuple(_seed(part.strip()) for part in text.split(","))
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must differ, got {text!r}")
    return seeds


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"n_estimators\": 200}}', got {text!r}")
    return value


def _image_size(text: str) -> tuple[int, int]:
    """--size: N (square) or H,W, in pixels."""
    parts = text.split(",")
    try:
        values = [int(part) for part in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values, default=0) < 1:
        raise argparse.ArgumentTypeError(f"expected N or H,W (positive pixel counts), got {text!r}")
    return (values[0], values[-1])


def _data_args(parser, required: bool = True, default: str = "", limit: bool = False, sizes: bool = True):
    parser.add_argument("--data", required=required, help="folder, archive, CIFAR/MNIST folder, .npz, or 'digits'"
                        + (f" (default {default})" if default else ""))
    parser.add_argument("--split", help="top-level part to use (train/test)")
    parser.add_argument("--classes", help="comma-separated class names (or numbers) to keep")
    if limit:
        parser.add_argument("--limit", type=_positive_int,
                            help="use only N images, the first of each class in proportion (a quick run)")
    if sizes:
        _size_args(parser)


def _size_args(parser):
    parser.add_argument("--size", type=_image_size, help="resize every image to N x N or H x W pixels (--size 224, "
                        "--size 64,96); without it images keep their own size, and a source of several sizes is "
                        "refused")
    parser.add_argument("--resize", choices=["squash", "crop", "pad"], help="how --size fits an image: squash "
                        "(stretch; the default), crop (short side to fit, centre kept) or pad (long side to fit, "
                        "centred on black)")


def _key_args(parser):
    parser.add_argument("--key-file", help="file holding the secret (see `veil keygen`); refused when group or "
                        "others may read it")
    parser.add_argument("--key-env", help="environment variable holding the secret")
    parser.add_argument("--insecure-key-permissions", action="store_true",
                        help="accept a key file that group or others may read")


def _force_arg(parser, what: str = "the output", folder: bool = False):
    """--force; a folder output keeps what this command did not write there (`veil.io.output.claim_output`)."""
    parser.add_argument("--force", action="store_true", help=f"replace {what} if it exists" + (
        ": the files this command writes replace their namesakes, and those an earlier run of this command wrote "
        "there and this one does not are removed; any other file in the folder (yours, another command's) stays"
        if folder else ""))


def _images(args, data: str = "data", split: str = "split") -> ImageSource:
    """The images named by the options `data` and `split` (--data, --split; --victim, --victim-split, ...), with
    --classes, --size and --resize where the command has them."""
    return ImageSource(getattr(args, data), split=getattr(args, split), classes=getattr(args, "classes", None),
                       size=getattr(args, "size", None), resize=getattr(args, "resize", None))


def _key(args) -> KeySource:
    return KeySource(args.key_file, args.key_env, insecure_permissions=args.insecure_key_permissions)


def _print(text: str) -> None:
    print(text, end="")


def cmd_train_masker(args):
    _print(commands.train_masker(TrainMaskerRequest(_images(args), args.out, _training_run(args),
                                                    batch_size=args.batch_size, device=args.device,
                                                    method=args.method, params=args.params)))


def cmd_export_encoder(args):
    _print(commands.export_encoder(ExportEncoderRequest(args.masker, args.out, force=args.force)))


def cmd_keygen(args):
    _print(commands.keygen(KeygenRequest(args.out, force=args.force)))


def cmd_mask(args):
    _print(commands.mask(MaskRequest(
        _images(args), args.out, method=args.method, masker=args.masker, key=_key(args), limit=args.limit,
        block=args.block, kernel=args.kernel, seed=args.seed, force=args.force, nproc=args.nproc, shards=args.shards,
        chunk_size=args.chunk_size, resume=args.resume, lossless=args.lossless, jpeg_quality=args.jpeg_quality,
        progress=not args.quiet)))


def cmd_unmask(args):
    _print(commands.unmask(UnmaskRequest(args.masked, args.out, _images(args), masker=args.masker, key=_key(args),
                                         limit=args.limit, force=args.force)))


def cmd_train(args):
    _print(commands.train(TrainRequest(args.masked, args.model, args.out, _training_run(args), params=args.params)))


def _training_run(args) -> TrainingRun:
    return TrainingRun(epochs=args.epochs, preset=args.preset, limit=args.limit, seed=args.seed, resume=args.resume,
                       nproc=args.nproc, bf16=args.bf16, progress=not args.quiet, force=args.force)


def cmd_evaluate(args):
    _print(commands.evaluate(EvaluateRequest(args.model, args.masked, json=args.json, force=args.force)))


def cmd_transform_model(args):
    _print(commands.transform_model(TransformModelRequest(args.model, args.out, args.method, _key(args),
                                                          block=args.block, force=args.force)))


def cmd_serve(args):
    security = ServeOptions(token_file=args.token_file, no_auth=args.no_auth, tls_cert=args.tls_cert,
                           tls_key=args.tls_key, max_rps=args.max_rps, max_concurrent=args.max_concurrent,
                           public_docs=args.public_docs)
    _print(commands.serve(ServeRequest(args.model, args.max_batch, args.max_body_mb, host=args.host, port=args.port,
                                       workers=args.workers, security=security, access_log=args.access_log)))


def cmd_attack(args):
    _print(commands.attack(AttackRequest(
        args.method, args.threat, _images(args, "victim", "victim_split"), _images(args, "public", "public_split"),
        masked=args.masked, out=args.out,
        masker=args.masker, key=_key(args), pairs=args.pairs, train_images=args.train_images, epochs=args.epochs,
        quick=args.quick, seed=args.seed, force=args.force, progress=not args.quiet, model=args.model,
        base=args.base, json=args.json, work=args.work)))


def cmd_report(args):
    _print(commands.report(ReportRequest(
        args.name, out=args.out, report=args.report, readme=args.readme, data=args.data, masker=args.masker,
        work=args.work, schemes=args.schemes, skip=args.skip, assemble=args.assemble, quick=args.quick,
        seed=args.seed, force=args.force)))


def cmd_recommend(args):
    _print(commands.recommend(RecommendRequest(args.report, args.threat, min_utility=args.min_utility,
                                               max_ssim=args.max_ssim, max_leakage=args.max_leakage)))


def cmd_demo(args):
    _print(commands.demo(DemoRequest(args.out, seed=args.seed, force=args.force)))


def cmd_compress_report(args):
    _print(commands.compress_report(CompressReportRequest(_images(args), args.out, key=_key(args), seed=args.seed,
                                                          force=args.force)))


def cmd_bench(args):
    _print(commands.bench(BenchRequest(
        args.what, args.json, _images(args), limit=args.limit, repeats=args.repeats, params=args.params,
        seed=args.seed, masker=args.masker, model=args.model, duration=args.duration, workers=args.workers,
        auth=not args.no_auth, progress=not args.quiet, force=args.force)))


def cmd_reproduce(args):
    _print(commands.reproduce(ReproduceRequest(
        args.name, out=args.out, quick=args.quick, seed=args.seed, force=args.force, masker=args.masker,
        data=args.data, mnist=args.mnist, work=args.work, parts=args.parts, jobs=args.jobs, budget=args.budget,
        seeds=args.seeds, epochs=args.epochs, size=args.size, resize=args.resize)))


def _nproc_arg(parser, batch: str, only: str = ""):
    parser.add_argument("--nproc", type=_positive_int, help=f"{only}train in N processes on this machine (gloo on the "
                        "CPU, nccl on GPUs; each process takes its share of the idle cores, or VEIL_THREADS threads); "
                        f"{batch}. On several machines, start `torchrun ... -m veil` on each instead (README: "
                        "Training on several machines)")


def _bf16_arg(parser):
    parser.add_argument("--bf16", action="store_true", help="train the forward passes in bfloat16 (torch.autocast; "
                        "on CUDA, and on CPUs that support it); weights stay float32. Recorded in the configuration")


def _add_quiet(parser, default=False):
    parser.add_argument("--quiet", action="store_true", default=default,
                        help="no progress bars or per-epoch lines (results and errors are still printed)")


def _command(sub, name: str, func, **kwargs):
    """A subcommand that also takes --quiet after its name (it does not undo a `veil --quiet` before it)."""
    p = sub.add_parser(name, **kwargs)
    _add_quiet(p, default=argparse.SUPPRESS)
    p.set_defaults(func=func)
    return p


def _masker_commands(sub) -> None:
    p = _command(sub, "train-masker", cmd_train_masker, help="train a masker on the owner's images: the AAE (labels "
                 "unused) or the privacy-trained obfuscator (with its labels)")
    p.add_argument("--method", default="aae", choices=MASKERS.names(), help="the trained masker (default aae; "
                   "obfuscator: trained with the labels against reconstruction adversaries)")
    _data_args(p, limit=True)
    p.add_argument("--out", required=True, help="new folder for the masker (encoder, decoder, manifest.json)")
    p.add_argument("--preset", choices=["paper"], help="a named recipe instead of the default one (paper: the "
                   "paper's constant-rate optimiser, as the committed reproductions used; --epochs and --batch-size "
                   "override it)")
    p.add_argument("--epochs", type=_positive_int, help="training epochs (default: the recipe's)")
    p.add_argument("--batch-size", type=_positive_int, help="images per step (default: the recipe's)")
    p.add_argument("--params", type=_json_object, help="JSON object of the masker's other parameters, e.g. "
                   "'{\"privacy_weight\": 3, \"noise\": 0.5}' for the obfuscator")
    p.add_argument("--seed", type=_seed, help="a fixed seed of initialisation and shuffling, for a reproducible run; "
                   "it is then as secret as the masker, since an AAE trained with the same seed on other images "
                   "decodes its vectors (veil attack --method seed-guess) (default: drawn from the operating "
                   "system's randomness and kept, secret, in --out)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out (with the "
                   "number of processes the run started with)")
    _force_arg(p, "the masker in --out (its decoder is lost: what it masked can no longer be unmasked)", folder=True)
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    _nproc_arg(p, "--batch-size is a step's batch over all of them, each taking batch-size // N images")
    _bf16_arg(p)

    p = _command(sub, "export-encoder", cmd_export_encoder, help="copy a masker without its decoder, for the data "
                 "owner's own masking machines (the encoder must stay with the data owner: with it, anyone can train "
                 "a decoder)")
    p.add_argument("--masker", required=True, help="the trained masker folder")
    p.add_argument("--out", required=True, help="a new folder, outside --masker")
    _force_arg(p, "the --out folder", folder=True)

    p = _command(sub, "keygen", cmd_keygen, help="create a random secret key file (mode 0600) for the keyed schemes")
    p.add_argument("--out", required=True, help="the new key file")
    _force_arg(p, "the key file (everything encrypted with the old key can then no longer be decrypted)")


def _masking_commands(sub) -> None:
    p = _command(sub, "mask", cmd_mask, help="mask images: a trained masker's encoder, a keyed encryption or a "
                 "filter (one path for every method)")
    p.add_argument("--method", default="aae", choices=MASKERS.names(), help="masking method (default aae)")
    p.add_argument("--masker", help="trained masker directory (--method aae; the encoder only is read)")
    _key_args(p)
    p.add_argument("--block", type=_positive_int, help="block size of a keyed scheme (etc: 4/8/16, default 16)")
    p.add_argument("--kernel", type=_positive_int, help="filter size of blur/randfilter/iidfilter (default 5; the "
                   "random filters also take a key)")
    p.add_argument("--seed", type=_seed, help="refused: randfilter and iidfilter no longer take a seed but a key "
                   "(--key-file; `veil keygen` makes one)")
    _data_args(p, limit=True)
    p.add_argument("--out", required=True, help="the new masked set: FILE.npz (one file, loaded whole), or DIR "
                   "(a name without a suffix, or an existing folder): WebDataset tar shards and manifest.json, read, "
                   "masked and written a chunk at a time (EtC as JPEG, the other exact schemes as PNG, vectors as "
                   ".npy)")
    p.add_argument("--shards", action="store_true", help="write --out as a shard folder whatever its name")
    _force_arg(p, "the --out file or shard folder")
    p.add_argument("--nproc", type=_positive_int, help="mask in N processes on this machine, each a consecutive "
                   "part of the images (a shard folder: each a chunk at a time); the output is the same bytes as one "
                   "process writes")
    p.add_argument("--chunk-size", type=_positive_int, help="shard folder: images per chunk and shard (default: "
                   "about 64 MiB of pixels in a multiple of 128 images, e.g. 4096 at 32x32, 384 at 224x224; a "
                   "multiple of 128 for the AAE)")
    p.add_argument("--resume", action="store_true", help="shard folder: continue the unfinished run in --out, "
                   "skipping its finished shards (a run with the same input and options is continued anyway)")
    p.add_argument("--lossless", action="store_true", help="shard folder: store EtC images as PNG, not JPEG, so "
                   "that they decrypt bit-exactly")
    p.add_argument("--jpeg-quality", type=_positive_int, help="shard folder: JPEG quality of EtC images "
                   "(default 95)")

    p = _command(sub, "unmask", cmd_unmask, help="reconstruct images from a masked file (a trained masker's "
                 "decoder, or the key)")
    p.add_argument("--masker", help="trained masker directory with its private decoder")
    _key_args(p)
    p.add_argument("--masked", required=True, help="the masked set (.npz or shard folder)")
    p.add_argument("--out", required=True, help="new folder for the PNGs (and mse.json with --data)")
    p.add_argument("--data", help="the source images, to measure reconstruction MSE")
    p.add_argument("--split", help="top-level part of --data to use (train/test)")
    p.add_argument("--classes", help="comma-separated class names (or numbers) of --data to keep")
    _size_args(p)
    p.add_argument("--limit", type=_positive_int, help="reconstruct only N, the first of each class in proportion")
    _force_arg(p, "the --out folder", folder=True)


def _classifier_commands(sub) -> None:
    p = _command(sub, "train", cmd_train, help="train a classifier on a masked file")
    p.add_argument("--masked", required=True, help="the masked training set (.npz or shard folder)")
    p.add_argument("--model", required=True, choices=CLASSIFIERS.names(), help="classifier kind")
    p.add_argument("--out", required=True, help="new folder for the model (weights, model.json)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of initialisation and shuffling (default 0)")
    p.add_argument("--epochs", type=_positive_int, help="epochs, for the models trained in epochs")
    p.add_argument("--params", type=_json_object,
                   help="JSON object of model parameters, e.g. '{\"n_estimators\": 200}'")
    p.add_argument("--preset", help="a named recipe of the model, which --params and --epochs override (nn: paper, "
                   "the paper's batch-4 recipe; without it, the model's default recipe)")
    p.add_argument("--limit", type=_positive_int,
                   help="train on N masked samples only, the first of each class in proportion (a quick run)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out (with the "
                   "number of processes the run started with)")
    _force_arg(p, "the model folder --out", folder=True)
    _nproc_arg(p, "the model's batch_size is a step's batch over all of them, each taking batch_size // N samples",
               only="for the models trained in epochs: ")
    _bf16_arg(p)

    p = _command(sub, "evaluate", cmd_evaluate, help="score a trained classifier on a masked file (not the one it "
                 "was trained on)")
    p.add_argument("--model", required=True, help="the trained model folder")
    p.add_argument("--masked", required=True, help="the masked test set (.npz, or a shard folder, scored a shard at "
                   "a time)")
    p.add_argument("--json", help="also write the figures to this new JSON file")
    _force_arg(p, "the --json file")

    p = _command(sub, "transform-model", cmd_transform_model, help="turn a ViT or ConvMixer trained on plain images "
                 "into one that classifies images encrypted with a key exactly as the plain one classifies the plain "
                 "images (block = patch; keys that treat every block alike: LE, scramble)")
    p.add_argument("--model", required=True, help="the model folder, trained on plain images")
    p.add_argument("--method", required=True, choices=SCHEMES.names(),
                   help="the keyed scheme the images are encrypted with")
    p.add_argument("--block", type=_positive_int, help="the scheme's block size (default: the model's patch size, "
                   "which it must equal)")
    _key_args(p)
    p.add_argument("--out", required=True, help="new folder for the transformed model (owner-only: it bears the key)")
    _force_arg(p, "the --out folder", folder=True)

    p = _command(sub, "serve", cmd_serve, help="serve a trained classifier's predictions over HTTP (GET /health, "
                 "GET /model, POST /predict; the API is described at /docs); every endpoint but /health needs the "
                 "token whose file it names at start")
    p.add_argument("--model", required=True, help="the trained model folder")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_port, default=8000, help="TCP port (default 8000)")
    p.add_argument("--workers", type=_positive_int, default=1, help="server processes, each with its own copy of "
                   "the model and its own socket on the port (default 1; about one per core: see README)")
    p.add_argument("--max-batch", type=_positive_int, default=defaults.SERVE_MAX_BATCH,
                   help="most rows per request (default %(default)s)")
    p.add_argument("--max-body-mb", type=_positive_int, default=defaults.SERVE_MAX_BODY // 1_000_000,
                   help="largest request body, in MB of 10^6 bytes (default %(default)s)")
    p.add_argument("--token-file", help="file holding the token clients must send as 'Authorization: Bearer TOKEN', "
                   "readable by its owner only (`veil keygen --out FILE` makes one; default: a new random token in a "
                   "new owner-only file, whose path is printed)")
    p.add_argument("--no-auth", action="store_true", help="no token (only with a loopback --host)")
    p.add_argument("--tls-cert", help="TLS certificate (PEM), for HTTPS; with --tls-key")
    p.add_argument("--tls-key", help="the TLS certificate's private key (PEM), readable by its owner only")
    p.add_argument("--max-rps", type=_positive_float, help="most requests per second per client address, beyond "
                   "which the answer is 429 (default: no limit)")
    p.add_argument("--max-concurrent", type=_positive_int, default=defaults.SERVE_MAX_CONCURRENT,
                   help="most requests in progress at once (per worker), beyond which the answer is 503 (default "
                   "%(default)s)")
    p.add_argument("--public-docs", action="store_true", help="/docs and /openapi.json without the token")
    p.add_argument("--access-log", action="store_true", help="log a line per request (client address, method, path, "
                   "status; never a body); off by default: each line costs the event loop 15-60 us")


class _BenchmarkHelp(argparse.HelpFormatter):
    """`veil bench --help`: each benchmark's description, read from the docstrings in the benchmarks' source
    (`BENCHMARKS.descriptions`) only when the help is printed, since reading them would slow every command's start."""

    def _get_help_string(self, action):
        if action.dest != "what":
            return action.help
        return f"{action.help}: " + "; ".join(f"{name}: {text}" for name, text in BENCHMARKS.descriptions().items())


def _measurement_commands(sub) -> None:
    p = _command(sub, "compress-report", cmd_compress_report, help="JPEG (QF 85/80) and PNG sizes: plain vs each "
                 "keyed scheme")
    _data_args(p)
    p.add_argument("--out", required=True, help="folder for compress.json and compress.md")
    _key_args(p)
    p.add_argument("--seed", type=_seed, default=0, help="seed of the stand-in key when no key is given")
    _force_arg(p, "the --out folder", folder=True)

    benchmarks = list(BENCHMARKS.modules)  # in the order declared
    p = _command(sub, "bench", cmd_bench, help="benchmarks: `veil bench NAME --json OUT` (NAME: "
                 f"{', '.join(benchmarks)})", formatter_class=_BenchmarkHelp)
    p.add_argument("what", choices=benchmarks, help="what to time")
    p.add_argument("--json", required=True, help="the new results file")
    _data_args(p, required=False, limit=True, default=f"{defaults.CIFAR10}, split test; train for train-masker",
               sizes=False)
    p.add_argument("--repeats", type=_positive_int, default=5, help="timed repeats of startup and mask; the best "
                   "counts (default 5)")
    p.add_argument("--params", type=_json_object, help="train-masker: JSON object of AAE masker parameters, e.g. "
                   "'{\"batch_size\": 128}' (default: the default recipe)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the stand-in key, or of the training run")
    p.add_argument("--masker", help="train: the AAE masker folder that makes the vectors (default: the default AAE, "
                   "trained here for one epoch on the train split)")
    p.add_argument("--model", help="serve: the model folder to serve (default: an nn trained here on scikit-learn's "
                   "digits)")
    p.add_argument("--duration", type=_positive_int, default=30, help="serve: seconds of the 16-client load "
                   "(default 30)")
    p.add_argument("--workers", type=_positive_int, default=1, help="serve: the server's worker processes (default 1)")
    p.add_argument("--no-auth", action="store_true", help="serve: serve with --no-auth and send no token, to measure "
                   "what the token costs (default: the clients send the service's token)")
    _force_arg(p, "the --json file")


def _attack_commands(sub) -> None:
    p = _command(sub, "attack", cmd_attack, help="attack a masked set under a threat model and measure what it "
                 "reveals", description="Threat models: a = ciphertext-only (masked data, algorithm, architecture, "
                 "public images; no secret); b = a + the victim's encoder or masking oracle (--masker / --key-file); "
                 "c = a + N known (image, masked) pairs of the victim (--pairs N; those images are not scored). "
                 "--method model-key reads the key off a key-transformed model instead (--model, --base, --victim, "
                 "--key-file for scoring, --json): threat base = the plain model it was made from is given; public = "
                 "--base is the attacker's own model trained on public images.")
    p.add_argument("--method", required=True, choices=ATTACKS.names(), help="the attack")
    p.add_argument("--threat", required=True, help="threat model a, b or c (see above); base or public for "
                   "model-key")
    p.add_argument("--masked", help="the victim's masked set (.npz or shard folder); the scheme comes from it "
                   "(required but for model-key)")
    p.add_argument("--victim", required=True, help="the victim's plain images, in the masked set's order (scoring "
                   "and threat c's pairs only)")
    p.add_argument("--victim-split", help="part of --victim to use (train/test)")
    p.add_argument("--public", help="public images of the same kind, disjoint from the victim's (required but for "
                   "model-key)")
    p.add_argument("--public-split", help="part of --public to use (train/test)")
    _size_args(p)
    p.add_argument("--pairs", type=_positive_int, help="threat c: how many of the victim's pairs the attacker knows")
    p.add_argument("--masker", help="threat b against an AAE: the victim's masker folder (its encoder only is read)")
    _key_args(p)
    p.add_argument("--train-images", type=_positive_int,
                   help="public images a trained attack learns from (default 10000)")
    p.add_argument("--epochs", type=_positive_int, help="epochs of a trained attack (default 1)")
    p.add_argument("--quick", action="store_true", help="a small budget (a smoke run)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the attack (default 0)")
    p.add_argument("--work", help="a folder where the attacker keeps the AAEs it trains on public images, so that "
                   "later attacks with the same public images, recipe, budget and seed load them (default: none)")
    p.add_argument("--out", help="new folder for attack.json and grid.png (required but for model-key)")
    p.add_argument("--model", help="model-key: the key-transformed model folder")
    p.add_argument("--base", help="model-key: a plain model folder: the one the transformed model was made from "
                   "(threat base) or the attacker's own (threat public)")
    p.add_argument("--json", help="model-key: the new results file for the figures")
    _force_arg(p, "the --out folder (model-key: the --json file)", folder=True)

    p = _command(sub, "report", cmd_report, help="`veil report privacy`: every scheme attacked under every threat "
                 "model, beside the utility it keeps; `veil report privacy-table`: README's table from such a report; "
                 "`veil report frontier`: the obfuscator, the AAE's knobs and the keyed AAE swept and attacked")
    p.add_argument("name", choices=list(REPORTS), help="the report: " + "; ".join(
        f"{name}: {text}" for name, text in REPORTS.items()))
    p.add_argument("--out", help="privacy: folder for privacy.json, report.md, plots and runs/ (a report "
                   "interrupted there continues where it stopped)")
    p.add_argument("--report", action="append", help="privacy-table: a privacy report folder (holding privacy.json), "
                   "then optionally a frontier report folder (frontier.json), whose headline points join the table "
                   "(repeat --report); frontier: a privacy report whose schemes are drawn beside the points")
    p.add_argument("--readme", help="privacy-table: also rewrite the privacy-table block of this README")
    p.add_argument("--data", help=f"source with train/test splits (default {defaults.CIFAR10}); victim = test, "
                   "public = train")
    p.add_argument("--masker", help="the victim's AAE masker folder (default: one trained under --work)")
    p.add_argument("--work", help="where the victims are trained and the searches kept (default runs/privacy, "
                   "runs/frontier)")
    p.add_argument("--schemes", help="comma-separated schemes (frontier: points, e.g. obf-l3,aae-keyed) to run "
                   "(default all)")
    p.add_argument("--skip", help="comma-separated runs to leave out, e.g. gan_a,itn_c100 (listed as missing)")
    p.add_argument("--assemble", action="store_true", help="run nothing: rebuild privacy.json, plots and report.md "
                   "from the runs in --out, listing the planned runs that are missing")
    p.add_argument("--quick", action="store_true", help="small subsets and budgets (a smoke run)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the whole report (default 0)")
    _force_arg(p, "the report folder instead of continuing it", folder=True)

    p = _command(sub, "recommend", cmd_recommend, help="the schemes on a threat model's Pareto front (utility kept "
                 "against worst-case leakage, from a privacy report) that meet your constraints")
    p.add_argument("--report", required=True, action="append", help="a privacy report folder (`veil report privacy "
                   "--out`) or a frontier report folder (`veil report frontier --out`); repeat to weigh both "
                   "together")
    p.add_argument("--threat", required=True, help="the threat model you face: a (ciphertext-only), b (encoder or "
                   "oracle) or c (known pairs)")
    p.add_argument("--min-utility", type=float, help="least utility kept (masked / plain accuracy), in [0, 1]")
    p.add_argument("--max-ssim", type=float, help="largest median SSIM of the best attack's reconstructions, in [0, 1]")
    p.add_argument("--max-leakage", type=float, help="largest worst-case leakage (max of SSIM, semantic, linkage), "
                   "in [0, 1]")


def _paper_commands(sub) -> None:
    p = _command(sub, "demo", cmd_demo, help="the whole pipeline on scikit-learn's digits (about 30 s on 2 "
                 "cores)")
    p.add_argument("--out", default="out/demo", help="folder for results.json and the figure (default out/demo)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the whole demo (default 0)")
    _force_arg(p, "the --out folder", folder=True)

    names = ", ".join(PROTOCOLS.names())
    p = _command(sub, "reproduce", cmd_reproduce, help=f"regenerate a paper's tables and figures ({names}); "
                 "`veil reproduce list` names each one's parts", description=f"Protocols: {names}. `veil reproduce "
                 "list` lists every protocol's parts, `veil reproduce NAME --parts list` those of NAME; `--parts "
                 "a,b` runs only those.")
    p.add_argument("name", choices=[*PROTOCOLS.names(), "list"], help="the protocol, or `list`")
    p.add_argument("--out", help="new folder for the report, JSON and figures (required to run)")
    p.add_argument("--quick", action="store_true", help="small subsets and few epochs (a smoke run)")
    p.add_argument("--budget", help="a named budget of sizes and epochs: full (the default), quick (as --quick) or "
                   "gpu (the papers' sizes: ConvMixer-256/8 for 25 epochs, the pair test on 40k/10k images; at224: "
                   "ConvMixer-384/8 for 300 epochs and ViT-B/16 on the whole splits)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the whole run (default 0)")
    p.add_argument("--seeds", type=_seeds, help="tradeoff: run every comparison once per seed of this comma-separated "
                   "list and report means with t intervals over seeds (default: the budget's, 3 seeds from --seed "
                   "up; 1 with --quick)")
    p.add_argument("--masker", help="use this trained masker as instance 0 instead of training one")
    p.add_argument("--data", help=f"CIFAR-10 source (default {defaults.CIFAR10}; at224 also reads a folder in "
                   "Imagenette's layout, train/ and val/)")
    p.add_argument("--mnist", help=f"MNIST source (default {defaults.MNIST})")
    p.add_argument("--work", help="where trained masker instances and checkpoints go (default runs/reproduce, "
                   "runs/tradeoff); an interrupted run resumes from there")
    p.add_argument("--parts", help="comma-separated parts of the protocol to run (default: all; `list` names them)")
    p.add_argument("--jobs", type=_positive_int, help="tradeoff, at224: train this many runs of a comparison at "
                   "once, one process each (2 on a 2-core machine)")
    p.add_argument("--epochs", type=_positive_int, help="at224: cap every training run at N epochs (the report names "
                   "it N of the budget's epochs)")
    p.add_argument("--size", help="at224: the image size, N or H,W (default 224)")
    p.add_argument("--resize", choices=("squash", "crop", "pad"), help="at224: how images are fitted to --size "
                   "(default crop: scale the short side, cut the centre)")
    _force_arg(p, "the --out folder", folder=True)


def build_parser() -> argparse.ArgumentParser:
    """Every command and option. Choices come from the registries, which list their names without importing
    the modules behind them: `--help` and argument errors never load torch."""
    parser = _Parser(prog="veil", description="Classify images nobody may see.")
    parser.add_argument("--version", action="version", version=f"veil {__version__}")
    _add_quiet(parser)
    parser.add_argument("--threads", type=_positive_int, help="CPU threads for training and masking, of each process "
                        "with --nproc (default: the cores other processes leave idle, measured at start, shared among "
                        "--nproc processes; also VEIL_THREADS)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_masker_commands, _masking_commands, _classifier_commands, _measurement_commands, _attack_commands,
                _paper_commands):
        add(sub)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.quiet:
            os.environ["VEIL_NO_PROGRESS"] = "1"  # for the library code that takes no `progress` argument
        if args.threads:
            os.environ[threads.ENV] = str(args.threads)  # read when torch first builds a model, or masking starts
        from veil.results import git_commit
        git_commit()  # pin the commit results will name before the run can change the checkout
        args.func(args)
    except VeilError as exc:
        if launch_rank() == 0:  # under torchrun, every process meets the same error: rank 0 says it
            print(f"veil: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("veil: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
