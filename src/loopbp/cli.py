"""The ``loopbp`` command: ``train``, ``evaluate``, ``predict`` and ``compile``.

``loopbp train`` with no options trains the derivations' network on the
built-in digits: sizes 64-30-10, sigmoid neurons, quadratic cost, N(0, 1)
initial parameters, plain SGD, 30 epochs, mini-batches of 10, η = 3.0, seed 0.
Options choose the data (``--data digits|mnist1d|FILE.npz``), the network
(``--sizes``, ``--activation``, ``--output``, ``--cost``, ``--init``), the
optimizer (``--optimizer``, ``--momentum``, ``--betas``, ``--l2``), the
learning-rate schedule (``--schedule`` and its parameters), a validation split
with early stopping (``--validation-fraction``, ``--early-stopping``,
``--monitor``) and learning curves (``--plot PATH.png``).  Combinations that
cannot work are refused before any data is loaded.

The first run compiles the numba kernels (they are cached for later runs);
``train``, ``evaluate`` and ``predict`` say so while it happens.

Long runs: ``--checkpoint PATH --checkpoint-every N`` writes the training state
every N epochs, after the last one and on Ctrl-C; ``--resume PATH`` continues
such a run (same ``--data``) exactly where it stopped, with the network and
every setting of the checkpoint (``--epochs``, ``--batch-size``, ``--eta``,
``--threads`` and the output options may still be given).  Ctrl-C stops
training between two mini-batches; the test accuracy is still reported and
``--save`` and ``--plot`` still write their files.

On a Dask cluster: ``--scheduler ADDRESS`` trains on the cluster whose
scheduler listens there, and ``--workers N`` starts a local cluster of N worker
processes for the run (one kernel thread each); either runs
:func:`loopbp.distributed.sgd`, which gives the network of a one-process run
(needs the ``loopbp[dask]`` extra).

``loopbp compile`` compiles every kernel into numba's cache ahead of time
(:func:`loopbp.precompile.precompile`), so that no later run waits for it.

``loopbp evaluate MODEL.npz`` reports a saved network's test accuracy and mean
cost; ``loopbp predict MODEL.npz INPUT.npy|INPUT.csv`` prints the class of
every input row (``--proba``: the output activations).

Exit status: 0 when training finished (or stopped early), 130 when Ctrl-C
stopped it, 1 when it diverged (NaN or infinite cost), 2 for bad options, data
or files.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import inspect
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from numba.core import event as numba_event

from . import __version__, datasets, precompile, schedules
from . import _validation as check
from ._jit import threading_layer
from .activations import ACTIVATIONS, HIDDEN
from .costs import COSTS, REQUIRED_OUTPUT
from .early_stopping import MONITORS
from .history import History
from .init import INITIALIZERS
from .network import Network, feedforward_chunk
from .optimizers import OPTIMIZERS, Optimizer
from .plot import FORMATS as PLOT_FORMATS
from .training import TrainingDiverged, load_checkpoint

DEFAULT_HIDDEN = 30
#: Defaults of the options a resumed run takes from its checkpoint instead.
DEFAULTS = {"epochs": 30, "batch_size": 10, "eta": 3.0, "seed": 0, "dtype": "float64",
            "activation": "sigmoid", "cost": "quadratic", "init": "normal",
            "optimizer": "sgd", "l2": 0.0, "schedule": "constant", "monitor": "cost"}
#: Default learning rate per optimizer: the derivations' 3.0 for plain SGD; for
#: momentum and Nesterov the rate whose steady step η/(1−μ) at μ = 0.9 matches
#: it; Adam's usual 0.001 (Kingma & Ba).
DEFAULT_ETA = {"sgd": 3.0, "momentum": 0.3, "nesterov": 0.3, "adam": 0.001}
#: The built-in data sets ``--data`` names.
BUILTIN_DATA: dict[str, Callable[[], dict[str, np.ndarray]]] = {
    "digits": datasets.load_digits, "mnist1d": datasets.load_mnist1d}
#: ``--option``: (schedule it belongs to, parameter of the schedule's class).
SCHEDULE_OPTIONS = {"--step-factor": ("step", "factor"), "--step-interval": ("step", "interval"),
                    "--eta-min": ("cosine", "eta_min"),
                    "--plateau-factor": ("plateau", "factor"),
                    "--plateau-patience": ("plateau", "patience")}
COMPILING = "compiling kernels (first run only; later runs load them from the cache) …"


# --- argument types --------------------------------------------------------------------


def _integer(text: str, minimum: int, words: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {words}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {words}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _integer(text, 1, "a positive integer")


def _non_negative_int(text: str) -> int:
    return _integer(text, 0, "an integer >= 0")


def _number(text: str, accept: Callable[[float], bool], words: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and accept(value)):
        raise argparse.ArgumentTypeError(f"expected {words}, got {text}")
    return value


def _positive_float(text: str) -> float:
    return _number(text, lambda v: v > 0, "a positive finite number")


def _non_negative_float(text: str) -> float:
    return _number(text, lambda v: v >= 0, "a finite number >= 0")


def _open_unit(text: str) -> float:
    return _number(text, lambda v: 0 < v < 1, "a number between 0 and 1 (both excluded)")


def _half_open_unit(text: str) -> float:
    return _number(text, lambda v: 0 <= v < 1, "a number in [0, 1)")


def _step_factor(text: str) -> float:
    return _number(text, lambda v: 0 < v <= 1, "a number in (0, 1]")


def _default(cls: type, name: str) -> Any:
    """The default of ``cls``'s constructor argument ``name`` (help texts stay in step)."""
    return inspect.signature(cls).parameters[name].default


# --- the parser ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``loopbp`` command."""
    parser = argparse.ArgumentParser(
        prog="loopbp", description="Backpropagation as compiled index loops: train a network, "
                                   "evaluate a saved one, predict with it, or compile the "
                                   "kernels ahead of time.")
    parser.add_argument("--version", action="version", version=f"loopbp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train(commands)
    _add_evaluate(commands)
    _add_predict(commands)
    _add_compile(commands)
    return parser


def _add_train(commands: Any) -> None:
    train = commands.add_parser(
        "train", help="train a network (default: the derivations' network on digits)",
        description="Train a network with mini-batch gradient descent and report its test "
                    "accuracy.  With no options: sizes 64-30-10, sigmoid, quadratic cost, "
                    "normal init, plain SGD, 30 epochs, mini-batch 10, eta 3.0, seed 0, on "
                    "the built-in digits.  Exit status: 0 finished (or stopped early), "
                    "130 interrupted (Ctrl-C), 1 diverged, 2 bad options, data or files.")
    data = train.add_argument_group("data")
    data.add_argument("--data", metavar="digits|mnist1d|FILE.npz",
                      help="the data set: the built-in 8x8 digits (default), MNIST-1D "
                           "(generated locally), or your own .npz with X_train, y_train, "
                           "X_test, y_test (one example per row, integer labels)")
    data.add_argument("--validation-fraction", type=_open_unit, default=None, metavar="F",
                      help="hold out this fraction of the training rows (stratified by "
                           "class) and measure cost and accuracy on them after every epoch")

    network = train.add_argument_group("network")
    network.add_argument("--sizes", type=_positive_int, nargs="+", metavar="N",
                         help="layer sizes, input first (default: input width, "
                              f"{DEFAULT_HIDDEN}, number of classes)")
    network.add_argument("--activation", nargs="+", metavar="NAME",
                         help="hidden layers' activation: one name for all, or one per "
                              f"hidden layer; {', '.join(HIDDEN)} "
                              f"(default: {DEFAULTS['activation']})")
    network.add_argument("--output", choices=tuple(ACTIVATIONS),
                         help="output layer's activation (default: softmax with --cost "
                              "log_likelihood, sigmoid otherwise)")
    network.add_argument("--cost", choices=tuple(COSTS),
                         help=f"cost function (default: {DEFAULTS['cost']}); cross_entropy "
                              "needs a sigmoid output, log_likelihood a softmax output")
    network.add_argument("--init", choices=tuple(INITIALIZERS),
                         help=f"initial weights (default: {DEFAULTS['init']})")
    network.add_argument("--seed", type=_non_negative_int, default=None,
                         help="seed for initial parameters, shuffling and the validation "
                              f"split (default: {DEFAULTS['seed']})")
    network.add_argument("--dtype", choices=("float64", "float32"), default=None,
                         help=f"precision (default: {DEFAULTS['dtype']})")

    training = train.add_argument_group("training")
    training.add_argument("--epochs", type=_non_negative_int, default=None,
                          help=f"epochs in total (default: {DEFAULTS['epochs']}, or the "
                               "resumed run's own count)")
    training.add_argument("--batch-size", type=_positive_int, default=None,
                          help=f"examples per mini-batch (default: {DEFAULTS['batch_size']}, "
                               "or the resumed run's)")
    etas = ", ".join(f"{v:g} {k}" for k, v in DEFAULT_ETA.items())
    training.add_argument("--eta", type=_positive_float, default=None,
                          help=f"learning rate η (default by optimizer: {etas}; or the "
                               "resumed run's)")
    training.add_argument("--optimizer", choices=tuple(OPTIMIZERS),
                          help=f"update rule (default: {DEFAULTS['optimizer']})")
    training.add_argument("--momentum", type=_half_open_unit, default=None, metavar="MU",
                          help="μ of --optimizer momentum or nesterov "
                               f"(default: {Optimizer().momentum:g})")
    training.add_argument("--betas", type=_half_open_unit, nargs=2, default=None,
                          metavar=("B1", "B2"),
                          help="β1 β2 of --optimizer adam (default: "
                               f"{Optimizer().betas[0]:g} {Optimizer().betas[1]:g})")
    training.add_argument("--l2", type=_non_negative_float, default=None, metavar="LAMBDA",
                          help="L2 regularization λ: cost + (λ/2n) Σ w² (default: 0)")
    training.add_argument("--schedule", choices=tuple(schedules.SCHEDULES),
                          help="learning-rate schedule (default: constant)")
    training.add_argument("--step-factor", type=_step_factor, default=None, metavar="F",
                          help="--schedule step: multiply η by F every --step-interval "
                               f"epochs (default: {_default(schedules.Step, 'factor'):g})")
    training.add_argument("--step-interval", type=_positive_int, default=None, metavar="N",
                          help="--schedule step: epochs between cuts "
                               f"(default: {_default(schedules.Step, 'interval')})")
    training.add_argument("--eta-min", type=_non_negative_float, default=None, metavar="ETA",
                          help="--schedule cosine: the rate reached at the end, below --eta "
                               f"(default: {_default(schedules.Cosine, 'eta_min'):g})")
    training.add_argument("--plateau-factor", type=_open_unit, default=None, metavar="F",
                          help="--schedule plateau: multiply η by F when the validation cost "
                               "(training cost without validation) stops improving "
                               f"(default: {_default(schedules.Plateau, 'factor'):g})")
    training.add_argument("--plateau-patience", type=_positive_int, default=None, metavar="N",
                          help="--schedule plateau: epochs without improvement before a cut "
                               f"(default: {_default(schedules.Plateau, 'patience')})")
    training.add_argument("--early-stopping", type=_positive_int, default=None,
                          metavar="PATIENCE",
                          help="stop after PATIENCE epochs without improvement on the "
                               "validation rows and keep the best epoch's parameters (needs "
                               "--validation-fraction)")
    training.add_argument("--monitor", choices=MONITORS,
                          help="what --early-stopping watches: the validation cost or "
                               f"accuracy (default: {DEFAULTS['monitor']})")
    training.add_argument("--threads", type=_positive_int, default=None,
                          help="kernel threads (default: all cores)")

    cluster = train.add_argument_group(
        "Dask cluster (synchronous data parallelism: the network of a one-process run; "
        "needs loopbp[dask])")
    where = cluster.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="train on the Dask cluster whose scheduler listens at ADDRESS "
                            "(e.g. tcp://10.0.0.5:8786); each worker keeps a shard of the "
                            "training rows")
    where.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                       help="start a local Dask cluster of N worker processes (one kernel "
                            "thread each) for this run")

    output = train.add_argument_group("files and output")
    output.add_argument("--save", metavar="PATH",
                        help="write the trained network here (also after Ctrl-C)")
    output.add_argument("--plot", metavar="PATH.png",
                        help="draw the learning curves (training and validation cost, "
                             "validation and test accuracy per epoch) to this image "
                             f"({', '.join(PLOT_FORMATS)}; needs matplotlib)")
    output.add_argument("--checkpoint", metavar="PATH",
                        help="write the training state here every --checkpoint-every epochs, "
                             "after the last epoch and on Ctrl-C")
    output.add_argument("--checkpoint-every", type=_positive_int, default=None, metavar="N",
                        help="epochs between checkpoints (default: 1, or the resumed run's)")
    output.add_argument("--resume", metavar="PATH",
                        help="continue the run saved in this checkpoint (same --data), with "
                             "its network and settings; checkpoints keep going to PATH "
                             "unless --checkpoint says otherwise")
    output.add_argument("--quiet", action="store_true",
                        help="no progress bar, epoch lines or compile notice")


def _add_evaluate(commands: Any) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="test accuracy and mean cost of a saved network",
        description="Report the test accuracy and mean cost of a network saved with "
                    "'loopbp train --save' (or a checkpoint) on a data set's test split.  "
                    "Exit status: 0 done, 2 bad options, data or files.")
    evaluate.add_argument("model", metavar="MODEL.npz", help="a saved network or checkpoint")
    evaluate.add_argument("--data", metavar="digits|mnist1d|FILE.npz",
                          help="the data set whose test split is used (default: digits)")


def _add_predict(commands: Any) -> None:
    predict = commands.add_parser(
        "predict", help="classify the rows of an .npy or .csv file with a saved network",
        description="Feed every row of INPUT through a saved network and print the class "
                    "(index of the largest output) of each, one per line, or with --proba "
                    "the output activations, comma-separated.  INPUT is an .npy array "
                    "(n, inputs) or (inputs,), or a .csv of numbers with one row per example "
                    "(a header line is skipped).  Exit status: 0 done, 2 bad options or files.")
    predict.add_argument("model", metavar="MODEL.npz", help="a saved network or checkpoint")
    predict.add_argument("input", metavar="INPUT.npy|INPUT.csv", help="the examples, one per row")
    predict.add_argument("--proba", action="store_true",
                         help="print the output layer's activations (probabilities with a "
                              "softmax output) instead of classes")
    predict.add_argument("--output", metavar="OUT.csv",
                         help="write the predictions to this file instead of printing them")


def _add_compile(commands: Any) -> None:
    compile_ = commands.add_parser(
        "compile", help="compile the kernels into numba's cache now, so later runs start at once",
        description="Compile every kernel loopbp runs (training, inference, and Dask's "
                    "workers and client where Dask is installed; serial and parallel) for "
                    "the given dtypes into numba's on-disk cache, "
                    "so that no later process waits for the compiler: for container images, "
                    "shared installations and CI caches.  Kernels already in the cache are "
                    "loaded, not compiled again.  Exit status: 0 done, 2 bad options.")
    compile_.add_argument("--dtype", nargs="+", choices=precompile.DTYPES,
                          default=list(precompile.DTYPES),
                          help="the dtypes to compile for (default: both)")


# --- shared helpers --------------------------------------------------------------------


def _fail(message: str, command: str = "train") -> int:
    print(f"loopbp {command}: error: {message}", file=sys.stderr)
    return 2


def _load_data(name: str | None) -> dict[str, np.ndarray]:
    """A built-in data set by name, or a data file."""
    name = name or "digits"
    if name in BUILTIN_DATA:
        return BUILTIN_DATA[name]()
    return datasets.load_npz(name)


class _CompileNotice(numba_event.Listener):
    """Says when numba compiles loopbp's kernels.

    Listens to numba's ``numba:compile`` events, which fire only for real
    compilations (a kernel loaded from the cache fires none), and only heeds
    loopbp's own functions (numba compiles some of its helpers, typed lists'
    for one, anew in every process).  Prints :data:`COMPILING` when the first
    one starts.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.started: float | None = None

    def on_start(self, event: numba_event.Event) -> None:
        if self.started is None and _is_loopbp_compile(event):
            self.started = time.perf_counter()
            print(COMPILING, file=self.stream, flush=True)

    def on_end(self, event: numba_event.Event) -> None:
        pass


def _is_loopbp_compile(event: numba_event.Event) -> bool:
    data = getattr(event, "data", None)
    dispatcher = data.get("dispatcher") if isinstance(data, dict) else None
    module = getattr(getattr(dispatcher, "py_func", None), "__module__", None) or ""
    return module.split(".")[0] == "loopbp"


def compile_kernels(work: Callable[[], Any], stream: TextIO | None = None) -> float | None:
    """Run ``work`` (a warm-up that calls the kernels a command needs), saying if it compiles.

    If numba compiles any of loopbp's kernels meanwhile, print :data:`COMPILING`
    to ``stream`` (default: standard error) as the first compilation starts and
    ``compiled in X s`` when ``work`` returns; return those seconds, or None
    when everything came from the cache (or was compiled before in this process).
    """
    notice = _CompileNotice(sys.stderr if stream is None else stream)
    with numba_event.install_listener("numba:compile", notice):
        work()
    if notice.started is None:
        return None
    seconds = time.perf_counter() - notice.started
    print(f"compiled in {seconds:.1f} s", file=notice.stream, flush=True)
    return seconds


def _feedforward_warm_up(net: Network, rows: Sequence[int], *, cost: bool = False) -> None:
    """Feed zeros through ``net`` in chunks of the sizes later calls will use.

    The kernels depend on the rows fed forward at a time (serial or parallel
    twins); with ``cost`` the mean cost's kernel is compiled too.
    """
    for n in sorted({feedforward_chunk(net.sizes, r) for r in rows if r > 0}):
        X = np.zeros((n, net.sizes[0]), net.dtype)
        if cost:
            net.mean_cost(X, np.zeros(n, np.int64))
        else:
            net.feedforward(X)


def _training_warm_up(net: Network, train_rows: int, batch_size: int, test_rows: int,
                      validation_rows: int, optimizer: str, train: bool) -> None:
    """One mini-batch of zeros through a network like ``net``, then its evaluations.

    The probe has the same sizes, activations, cost and dtype and a batch of
    the size training will use, so numba picks (and compiles) the same
    kernels: serial or parallel, for this dtype.  ``net`` itself is untouched.
    """
    probe = Network(net.sizes, activation=net.activations[:-1], output=net.activations[-1],
                    cost=net.cost, dtype=net.dtype, seed=0)
    if train:
        rows = max(1, min(batch_size, train_rows))
        X = np.zeros((rows, net.sizes[0]), net.dtype)
        try:
            probe.sgd(X, np.zeros(rows, np.int64), 1, rows, 1e-3, optimizer=optimizer,
                      progress=False)
        except TrainingDiverged:  # cannot happen on zeros at this rate; harmless if it did
            pass
    _feedforward_warm_up(probe, [test_rows])
    _feedforward_warm_up(probe, [validation_rows], cost=True)


# --- loopbp train ----------------------------------------------------------------------


def _combination_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the combination of options of a new run, or None."""
    optimizer = args.optimizer or DEFAULTS["optimizer"]
    if args.momentum is not None and optimizer not in ("momentum", "nesterov"):
        return (f"--momentum applies to --optimizer momentum or nesterov, not {optimizer}")
    if args.betas is not None and optimizer != "adam":
        return f"--betas applies to --optimizer adam, not {optimizer}"
    schedule = args.schedule or DEFAULTS["schedule"]
    for option, (owner, _) in SCHEDULE_OPTIONS.items():
        if _given(args, option) is not None and schedule != owner:
            return f"{option} applies to --schedule {owner}, not {schedule}"
    eta = args.eta or DEFAULT_ETA[optimizer]
    if args.eta_min is not None and args.eta_min >= eta:
        return f"--eta-min {args.eta_min:g} must be below the learning rate (--eta {eta:g})"
    if args.early_stopping is not None and args.validation_fraction is None:
        return ("--early-stopping needs --validation-fraction F (the held-out rows whose cost "
                "or accuracy it watches)")
    if args.monitor is not None and args.early_stopping is None:
        return "--monitor chooses what --early-stopping watches; give --early-stopping N too"
    names = args.activation or [DEFAULTS["activation"]]
    for name in names:
        if name == "softmax":
            return ("--activation softmax: the softmax couples a layer's neurons and is for the "
                    "output layer only (--output softmax)")
        if name not in HIDDEN:
            return f"--activation: unknown {name!r}; choose from {', '.join(HIDDEN)}"
    hidden = len(args.sizes) - 2 if args.sizes else 1
    if args.sizes and hidden < 0:
        return f"--sizes needs at least two layers (input and output), got {args.sizes}"
    if len(names) != 1 and len(names) != hidden:
        sizes = " ".join(map(str, args.sizes)) if args.sizes else "the default sizes"
        return (f"--activation takes one name for all hidden layers or one per hidden layer "
                f"({hidden} for {sizes}), got {len(names)}: {' '.join(names)}")
    cost = args.cost or DEFAULTS["cost"]
    needed = REQUIRED_OUTPUT[cost]
    if args.output is not None and needed is not None and args.output != needed:
        return f"--cost {cost} needs --output {needed}, got --output {args.output}"
    return None


def _given(args: argparse.Namespace, option: str) -> Any:
    return getattr(args, option.lstrip("-").replace("-", "_"))


def _output_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the output files' paths, or None."""
    for option in ("--save", "--plot", "--checkpoint"):
        problem = check.folder_problem(_given(args, option), option)
        if problem:
            return problem
    if args.plot is not None:
        if Path(args.plot).suffix.lower() not in PLOT_FORMATS:
            return (f"--plot {args.plot!r}: the file name must end in "
                    f"{', '.join(PLOT_FORMATS)}")
        if importlib.util.find_spec("matplotlib") is None:
            return "--plot needs matplotlib: pip install 'loopbp[data]'"
    return None


def _resume_conflict(args: argparse.Namespace, net: Network, state: Any) -> str | None:
    """The first option given that differs from the checkpoint's run, as a message."""
    hyper = state.optimizer.hyperparameters
    schedule = state.schedule
    stopping = state.early_stopping
    hidden = net.activations[:-1]
    activation = args.activation
    if activation is not None and len(activation) == 1:
        activation = activation * len(hidden)
    betas = hyper.get("betas")
    checks: list[tuple[str, Any, Any]] = [
        ("--sizes", args.sizes, net.sizes), ("--dtype", args.dtype, net.dtype.name),
        ("--seed", args.seed, net.seed), ("--activation", activation, hidden),
        ("--output", args.output, net.activations[-1]), ("--cost", args.cost, net.cost),
        ("--init", args.init, net.init), ("--optimizer", args.optimizer, state.optimizer.name),
        ("--momentum", args.momentum, hyper.get("momentum")),
        ("--betas", args.betas, None if betas is None else [float(b) for b in betas]),
        ("--l2", args.l2, state.l2), ("--schedule", args.schedule, schedule["name"]),
        ("--validation-fraction", args.validation_fraction, state.validation_fraction),
        ("--early-stopping", args.early_stopping,
         None if stopping is None else stopping.patience),
        ("--monitor", args.monitor, None if stopping is None else stopping.monitor),
    ]
    for option, (owner, key) in SCHEDULE_OPTIONS.items():
        saved = schedule["params"].get(key) if schedule["name"] == owner else None
        checks.append((option, _given(args, option), saved))
    for option, value, saved in checks:
        if value is None or value == saved:
            continue
        if saved is None:
            return (f"{option} was not used by the checkpoint's run; a resumed run keeps its "
                    "network and settings")
        return (f"{option} {_show(value)} differs from the checkpoint's {_show(saved)}; a "
                "resumed run keeps its network and settings")
    return None


def _show(value: Any) -> str:
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return " ".join(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _schedule(args: argparse.Namespace) -> schedules.Schedule:
    """The ``--schedule`` with the parameters given (the class's defaults for the rest)."""
    name = args.schedule or DEFAULTS["schedule"]
    params = {key: _given(args, option) for option, (owner, key) in SCHEDULE_OPTIONS.items()
              if owner == name and _given(args, option) is not None}
    return schedules.SCHEDULES[name](**params)


def _describe(net: Network, optimizer: Optimizer, l2: float, schedule: schedules.Schedule,
              validation_fraction: float | None, stopping: tuple[int, str] | None) -> str:
    """The second header line: the network's functions and the training's settings."""
    hidden = net.activations[:-1]
    if not hidden:
        layers = "no hidden layer"
    elif len(set(hidden)) == 1:
        layers = f"{hidden[0]} hidden"
    else:
        layers = f"hidden {'/'.join(hidden)}"
    text = (f"network: {layers}, {net.activations[-1]} output, {net.cost} cost, {net.init} "
            f"init; optimizer {optimizer.name}")
    hyper = {k: v for k, v in optimizer.hyperparameters().items() if k != "epsilon"}
    if hyper:
        text += " (" + ", ".join(
            f"{k} {' '.join(f'{b:g}' for b in v) if isinstance(v, list) else f'{v:g}'}"
            for k, v in hyper.items()) + ")"
    if l2:
        text += f", L2 lambda {l2:g}"
    if schedule.name == "constant":
        text += ", constant learning rate"
    else:
        params = ", ".join(f"{k} {v:g}" for k, v in schedule.params().items())
        text += f", schedule {schedule.name} ({params})"
    if validation_fraction is not None:
        text += f"; validation: {100 * validation_fraction:g}% of the training rows"
    if stopping is not None:
        text += f"; early stopping after {stopping[0]} epoch(s) without a better validation " \
                f"{stopping[1]}"
    return text


def train(args: argparse.Namespace) -> int:
    """Run ``loopbp train``; return the exit status."""
    checkpoint, every = args.checkpoint, args.checkpoint_every
    if every is not None and not (checkpoint or args.resume):
        return _fail("--checkpoint-every needs --checkpoint PATH (or --resume PATH)")
    problem = _output_problem(args) or (None if args.resume else _combination_problem(args))
    if problem:
        return _fail(problem)
    try:
        data = _load_data(args.data)
    except (ValueError, TypeError, OSError, ImportError) as err:
        return _fail(str(err))
    n_classes = int(max(data["y_train"].max(), data["y_test"].max())) + 1
    width = data["X_train"].shape[1]
    try:
        if args.resume:
            net, state = load_checkpoint(args.resume)
            conflict = _resume_conflict(args, net, state)
            if conflict:
                return _fail(conflict)
            hyper = state.optimizer.hyperparameters
            optimizer = Optimizer(state.optimizer.name, hyper.get("momentum", 0.9),
                                  tuple(hyper.get("betas", (0.9, 0.999))),
                                  hyper.get("epsilon", 1e-8))
            l2 = state.l2
            try:
                schedule = schedules.from_dict(state.schedule)
            except (KeyError, TypeError, ValueError) as err:
                return _fail(f"the checkpoint's learning-rate schedule cannot be rebuilt here "
                             f"({err}); continue it with loopbp.resume(..., schedule=...)")
            validation_fraction = state.validation_fraction
            early = state.early_stopping
            stopping = None if early is None else (early.patience, early.monitor)
            min_delta = 0.0 if early is None else early.min_delta
            epochs = state.epochs if args.epochs is None else args.epochs
            batch_size = args.batch_size or state.mini_batch_size
            eta = args.eta or state.eta
            checkpoint = checkpoint or args.resume
            every = every or state.checkpoint_every or 1
            done = state.epochs_done
        else:
            sizes = args.sizes or [width, DEFAULT_HIDDEN, n_classes]
            if sizes[0] != width:
                return _fail(f"--sizes: the input layer has {sizes[0]} neurons but the "
                             f"data's examples have {width} values")
            if sizes[-1] < n_classes:
                return _fail(f"--sizes: the output layer has {sizes[-1]} neurons but the "
                             f"labels go up to {n_classes - 1} ({n_classes} classes)")
            names = args.activation or [DEFAULTS["activation"]]
            cost = args.cost or DEFAULTS["cost"]
            net = Network(sizes, activation=names[0] if len(names) == 1 else names,
                          output=args.output or REQUIRED_OUTPUT[cost] or "sigmoid",
                          cost=cost, init=args.init or DEFAULTS["init"],
                          seed=DEFAULTS["seed"] if args.seed is None else args.seed,
                          dtype=args.dtype or DEFAULTS["dtype"])
            hyper = {"momentum": args.momentum,
                     "betas": None if args.betas is None else tuple(args.betas)}
            optimizer = Optimizer(args.optimizer or DEFAULTS["optimizer"],
                                  **{k: v for k, v in hyper.items() if v is not None})
            l2 = DEFAULTS["l2"] if args.l2 is None else args.l2
            schedule = _schedule(args)
            validation_fraction = args.validation_fraction
            stopping = (None if args.early_stopping is None
                        else (args.early_stopping, args.monitor or DEFAULTS["monitor"]))
            min_delta = 0.0
            epochs = DEFAULTS["epochs"] if args.epochs is None else args.epochs
            batch_size = args.batch_size or DEFAULTS["batch_size"]
            eta = args.eta or DEFAULT_ETA[optimizer.name]
            every = every or 1
            done = 0
        name = args.data or "digits"
        resuming = f", resuming after epoch {done} of {args.resume}" if args.resume else ""
        print(f"loopbp {__version__}: training {net.sizes} on {name} "
              f"({len(data['y_train'])} train / {len(data['y_test'])} test), "
              f"{epochs} epochs, mini-batch {batch_size}, eta {eta:g}, {net.dtype.name}"
              f"{resuming}", flush=True)
        print(_describe(net, optimizer, l2, schedule, validation_fraction, stopping),
              flush=True)
        n_train, held = len(data["y_train"]), 0
        if validation_fraction is not None:
            held = math.floor(validation_fraction * n_train + 0.5)
        if not args.quiet:
            compile_kernels(lambda: _training_warm_up(
                net, n_train - held, batch_size, len(data["y_test"]), held, optimizer.name,
                train=epochs > done))
        options = dict(optimizer=optimizer.name, momentum=optimizer.momentum,
                       betas=optimizer.betas, epsilon=optimizer.epsilon, l2=l2,
                       schedule=schedule, validation_fraction=validation_fraction,
                       early_stopping=None if stopping is None else stopping[0],
                       monitor=DEFAULTS["monitor"] if stopping is None else stopping[1],
                       min_delta=min_delta, test_data=(data["X_test"], data["y_test"]),
                       progress=not args.quiet, n_threads=args.threads,
                       checkpoint=checkpoint, checkpoint_every=every,
                       resume_from=args.resume)
        started = time.perf_counter()
        if args.scheduler is not None or args.workers is not None:
            history = _train_on_dask(args, net, data, epochs, batch_size, eta, options)
        else:
            history = net.sgd(data["X_train"], data["y_train"], epochs, batch_size, eta,
                              **options)
        wall = time.perf_counter() - started
    except TrainingDiverged as err:
        print(f"loopbp train: {err}", file=sys.stderr)
        if checkpoint:
            print(f"the last checkpoint is in {checkpoint}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, OSError, ImportError) as err:  # NetworkFileError: ValueError
        return _fail(str(err))
    return _report(args, net, data, history, wall, checkpoint, stopping)


def _train_on_dask(args: argparse.Namespace, net: Network, data: dict[str, np.ndarray],
                   epochs: int, batch_size: int, eta: float, options: dict) -> History:
    """``loopbp.distributed.sgd`` on the scheduler at ``--scheduler``, or on ``--workers`` N.

    A local cluster listens on the loopback interface only and is closed at
    the end of the run, whatever happens.
    """
    try:
        from . import distributed as on_dask
    except ImportError as err:
        raise ImportError(f"--scheduler and --workers need Dask: {err}") from None
    if args.scheduler is not None:
        if not args.quiet:
            print(f"Dask: training on the cluster at {args.scheduler}", flush=True)
        return on_dask.sgd(net, data["X_train"], data["y_train"], epochs, batch_size, eta,
                           client=args.scheduler, **options)
    import distributed

    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                  processes=True, host="127.0.0.1", dashboard_address=":0",
                                  silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        if not args.quiet:
            print(f"Dask: training on a local cluster of {args.workers} worker process(es) "
                  f"at {cluster.scheduler_address}", flush=True)
        return on_dask.sgd(net, data["X_train"], data["y_train"], epochs, batch_size, eta,
                           client=client, **options)


def _report(args: argparse.Namespace, net: Network, data: dict[str, np.ndarray],
            history: History, wall: float, checkpoint: str | None,
            stopping: tuple[int, str] | None) -> int:
    """The result lines of ``loopbp train``, and its files; return the exit status."""
    where = f"in {wall:.2f} s (threading layer: {threading_layer()})"
    kept = history.best_epoch if (stopping is not None and not history.interrupted) else None
    watched = "cost" if stopping is None else stopping[1]
    if history.interrupted:
        print(f"interrupted after {len(history)} epoch(s) {where}")
    elif history.stopped_early:
        patience = "" if stopping is None else f" for {stopping[0]} epoch(s)"
        print(f"stopped early after {len(history)} epoch(s) {where}: no better validation "
              f"{watched}{patience}; kept the parameters of epoch {history.best_epoch}")
    else:
        best = ""
        if kept is not None and history.records and kept != history.records[-1].epoch:
            best = f"; kept the parameters of epoch {kept} (the best validation {watched})"
        print(f"finished {len(history)} epoch(s) {where}{best}")
    measured = [r for r in history.records if r.validation_cost is not None]
    if measured:
        record = next((r for r in measured if r.epoch == kept), measured[-1])
        text = f"validation (epoch {record.epoch}): cost {record.validation_cost:.5f}"
        if record.validation_accuracy is not None:
            text += (f", accuracy {record.validation_correct}/{record.validation_total} = "
                     f"{100 * record.validation_accuracy:.2f}%")
        print(text)
    correct = net.evaluate(data["X_test"], data["y_test"])
    total = len(data["y_test"])
    print(f"test accuracy: {correct}/{total} = {100 * correct / total:.2f}%", flush=True)
    status = 130 if history.interrupted else 0
    try:
        if args.save:
            net.save(args.save)
            print(f"saved network to {args.save}")
        if args.plot:
            if len(history) == 0:
                print("no finished epoch to plot; --plot skipped", file=sys.stderr)
            else:
                from .plot import plot_history

                name = args.data or "digits"
                hidden = "/".join(dict.fromkeys(net.activations[:-1])) or "no hidden"
                plot_history(history, args.plot,
                             title=f"{net.sizes} {hidden} → {net.activations[-1]}, "
                                   f"{net.cost}, on {name}")
                print(f"learning curves in {args.plot}")
    except (OSError, ValueError) as err:
        print(f"loopbp train: error: {err}", file=sys.stderr)
        status = status or 2
    if history.interrupted and checkpoint:
        again = f" --data {args.data}" if args.data else ""
        print(f"checkpoint in {checkpoint}; continue with: loopbp train --resume "
              f"{checkpoint}{again}")
    return status


# --- loopbp evaluate and predict -------------------------------------------------------


def _load_network(path: str, command: str) -> Network | int:
    """The network in ``path``, or the exit status after reporting why not."""
    try:
        return Network.load(path)
    except (ValueError, OSError) as err:  # NetworkFileError is a ValueError
        return _fail(str(err), command)


def evaluate(args: argparse.Namespace) -> int:
    """Run ``loopbp evaluate``; return the exit status."""
    net = _load_network(args.model, "evaluate")
    if isinstance(net, int):
        return net
    try:
        data = _load_data(args.data)
    except (ValueError, TypeError, OSError, ImportError) as err:
        return _fail(str(err), "evaluate")
    X, y = data["X_test"], data["y_test"]
    name = args.data or "digits"
    if X.shape[1] != net.sizes[0]:
        return _fail(f"{args.model} takes {net.sizes[0]} inputs but the examples of {name} "
                     f"have {X.shape[1]} values", "evaluate")
    if y.max() >= net.sizes[-1]:
        return _fail(f"{args.model} has {net.sizes[-1]} outputs but the labels of {name} go "
                     f"up to {y.max()}", "evaluate")
    print(f"loopbp {__version__}: evaluating {args.model}, {net!r}, on the {len(y)} test "
          f"examples of {name}", flush=True)
    compile_kernels(lambda: _feedforward_warm_up(net, [len(y)], cost=True))
    try:
        cost = net.mean_cost(X, y)
        correct = net.evaluate(X, y)
    except (ValueError, TypeError) as err:
        return _fail(str(err), "evaluate")
    print(f"mean cost ({net.cost}): {cost:.6g}")
    print(f"test accuracy: {correct}/{len(y)} = {100 * correct / len(y):.2f}%")
    return 0


def _read_inputs(path: str, width: int) -> np.ndarray:
    """The rows of an ``.npy`` or ``.csv`` file as a 2-D float64 array (``ValueError`` if bad)."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise ValueError(f"INPUT must be a .npy or .csv file, got {path!r}")
    if not os.path.isfile(path):
        raise ValueError(f"no input file at {path!r}")
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(f"cannot read {path!r} (not an intact .npy array of numbers): "
                             f"{err}") from err
        if array.dtype.kind not in "biuf":
            raise ValueError(f"{path!r} holds {array.dtype} values, not numbers")
        if array.ndim == 1:
            array = array[np.newaxis, :]
        if array.ndim != 2:
            raise ValueError(f"{path!r} holds a {array.ndim}-D array of shape {array.shape}; "
                             "it must be 2-D (one example per row) or 1-D (one example)")
        if array.shape[0] == 0:
            raise ValueError(f"{path!r} holds no rows")
        if array.shape[1] != width:
            raise ValueError(f"{path!r} has {array.shape[1]} values per row but the network "
                             f"takes {width} inputs")
        array = array.astype(np.float64)
    else:
        array = _read_csv(path, width)
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if bad.size:
        raise ValueError(f"{path!r} row {bad[0] + 1} contains NaN or infinity")
    return array


def _read_csv(path: str, width: int) -> np.ndarray:
    rows: list[list[float]] = []
    try:
        with open(path, newline="", encoding="utf-8") as file:
            for line, fields in enumerate(csv.reader(file), start=1):
                if not fields or all(not f.strip() for f in fields):
                    continue  # blank line
                try:
                    values = [float(f) for f in fields]
                except ValueError:
                    if not rows and line == 1:
                        continue  # a header line
                    bad = next(f for f in fields if not _is_number(f))
                    raise ValueError(f"{path!r} line {line}: {bad.strip()!r} is not a "
                                     "number") from None
                if len(values) != width:
                    raise ValueError(f"{path!r} line {line} has {len(values)} values but the "
                                     f"network takes {width} inputs")
                rows.append(values)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"cannot read {path!r} as CSV: {err}") from err
    if not rows:
        raise ValueError(f"{path!r} holds no rows of numbers")
    return np.array(rows, dtype=np.float64)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def predict(args: argparse.Namespace) -> int:
    """Run ``loopbp predict``; return the exit status."""
    problem = check.folder_problem(args.output, "--output")
    if problem:
        return _fail(problem, "predict")
    net = _load_network(args.model, "predict")
    if isinstance(net, int):
        return net
    try:
        X = _read_inputs(args.input, net.sizes[0])
        compile_kernels(lambda: _feedforward_warm_up(net, [X.shape[0]]))
        out = net.feedforward(X)
    except (ValueError, TypeError) as err:
        return _fail(str(err), "predict")
    if args.proba:
        lines = [",".join(str(v) for v in row) for row in out]
    else:
        lines = [str(c) for c in np.argmax(out, axis=1)]
    text = "\n".join(lines) + "\n"
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as file:
                file.write(text)
        except OSError as err:
            return _fail(f"cannot write {args.output!r}: {err}", "predict")
        print(f"wrote {len(lines)} prediction(s) to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


# --- loopbp compile --------------------------------------------------------------------


def compile_command(args: argparse.Namespace) -> int:
    """Run ``loopbp compile``; return the exit status."""
    dtypes = ", ".join(dict.fromkeys(args.dtype))
    print(f"loopbp {__version__}: kernels for {dtypes}", flush=True)
    left_out: list[str] = []
    seconds = compile_kernels(lambda: left_out.extend(precompile.precompile(args.dtype)),
                              sys.stdout)
    if seconds is None:
        print("all were already in the cache", flush=True)
    for part in left_out:
        print(f"left out: {part}", flush=True)
    return 0


# --- entry point -----------------------------------------------------------------------

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": train, "evaluate": evaluate, "predict": predict, "compile": compile_command}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``loopbp`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv or ["train"])
    command = COMMANDS.get(args.command)
    if command is None:
        parser.print_help()
        return 2
    try:
        return command(args)
    except KeyboardInterrupt:  # Ctrl-C outside training (loading data, compiling)
        print(f"loopbp {args.command}: interrupted", file=sys.stderr)
        return 130
    except MemoryError as err:  # a network (--sizes) or data too large for this machine
        return _fail(f"out of memory: {err}", args.command)
