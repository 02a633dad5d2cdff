"""The `veil` command: parses arguments, calls the library, prints. Errors: one line, exit code 2."""
from __future__ import annotations

import argparse
import json
import sys

from veil.errors import VeilError


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise VeilError(f"{self.prog}: {message}")


def _data_args(parser, labels_optional: bool = False):
    parser.add_argument("--data", required=True, help="folder, archive, CIFAR/MNIST folder, .npz, or 'digits'")
    parser.add_argument("--split", help="top-level part to use (train/test)")
    parser.add_argument("--classes", help="comma-separated class names (or numbers) to keep")


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
                          resume=args.resume, device=args.device)
    _print_figures(masker.report_)
    print(f"masker saved to {args.out} (encoder: public; decoder.safetensors: the private key)")


def cmd_export_encoder(args):
    from veil.maskers import load_masker

    load_masker(args.masker, decoder=False).save(args.out, include_decoder=False)
    print(f"encoder only (no decoder) written to {args.out}")


def cmd_mask(args):
    from veil.workflows import mask

    data = _load_data(args, require_labels=False)
    masked = mask(args.masker, data, args.out)
    print(f"{len(masked)} images masked -> {args.out} ({masked.data.shape[1:]} per image, {masked.fingerprint[:24]})")


def cmd_unmask(args):
    from veil.workflows import unmask

    data = _load_data(args, require_labels=False) if args.data else None
    figures = unmask(args.masker, args.masked, args.out, data=data, limit=args.limit)
    _print_figures(figures)
    print(f"reconstructions written to {args.out}")


def cmd_train(args):
    from veil.masked import MaskedSet
    from veil.workflows import train_classifier

    masked = MaskedSet.load(args.masked)
    params = json.loads(args.params) if args.params else {}
    if args.epochs is not None:
        params["epochs"] = args.epochs
    train_classifier(masked, args.model, args.out, seed=args.seed, resume=args.resume, **params)
    print(f"{args.model} model trained on {len(masked)} masked samples -> {args.out}")


def cmd_evaluate(args):
    from veil.masked import MaskedSet
    from veil.results import write_results
    from veil.workflows import evaluate

    figures = evaluate(args.model, MaskedSet.load(args.masked), where=args.masked)
    _print_figures(figures)
    if args.json:
        write_results(args.json, figures, seed=None, model=str(args.model), masked=str(args.masked))


def cmd_demo(args):
    from veil.experiments.demo import run_demo

    figures = run_demo(args.out, seed=args.seed)
    print(f"\n{'model':<10}{'accuracy':>10}{'precision':>11}{'recall':>9}")
    for name in ("nn", "rf", "adaboost"):
        print(f"{name:<10}{figures[f'{name}_accuracy']:>10.3f}{figures[f'{name}_precision']:>11.3f}"
              f"{figures[f'{name}_recall']:>9.3f}")
    print(f"reconstruction MSE (matching decoder): {figures['reconstruction_mse']:.4f}")
    print(f"results.json and fig1_masked_examples.png written to {args.out}")


def cmd_reproduce(args):
    from veil.experiments import protocol

    options = {k: v for k, v in {"masker": args.masker, "data": args.data, "mnist": args.mnist}.items() if v}
    figures = protocol(args.name)(args.out, quick=args.quick, seed=args.seed, **options)
    _print_figures(figures)
    print(f"report and JSON written to {args.out}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="veil", description="Classify images nobody may see.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train-masker", help="train an AAE masker on public images (labels unused)")
    _data_args(p)
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.set_defaults(func=cmd_train_masker)

    p = sub.add_parser("export-encoder", help="copy a masker without its decoder, for whoever masks data")
    p.add_argument("--masker", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_export_encoder)

    p = sub.add_parser("mask", help="mask images with a masker (needs only the encoder)")
    p.add_argument("--masker", required=True)
    _data_args(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_mask)

    p = sub.add_parser("unmask", help="reconstruct images from a masked file (needs the private decoder)")
    p.add_argument("--masker", required=True)
    p.add_argument("--masked", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--data", help="the source images, to measure reconstruction MSE")
    p.add_argument("--split")
    p.add_argument("--classes")
    p.add_argument("--limit", type=int, help="reconstruct only the first N")
    p.set_defaults(func=cmd_unmask)

    p = sub.add_parser("train", help="train a classifier on a masked file")
    p.add_argument("--masked", required=True)
    p.add_argument("--model", required=True, choices=["nn", "rf", "adaboost"])
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int)
    p.add_argument("--params", help="JSON object of model parameters, e.g. '{\"n_estimators\": 200}'")
    p.add_argument("--resume", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a trained classifier on a masked file")
    p.add_argument("--model", required=True)
    p.add_argument("--masked", required=True)
    p.add_argument("--json")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("demo", help="the whole pipeline on scikit-learn's digits (about 2 minutes on 2 cores)")
    p.add_argument("--out", default="out/demo")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("reproduce", help="regenerate a paper's tables and figures (table1, table2, pairs, all, ...)")
    p.add_argument("name")
    p.add_argument("--out", required=True)
    p.add_argument("--quick", action="store_true", help="small subsets and few epochs (a smoke run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--masker", help="use this trained masker as instance 0 instead of training one")
    p.add_argument("--data", help="CIFAR-10 source (default ../shared/data/cifar10-jpeg.tar.gz)")
    p.add_argument("--mnist", help="MNIST source (default ../shared/data/mnist)")
    p.set_defaults(func=cmd_reproduce)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.func(args)
    except VeilError as exc:
        print(f"veil: error: {exc}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"veil: error: --params is not valid JSON ({exc})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("veil: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
