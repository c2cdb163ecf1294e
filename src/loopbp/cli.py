"""The ``loopbp`` command.

``loopbp train`` with no options trains the derivations' network on the
built-in digits: sizes 64-30-10, 30 epochs, mini-batches of 10, η = 3.0.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np

from . import __version__, datasets
from ._jit import threading_layer
from .network import Network

DEFAULT_HIDDEN = 30


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loopbp", description="Backpropagation as compiled index loops.")
    parser.add_argument("--version", action="version", version=f"loopbp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = commands.add_parser(
        "train", help="train a network (default: the digits data set)",
        description="Train a network with mini-batch SGD and report its test accuracy.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train.add_argument("--sizes", type=_positive_int, nargs="+", metavar="N",
                       help="layer sizes, input first (default: input width, "
                            f"{DEFAULT_HIDDEN}, number of classes)")
    train.add_argument("--epochs", type=_non_negative_int, default=30)
    train.add_argument("--batch-size", type=_positive_int, default=10,
                       help="examples per mini-batch")
    train.add_argument("--eta", type=_positive_float, default=3.0, help="learning rate η")
    train.add_argument("--seed", type=_non_negative_int, default=0,
                       help="seed for initial parameters and shuffling")
    train.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    train.add_argument("--threads", type=_positive_int, default=None,
                       help="kernel threads (default: all cores)")
    train.add_argument("--data", metavar="FILE.npz",
                       help="your own data: an .npz with X_train, y_train, X_test, y_test")
    train.add_argument("--save", metavar="PATH", help="write the trained network here")
    train.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    return parser


def train(args: argparse.Namespace) -> int:
    data = datasets.load_npz(args.data) if args.data else datasets.load_digits()
    n_classes = int(max(data["y_train"].max(), data["y_test"].max())) + 1
    sizes = args.sizes or [data["X_train"].shape[1], DEFAULT_HIDDEN, n_classes]
    try:
        net = Network(sizes, seed=args.seed, dtype=args.dtype)
        name = args.data or "digits"
        print(f"loopbp {__version__}: training {sizes} on {name} "
              f"({len(data['y_train'])} train / {len(data['y_test'])} test), "
              f"{args.epochs} epochs, mini-batch {args.batch_size}, eta {args.eta:g}, "
              f"{args.dtype}")
        started = time.perf_counter()
        history = net.sgd(data["X_train"], data["y_train"], args.epochs, args.batch_size,
                          args.eta, test_data=(data["X_test"], data["y_test"]),
                          progress=not args.quiet, n_threads=args.threads)
        wall = time.perf_counter() - started
    except ValueError as err:
        print(f"loopbp train: error: {err}", file=sys.stderr)
        return 2
    correct = net.evaluate(data["X_test"], data["y_test"])
    total = len(data["y_test"])
    status = "interrupted after" if history.interrupted else "finished"
    print(f"{status} {len(history)} epoch(s) in {wall:.2f} s "
          f"(threading layer: {threading_layer()})")
    print(f"test accuracy: {correct}/{total} = {100 * correct / total:.2f}%")
    if args.save:
        net.save(args.save)
        print(f"saved network to {args.save}")
    return 130 if history.interrupted else 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv or ["train"])
    if args.command == "train":
        return train(args)
    parser.print_help()
    return 2
