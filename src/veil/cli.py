"""The `veil` command: parses arguments, calls the library, prints. Errors: one line, exit code 2."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from veil.errors import VeilError


DEFAULT_CIFAR = "../shared/data/cifar10-jpeg.tar.gz"
METHODS = ("aae", "etc", "le", "ele", "pe", "scramble", "blur", "randfilter", "iidfilter")
ATTACK_METHODS = ("mismatch", "itn", "latent-align", "neuracrypt", "fr", "jigsaw", "gan")
MODELS = ("nn", "rf", "adaboost", "cnn", "convmixer", "vit", "descrambler-cnn")


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


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed is an integer from 0 up, got {text!r}")
    return value


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"n_estimators\": 200}}', got {text!r}")
    return value


def _data_args(parser, required: bool = True, default: str = ""):
    parser.add_argument("--data", required=required, help="folder, archive, CIFAR/MNIST folder, .npz, or 'digits'"
                        + (f" (default {default})" if default else ""))
    parser.add_argument("--split", help="top-level part to use (train/test)")
    parser.add_argument("--classes", help="comma-separated class names (or numbers) to keep")


def _key_args(parser):
    parser.add_argument("--key-file", help="file holding the secret (see `veil keygen`); refused when group or "
                        "others may read it")
    parser.add_argument("--key-env", help="environment variable holding the secret")
    parser.add_argument("--insecure-key-permissions", action="store_true",
                        help="accept a key file that group or others may read")


def _force_arg(parser, what: str = "the output"):
    parser.add_argument("--force", action="store_true", help=f"replace {what} if it exists (whole: nothing of the "
                        "old one survives)")


def _load_data(args, require_labels=True):
    from veil.data import load

    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    return load(args.data, split=args.split, classes=classes, require_labels=require_labels)


def _print_figures(figures: dict) -> None:
    width = max((len(k) for k in figures), default=0)
    for name, value in figures.items():
        print(f"{name:<{width}}  {value:.4f}" if isinstance(value, float) else f"{name:<{width}}  {value}")


def cmd_train_masker(args):
    from veil.workflows import train_masker

    data = _load_data(args, require_labels=False)
    masker = train_masker(data, args.out, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                          resume=args.resume, device=args.device, force=args.force)
    _print_figures(masker.report_)
    print(f"masker saved to {args.out}: keep the whole folder with the data owner (the decoder is the private key, "
          "and anyone holding the encoder can train a decoder from public images)")


def cmd_export_encoder(args):
    from veil.workflows import export_encoder

    export_encoder(args.masker, args.out, force=args.force)
    print(f"encoder only (no decoder) written to {args.out}. It is not safe to publish: anyone holding it can train a "
          "decoder from public images (veil attack --method itn --threat b; results/privacy). Keep it on the data "
          "owner's own masking machines.")


def _secret(args, required: bool = True):
    from veil.maskers.keys import read_secret

    if args.key_file is None and args.key_env is None and not required:
        return None
    return read_secret(args.key_file, args.key_env, insecure_permissions=args.insecure_key_permissions)


def cmd_mask(args):
    from veil.io import claim_output
    from veil.schemes import build_masker, mask_with
    from veil.workflows import mask

    data = _load_data(args, require_labels=False)
    if args.method == "aae":
        if not args.masker:
            raise VeilError("--method aae needs --masker DIR (a trained or exported AAE masker)")
        if args.key_file or args.key_env or args.block or args.kernel:
            raise VeilError("--method aae takes --masker DIR only (no key, --block or --kernel)")
        masked = mask(args.masker, data, args.out, force=args.force)
        _print_figures(masked.meta["latent_conformity"])
    else:
        if args.masker:
            raise VeilError(f"--masker is for --method aae; {args.method} is built from its key/options")
        masker = build_masker(args.method, _secret(args, required=False), block=args.block, kernel=args.kernel,
                              seed=args.seed)
        with claim_output(args.out, args.force) as tmp:
            masked = mask_with(masker, data)
            masked.save(tmp)
    print(f"{len(masked)} images masked -> {args.out} ({masked.data.shape[1:]} per image, {masked.fingerprint[:24]})")


def cmd_unmask(args):
    from veil.schemes import unmask_with_key
    from veil.workflows import unmask

    data = _load_data(args, require_labels=False) if args.data else None
    if bool(args.masker) == (args.key_file is not None or args.key_env is not None):
        raise VeilError("give --masker DIR (AAE) or the key (--key-file / --key-env) of a keyed scheme, not both")
    if args.masker:
        figures = unmask(args.masker, args.masked, args.out, data=data, limit=args.limit, force=args.force)
    else:
        figures = unmask_with_key(args.masked, _secret(args), args.out, data=data, limit=args.limit, force=args.force)
    _print_figures(figures)
    print(f"reconstructions written to {args.out}")


def cmd_train(args):
    from veil.classifiers import classifier_class
    from veil.masked import MaskedSet
    from veil.workflows import train_classifier

    masked = MaskedSet.load(args.masked)
    params = dict(args.params or {})
    if args.epochs is not None:
        if not getattr(classifier_class(args.model), "trains_with_engine", False):
            raise VeilError(f"--epochs is for the models trained in epochs; {args.model} is not (drop --epochs)")
        params["epochs"] = args.epochs
    train_classifier(masked, args.model, args.out, seed=args.seed, resume=args.resume, force=args.force, **params)
    print(f"{args.model} model trained on {len(masked)} masked samples -> {args.out}")


def cmd_evaluate(args):
    from veil.io import refuse_overlap
    from veil.masked import MaskedSet
    from veil.workflows import evaluate, save_results

    if args.json:
        refuse_overlap(args.json, [args.model])
    figures = evaluate(args.model, MaskedSet.load(args.masked), where=args.masked)
    _print_figures(figures)
    if args.json:
        save_results(args.json, figures, force=args.force, reads=[args.model], model=str(args.model),
                     masked=str(args.masked))


def cmd_attack(args):
    from veil.attacks import Budget
    from veil.attacks.run import attack_files
    from veil.data import load

    budget = Budget.quick() if args.quick else Budget()
    overrides = {"train_images": args.train_images, "epochs": args.epochs}
    budget = replace(budget, **{k: v for k, v in overrides.items() if v is not None})
    victim = load(args.victim, split=args.victim_split)
    public = load(args.public, split=args.public_split, require_labels=False)
    secret = _secret(args, required=False)
    figures = attack_files(args.method, args.threat, args.masked, victim, public, args.out, masker_dir=args.masker,
                           secret=secret, pairs=args.pairs, seed=args.seed, budget=budget, force=args.force)
    _print_figures(figures)
    print(f"attack.json and grid.png written to {args.out}")


def cmd_report(args):
    from veil.experiments.privacy import run

    figures = run(args.out, quick=args.quick, seed=args.seed, data=args.data, masker=args.masker, work=args.work,
                  schemes=args.schemes, assemble_only=args.assemble, skip=args.skip, force=args.force)
    print(f"{len(figures)} figures; privacy.json, report.md and plots written to {args.out}")


def cmd_demo(args):
    from veil.experiments.demo import run_demo

    figures = run_demo(args.out, seed=args.seed, force=args.force)
    print(f"\n{'model':<10}{'accuracy':>10}{'precision':>11}{'recall':>9}")
    for name in ("nn", "rf", "adaboost"):
        print(f"{name:<10}{figures[f'{name}_accuracy']:>10.3f}{figures[f'{name}_precision']:>11.3f}"
              f"{figures[f'{name}_recall']:>9.3f}")
    print(f"reconstruction MSE (matching decoder): {figures['reconstruction_mse']:.4f}")
    print(f"results.json and fig1_masked_examples.png written to {args.out}")


def cmd_compress_report(args):
    from veil.compress import compress_report
    from veil.maskers.keys import experiment_secret

    data = _load_data(args, require_labels=False)
    secret = _secret(args, required=False) or experiment_secret(args.seed)
    _print_figures(compress_report(data, args.out, secret, seed=args.seed, force=args.force))
    print(f"compress.json and compress.md written to {args.out}")


def cmd_bench(args):
    from veil.bench import bench_encrypt
    from veil.maskers.keys import experiment_secret

    if args.data is None:
        args.data, args.split = DEFAULT_CIFAR, args.split or "test"
    data = _load_data(args, require_labels=False)
    _print_figures(bench_encrypt(data, args.json, experiment_secret(args.seed), seed=args.seed, repeats=args.repeats,
                                 force=args.force))
    print(f"written to {args.json}")


def cmd_keygen(args):
    from veil.maskers.keys import write_new_key

    print(f"new secret key written to {write_new_key(args.out, force=args.force)} (mode 0600; keep it private, "
          "back it up)")


def cmd_reproduce(args):
    from veil.experiments import run_protocol

    options = {k: v for k, v in {"masker": args.masker, "data": args.data, "mnist": args.mnist,
                                 "work": args.work, "parts": args.parts, "jobs": args.jobs}.items() if v is not None}
    figures = run_protocol(args.name, args.out, force=args.force, quick=args.quick, seed=args.seed, **options)
    _print_figures(figures)
    print(f"report and JSON written to {args.out}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="veil", description="Classify images nobody may see.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train-masker", help="train an AAE masker on public images (labels unused)")
    _data_args(p)
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=_positive_int, default=10)
    p.add_argument("--batch-size", type=_positive_int, default=16)
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    _force_arg(p, "the masker in --out (its decoder is lost: what it masked can no longer be unmasked)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.set_defaults(func=cmd_train_masker)

    p = sub.add_parser("export-encoder", help="copy a masker without its decoder, for the data owner's own masking "
                       "machines (the encoder must stay with the data owner: with it, anyone can train a decoder)")
    p.add_argument("--masker", required=True)
    p.add_argument("--out", required=True, help="a new folder, outside --masker")
    _force_arg(p)
    p.set_defaults(func=cmd_export_encoder)

    p = sub.add_parser("mask", help="mask images: an AAE masker's encoder, a keyed encryption or a filter")
    p.add_argument("--method", default="aae", choices=METHODS)
    p.add_argument("--masker", help="AAE masker directory (--method aae)")
    _key_args(p)
    p.add_argument("--block", type=_positive_int, help="block size of a keyed scheme (etc: 4/8/16, default 16)")
    p.add_argument("--kernel", type=_positive_int, help="filter size of blur/randfilter/iidfilter (default 5)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of randfilter/iidfilter")
    _data_args(p)
    p.add_argument("--out", required=True)
    _force_arg(p)
    p.set_defaults(func=cmd_mask)

    p = sub.add_parser("unmask", help="reconstruct images from a masked file (the AAE decoder, or the key)")
    p.add_argument("--masker", help="AAE masker directory with its private decoder")
    _key_args(p)
    p.add_argument("--masked", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--data", help="the source images, to measure reconstruction MSE")
    p.add_argument("--split")
    p.add_argument("--classes")
    p.add_argument("--limit", type=_positive_int, help="reconstruct only the first N")
    _force_arg(p)
    p.set_defaults(func=cmd_unmask)

    p = sub.add_parser("train", help="train a classifier on a masked file")
    p.add_argument("--masked", required=True)
    p.add_argument("--model", required=True, choices=MODELS)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--epochs", type=_positive_int)
    p.add_argument("--params", type=_json_object,
                   help="JSON object of model parameters, e.g. '{\"n_estimators\": 200}'")
    p.add_argument("--resume", action="store_true")
    _force_arg(p, "the model folder --out")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a trained classifier on a masked file")
    p.add_argument("--model", required=True)
    p.add_argument("--masked", required=True)
    p.add_argument("--json")
    _force_arg(p, "the --json file")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compress-report", help="JPEG (QF 85/80) and PNG sizes: plain vs each keyed scheme")
    _data_args(p)
    p.add_argument("--out", required=True, help="folder for compress.json and compress.md")
    _key_args(p)
    p.add_argument("--seed", type=_seed, default=0, help="seed of the stand-in key when no key is given")
    _force_arg(p)
    p.set_defaults(func=cmd_compress_report)

    p = sub.add_parser("bench", help="benchmarks: `veil bench encrypt --json OUT`")
    p.add_argument("what", choices=["encrypt"])
    p.add_argument("--json", required=True)
    _data_args(p, required=False, default=f"{DEFAULT_CIFAR} --split test")
    p.add_argument("--repeats", type=_positive_int, default=5)
    p.add_argument("--seed", type=_seed, default=0, help="seed of the stand-in key")
    _force_arg(p, "the --json file")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("keygen", help="create a random secret key file (mode 0600) for the keyed schemes")
    p.add_argument("--out", required=True)
    _force_arg(p, "the key file (everything encrypted with the old key can then no longer be decrypted)")
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser("attack", help="attack a masked set under a threat model and measure what it reveals",
                       description="Threat models: a = ciphertext-only (masked data, algorithm, architecture, public "
                       "images; no secret); b = a + the victim's encoder or masking oracle (--masker / --key-file); "
                       "c = a + N known (image, masked) pairs of the victim (--pairs N; those images are not scored).")
    p.add_argument("--method", required=True, choices=ATTACK_METHODS)
    p.add_argument("--threat", required=True, choices=("a", "b", "c"))
    p.add_argument("--masked", required=True, help="the victim's masked set (.npz); the scheme comes from it")
    p.add_argument("--victim", required=True, help="the victim's plain images, in the masked set's order (scoring "
                   "and threat c's pairs only)")
    p.add_argument("--victim-split", help="part of --victim to use (train/test)")
    p.add_argument("--public", required=True, help="public images of the same kind, disjoint from the victim's")
    p.add_argument("--public-split", help="part of --public to use (train/test)")
    p.add_argument("--pairs", type=_positive_int, help="threat c: how many of the victim's pairs the attacker knows")
    p.add_argument("--masker", help="threat b against an AAE: the victim's masker folder (its encoder only is read)")
    _key_args(p)
    p.add_argument("--train-images", type=_positive_int,
                   help="public images a trained attack learns from (default 20000)")
    p.add_argument("--epochs", type=_positive_int, help="epochs of a trained attack (default 3)")
    p.add_argument("--quick", action="store_true", help="a small budget (a smoke run)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--out", required=True, help="new folder for attack.json and grid.png")
    _force_arg(p)
    p.set_defaults(func=cmd_attack)

    p = sub.add_parser("report", help="`veil report privacy`: every scheme attacked under every threat model, "
                       "beside the accuracy it keeps")
    p.add_argument("name", choices=("privacy",))
    p.add_argument("--out", required=True, help="folder for privacy.json, report.md, plots and runs/ (a report "
                   "interrupted there continues where it stopped)")
    p.add_argument("--data", help=f"source with train/test splits (default {DEFAULT_CIFAR}); victim = test, "
                   "public = train")
    p.add_argument("--masker", help="the victim's AAE masker folder (default: one trained under --work)")
    p.add_argument("--work", help="where the victim's AAE is trained (default runs/privacy)")
    p.add_argument("--schemes", help="comma-separated schemes to run (default all)")
    p.add_argument("--skip", help="comma-separated runs to leave out, e.g. gan_a,itn_c100 (listed as missing)")
    p.add_argument("--assemble", action="store_true", help="run nothing: rebuild privacy.json, plots and report.md "
                   "from the runs in --out, listing the planned runs that are missing")
    p.add_argument("--quick", action="store_true", help="small subsets and budgets (a smoke run)")
    p.add_argument("--seed", type=_seed, default=0)
    _force_arg(p, "the report folder instead of continuing it")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="the whole pipeline on scikit-learn's digits (about 2 minutes on 2 cores)")
    p.add_argument("--out", default="out/demo")
    p.add_argument("--seed", type=_seed, default=0)
    _force_arg(p)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("reproduce", help="regenerate a paper's tables and figures (table1, table2, pairs, all, ...)")
    p.add_argument("name")
    p.add_argument("--out", required=True)
    p.add_argument("--quick", action="store_true", help="small subsets and few epochs (a smoke run)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--masker", help="use this trained masker as instance 0 instead of training one")
    p.add_argument("--data", help="CIFAR-10 source (default ../shared/data/cifar10-jpeg.tar.gz)")
    p.add_argument("--mnist", help="MNIST source (default ../shared/data/mnist)")
    p.add_argument("--work", help="where trained masker instances (weights) go (default runs/reproduce)")
    p.add_argument("--parts", help="comma-separated parts of the protocol to run (default: all)")
    p.add_argument("--jobs", type=_positive_int, help="tradeoff: train this many runs of a comparison at once, one "
                   "process each (2 on a 2-core machine)")
    _force_arg(p)
    p.set_defaults(func=cmd_reproduce)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        from veil.results import git_commit
        git_commit()  # pin the commit results will name before the run can change the checkout
        args.func(args)
    except VeilError as exc:
        print(f"veil: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("veil: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
