"""The ``loopbp`` command.

``loopbp train`` with no options trains the derivations' network on the
built-in digits: sizes 64-30-10, 30 epochs, mini-batches of 10, η = 3.0.

Long runs: ``--checkpoint PATH --checkpoint-every N`` writes the training state
every N epochs, after the last one and on Ctrl-C; ``--resume PATH`` continues
such a run (same ``--data``) exactly where it stopped.  Ctrl-C stops training
between two mini-batches; the test accuracy is still reported and ``--save``
still writes the network.

Exit status: 0 when training finished, 130 when Ctrl-C stopped it, 1 when it
diverged (NaN or infinite cost), 2 for bad options, data or files.
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
from .training import TrainingDiverged, load_checkpoint

DEFAULT_HIDDEN = 30
#: Defaults of the options a resumed run takes from its checkpoint instead.
DEFAULTS = {"epochs": 30, "batch_size": 10, "eta": 3.0, "seed": 0, "dtype": "float64"}


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
    """The argument parser of the ``loopbp`` command."""
    parser = argparse.ArgumentParser(
        prog="loopbp", description="Backpropagation as compiled index loops.")
    parser.add_argument("--version", action="version", version=f"loopbp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = commands.add_parser(
        "train", help="train a network (default: the digits data set)",
        description="Train a network with mini-batch SGD and report its test accuracy. "
                    "Exit status: 0 finished, 130 interrupted (Ctrl-C), 1 diverged, "
                    "2 bad options, data or files.")
    train.add_argument("--sizes", type=_positive_int, nargs="+", metavar="N",
                       help="layer sizes, input first (default: input width, "
                            f"{DEFAULT_HIDDEN}, number of classes)")
    train.add_argument("--epochs", type=_non_negative_int, default=None,
                       help=f"epochs in total (default: {DEFAULTS['epochs']}, or the resumed "
                            "run's own count)")
    train.add_argument("--batch-size", type=_positive_int, default=None,
                       help=f"examples per mini-batch (default: {DEFAULTS['batch_size']}, "
                            "or the resumed run's)")
    train.add_argument("--eta", type=_positive_float, default=None,
                       help=f"learning rate η (default: {DEFAULTS['eta']}, or the resumed "
                            "run's)")
    train.add_argument("--seed", type=_non_negative_int, default=None,
                       help="seed for initial parameters and shuffling "
                            f"(default: {DEFAULTS['seed']})")
    train.add_argument("--dtype", choices=("float64", "float32"), default=None,
                       help=f"precision (default: {DEFAULTS['dtype']})")
    train.add_argument("--threads", type=_positive_int, default=None,
                       help="kernel threads (default: all cores)")
    train.add_argument("--data", metavar="FILE.npz",
                       help="your own data: an .npz with X_train, y_train, X_test, y_test")
    train.add_argument("--save", metavar="PATH",
                       help="write the trained network here (also after Ctrl-C)")
    train.add_argument("--checkpoint", metavar="PATH",
                       help="write the training state here every --checkpoint-every epochs, "
                            "after the last epoch and on Ctrl-C")
    train.add_argument("--checkpoint-every", type=_positive_int, default=None, metavar="N",
                       help="epochs between checkpoints (default: 1, or the resumed run's)")
    train.add_argument("--resume", metavar="PATH",
                       help="continue the run saved in this checkpoint (same --data); "
                            "checkpoints keep going to PATH unless --checkpoint says otherwise")
    train.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    return parser


def _fail(message: str) -> int:
    print(f"loopbp train: error: {message}", file=sys.stderr)
    return 2


def train(args: argparse.Namespace) -> int:
    """Run ``loopbp train``; return the exit status."""
    try:
        data = datasets.load_npz(args.data) if args.data else datasets.load_digits()
    except (ValueError, OSError) as err:
        return _fail(str(err))
    n_classes = int(max(data["y_train"].max(), data["y_test"].max())) + 1
    checkpoint, every = args.checkpoint, args.checkpoint_every
    if every is not None and not (checkpoint or args.resume):
        return _fail("--checkpoint-every needs --checkpoint PATH (or --resume PATH)")
    try:
        if args.resume:
            net, state = load_checkpoint(args.resume)
            for option, value, saved in (("--sizes", args.sizes, net.sizes),
                                         ("--dtype", args.dtype, net.dtype.name),
                                         ("--seed", args.seed, net.seed)):
                if value is not None and value != saved:
                    return _fail(f"{option} {value} differs from the checkpoint's {saved}; "
                                 "a resumed run keeps its network")
            epochs = state.epochs if args.epochs is None else args.epochs
            batch_size = args.batch_size or state.mini_batch_size
            eta = args.eta or state.eta
            checkpoint = checkpoint or args.resume
            every = every or state.checkpoint_every or 1
            sizes, dtype = net.sizes, net.dtype.name
            done = state.epochs_done
        else:
            sizes = args.sizes or [data["X_train"].shape[1], DEFAULT_HIDDEN, n_classes]
            dtype = args.dtype or DEFAULTS["dtype"]
            net = Network(sizes, seed=DEFAULTS["seed"] if args.seed is None else args.seed,
                          dtype=dtype)
            epochs = DEFAULTS["epochs"] if args.epochs is None else args.epochs
            batch_size = args.batch_size or DEFAULTS["batch_size"]
            eta = args.eta or DEFAULTS["eta"]
            every = every or 1
            done = 0
        name = args.data or "digits"
        resuming = f", resuming after epoch {done} of {args.resume}" if args.resume else ""
        print(f"loopbp {__version__}: training {sizes} on {name} "
              f"({len(data['y_train'])} train / {len(data['y_test'])} test), "
              f"{epochs} epochs, mini-batch {batch_size}, eta {eta:g}, {dtype}{resuming}",
              flush=True)
        started = time.perf_counter()
        history = net.sgd(data["X_train"], data["y_train"], epochs, batch_size, eta,
                          test_data=(data["X_test"], data["y_test"]),
                          progress=not args.quiet, n_threads=args.threads,
                          checkpoint=checkpoint, checkpoint_every=every,
                          resume_from=args.resume)
        wall = time.perf_counter() - started
    except TrainingDiverged as err:
        print(f"loopbp train: {err}", file=sys.stderr)
        if checkpoint:
            print(f"the last checkpoint is in {checkpoint}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as err:  # NetworkFileError is a ValueError
        return _fail(str(err))
    correct = net.evaluate(data["X_test"], data["y_test"])
    total = len(data["y_test"])
    status = "interrupted after" if history.interrupted else "finished"
    print(f"{status} {len(history)} epoch(s) in {wall:.2f} s "
          f"(threading layer: {threading_layer()})")
    print(f"test accuracy: {correct}/{total} = {100 * correct / total:.2f}%")
    if args.save:
        net.save(args.save)
        print(f"saved network to {args.save}")
    if history.interrupted and checkpoint:
        again = f" --data {args.data}" if args.data else ""
        print(f"checkpoint in {checkpoint}; continue with: loopbp train --resume "
              f"{checkpoint}{again}")
    return 130 if history.interrupted else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``loopbp`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv or ["train"])
    if args.command == "train":
        try:
            return train(args)
        except KeyboardInterrupt:  # Ctrl-C outside training (loading data, compiling)
            print("loopbp train: interrupted", file=sys.stderr)
            return 130
    parser.print_help()
    return 2
