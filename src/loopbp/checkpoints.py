"""Checkpoints: the whole state of a training run, in one network file.

A checkpoint is a loopbp network file (:mod:`loopbp.files`) with
``meta["kind"] == "checkpoint"``, so :meth:`Network.load` also reads the
network out of one.  Besides ``w0, w1, …, b0, b1, …`` and the generator state
it holds, under ``meta["state"]["training"]``:

=====================  =====================================================
key                    content
=====================  =====================================================
``version``            :data:`CHECKPOINT_VERSION` (version 1 files still load)
``epochs_done``        full epochs finished
``epochs``             the epoch count the run was asked for
``mini_batch_size``    as given to :func:`loopbp.sgd`
``eta``                the base learning rate η₀
``checkpoint_every``   the interval the run used
``optimizer``          ``{"name", "hyperparameters", "arrays", "step"}``;
                       each listed array is the member ``optimizer.<name>``
                       (``v0, vb0, …`` velocities or second moments, ``m0,
                       mb0, …`` first moments; plain SGD has none) and
                       ``step`` counts the updates made (Adam's t)
``l2``                 λ of the L2 term
``schedule``           :meth:`loopbp.schedules.Schedule.to_dict`
``validation``         ``None``, or ``{"fraction": f}`` with the held-out
                       rows in the member ``validation.index``
``early_stopping``     ``None`` or :meth:`EarlyStopping.to_dict`, with the
                       kept parameters in the members ``best.w0, …``
``history``            :meth:`History.to_dict` of the epochs so far
``progress``           ``None`` at an epoch boundary; after a Ctrl-C inside
                       an epoch: ``{"epoch", "next_batch", "cost_sum",
                       "seconds"}``, with that epoch's row order in the member
                       ``progress.order``
``data``               fingerprint of the training data (shape, dtype and a
                       BLAKE2 hash), so a run is not resumed on other data
=====================  =====================================================
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _validation as check
from . import files, schedules
from .early_stopping import EarlyStopping
from .history import History
from .optimizers import OPTIMIZERS, Optimizer, OptimizerState, check_state

if TYPE_CHECKING:
    from .network import Network

#: Version of the ``training`` section of a checkpoint's metadata.
CHECKPOINT_VERSION = 2
#: Largest optimizer step count a checkpoint may hold (the kernels keep it in an int64).
MAX_STEP = 2**63 - 1


@dataclass
class EpochProgress:
    """Where an epoch stopped on Ctrl-C: resuming continues at ``next_batch``."""

    epoch: int  #: the 1-based epoch under way
    next_batch: int  #: index of the first mini-batch not yet run
    cost_sum: float  #: summed cost of the examples seen so far in this epoch
    seconds: float  #: training wall time spent in this epoch so far
    order: np.ndarray  #: the epoch's row order (drawn from the generator at its start)


@dataclass
class Checkpoint:
    """The training state a checkpoint holds besides the network (see :func:`load_checkpoint`)."""

    epochs_done: int  #: full epochs finished
    epochs: int  #: epochs the run was asked for in total
    mini_batch_size: int
    eta: float  #: the base learning rate η₀
    checkpoint_every: int | None
    history: History
    optimizer: OptimizerState
    progress: EpochProgress | None = None  #: set when Ctrl-C stopped inside an epoch
    data: dict[str, Any] | None = None  #: fingerprint of the training data
    l2: float = 0.0
    schedule: dict[str, Any] = field(
        default_factory=lambda: {"name": "constant", "params": {}, "state": {}})
    #: rows of the training data held out for validation (``validation_fraction``)
    validation_index: np.ndarray | None = None
    validation_fraction: float | None = None
    early_stopping: EarlyStopping | None = None


def fingerprint(X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    """Shapes, dtype and a hash of the (converted) training data."""
    digest = hashlib.blake2b(digest_size=16)
    for array in (X, Y):
        digest.update(repr((array.shape, array.dtype.str)).encode())
        digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    return {"X_shape": list(X.shape), "Y_shape": list(Y.shape), "dtype": X.dtype.name,
            "blake2b": digest.hexdigest()}


def save_checkpoint(path: str | os.PathLike, net: Network, state: Checkpoint) -> None:
    """Write ``net`` and the training ``state`` to ``path`` atomically.

    :func:`loopbp.sgd` calls this; it is public for tools that build
    checkpoints of their own.

    Parameters
    ----------
    path : path
        The checkpoint file; replaced atomically (:func:`loopbp.files.write_atomic`).
    net : Network
        Parameters and generator state to store.
    state : Checkpoint
        The training state (layout in the module notes).
    """
    meta, arrays = net._file_contents()
    meta["kind"] = "checkpoint"
    progress = None
    if state.progress is not None:
        p = state.progress
        progress = {"epoch": p.epoch, "next_batch": p.next_batch,
                    "cost_sum": float(p.cost_sum), "seconds": float(p.seconds)}
        arrays["progress.order"] = np.ascontiguousarray(p.order, dtype=np.int64)
    for name, array in state.optimizer.arrays.items():
        arrays[f"optimizer.{name}"] = np.ascontiguousarray(array)
    validation = None
    if state.validation_index is not None:
        validation = {"fraction": state.validation_fraction}
        arrays["validation.index"] = np.ascontiguousarray(state.validation_index, np.int64)
    stopping = None
    if state.early_stopping is not None:
        stopping = state.early_stopping.to_dict()
        arrays.update(state.early_stopping.arrays())
    meta["state"] = dict(meta["state"], training={
        "version": CHECKPOINT_VERSION,
        "epochs_done": state.epochs_done,
        "epochs": state.epochs,
        "mini_batch_size": state.mini_batch_size,
        "eta": state.eta,
        "checkpoint_every": state.checkpoint_every,
        "optimizer": {"name": state.optimizer.name,
                      "hyperparameters": state.optimizer.hyperparameters,
                      "arrays": sorted(state.optimizer.arrays),
                      "step": int(state.optimizer.step)},
        "l2": state.l2,
        "schedule": state.schedule,
        "validation": validation,
        "early_stopping": stopping,
        "history": state.history.to_dict(),
        "progress": progress,
        "data": state.data,
    })
    files.write_atomic(path, meta, arrays)


def load_checkpoint(path: str | os.PathLike) -> tuple[Network, Checkpoint]:
    """Read a checkpoint written by ``sgd(..., checkpoint=path)``.

    Returns
    -------
    net : Network
        The network with its parameters and generator state at the checkpoint.
    state : Checkpoint
        Epochs done, hyperparameters, optimizer state, schedule, validation
        split, early-stopping state, history and, after a Ctrl-C inside an
        epoch, where that epoch stopped.

    Raises
    ------
    loopbp.NetworkFileError
        When the file is not an intact checkpoint (a plain network file, a
        damaged one, a newer checkpoint version or an unknown optimizer).
    FileNotFoundError
        When there is no file at ``path``.
    """
    from .network import Network

    meta, arrays = files.read(path)
    where = repr(str(path))
    if meta.get("kind") != "checkpoint":
        raise files.NetworkFileError(
            f"{where} is a loopbp {meta.get('kind', 'network')} file, not a checkpoint; "
            "load it with Network.load")
    net = Network._from_file_contents(meta, arrays, path)
    try:
        state = _checkpoint_from_meta(meta["state"]["training"], arrays, net)
    except files.NetworkFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise files.NetworkFileError(f"{where} has damaged training state: {err!r}") from err
    return net, state


def _checkpoint_from_meta(training: dict, arrays: dict[str, np.ndarray],
                          net: Network) -> Checkpoint:
    def integer(value: Any, name: str, minimum: int) -> int:
        return check.check_int(value, f"training.{name}", minimum=minimum)

    version = training["version"]
    if not isinstance(version, int) or isinstance(version, bool) or not (
            1 <= version <= CHECKPOINT_VERSION):
        raise files.NetworkFileError(
            f"checkpoint version {version!r}; this loopbp reads versions 1 to "
            f"{CHECKPOINT_VERSION}")
    optimizer = training["optimizer"]
    name = optimizer["name"]
    if name not in OPTIMIZERS:
        raise files.NetworkFileError(
            f"the checkpoint uses the optimizer {name!r}, which this loopbp does not know")
    hyperparameters = _check_hyperparameters(name, optimizer["hyperparameters"])
    optimizer_arrays = {a: arrays[f"optimizer.{a}"] for a in optimizer["arrays"]}
    step = integer(optimizer.get("step", 0), "optimizer.step", 0)
    if step > MAX_STEP:  # the kernels count steps in an int64
        raise ValueError(f"training.optimizer.step must be at most 2**63 - 1, got {step}")
    state = OptimizerState(name, hyperparameters, optimizer_arrays, step)
    check_state(state, net.weights)  # shapes, dtypes, finite
    if name == "adam":
        # v holds running means of squared gradients: a negative entry makes √v̂ NaN
        for key, array in optimizer_arrays.items():
            if key.startswith("v") and (array < 0).any():
                raise ValueError(f"optimizer state {key} (Adam's second moment) must be "
                                 ">= 0, got a negative entry")
    history = History.from_dict(training["history"])
    epochs_done = integer(training["epochs_done"], "epochs_done", 0)
    if len(history) != epochs_done:
        raise ValueError("history and epochs_done disagree")
    progress = training["progress"]
    if progress is not None:
        order = arrays["progress.order"]
        n_rows = order.shape[0] if order.ndim == 1 else -1
        if (order.dtype != np.int64 or order.ndim != 1
                or not np.array_equal(np.sort(order), np.arange(n_rows))):
            raise ValueError("progress.order is not a permutation of the rows")
        progress = EpochProgress(
            epoch=integer(progress["epoch"], "progress.epoch", epochs_done + 1),
            next_batch=integer(progress["next_batch"], "progress.next_batch", 0),
            cost_sum=check.check_finite_float(progress["cost_sum"], "progress.cost_sum"),
            seconds=check.check_non_negative_float(progress["seconds"], "progress.seconds"),
            order=np.ascontiguousarray(order))
        if progress.epoch != epochs_done + 1 or not math.isfinite(progress.cost_sum):
            raise ValueError("progress does not follow the finished epochs")
    every = training["checkpoint_every"]
    data = training["data"]
    n_rows = None if data is None else _check_fingerprint(data)
    checkpoint = Checkpoint(
        epochs_done=epochs_done,
        epochs=integer(training["epochs"], "epochs", 0),
        mini_batch_size=integer(training["mini_batch_size"], "mini_batch_size", 1),
        eta=check.check_positive_float(training["eta"], "training.eta"),
        checkpoint_every=None if every is None else integer(every, "checkpoint_every", 1),
        history=history,
        optimizer=state,
        progress=progress,
        data=data)
    if version >= 2:
        checkpoint.l2 = check.check_non_negative_float(training["l2"], "training.l2")
        schedule = training["schedule"]
        plan = schedules.check_dict(schedule)  # the CLI reads params and state as mappings
        if isinstance(plan, schedules.Cosine) and plan.eta_min >= checkpoint.eta:
            raise ValueError(f"schedule.params.eta_min ({plan.eta_min:g}) must be below "
                             f"training.eta ({checkpoint.eta:g})")
        checkpoint.schedule = schedule
        validation = training["validation"]
        if validation is not None:
            if not isinstance(validation, dict) or set(validation) != {"fraction"}:
                raise TypeError(f"validation must be null or {{'fraction': f}}, "
                                f"got {validation!r}")
            fraction = check.check_finite_float(validation["fraction"],
                                                "validation.fraction")
            if not 0 < fraction < 1:
                raise ValueError(f"validation.fraction must be in (0, 1), got {fraction}")
            index = arrays["validation.index"]
            check_validation_index(index, n_rows)
            checkpoint.validation_index = np.ascontiguousarray(index)
            checkpoint.validation_fraction = fraction
        if progress is not None and n_rows is not None:
            # the epoch's order runs over the rows left for training
            held = 0 if checkpoint.validation_index is None else checkpoint.validation_index.size
            if progress.order.size != n_rows - held:
                raise ValueError(f"progress.order has {progress.order.size} rows; the data "
                                 f"leaves {n_rows - held} for training")
        stopping = training["early_stopping"]
        if stopping is not None:
            rule = EarlyStopping.from_dict(stopping, arrays, net.weights, net.biases)
            if rule.best_epoch is not None and rule.best_epoch > epochs_done:
                raise ValueError(f"early_stopping.best_epoch ({rule.best_epoch}) is after the "
                                 f"last finished epoch ({epochs_done})")
            checkpoint.early_stopping = rule
    return checkpoint


def check_validation_index(index: np.ndarray, n_rows: int | None) -> None:
    """Raise ``ValueError`` unless ``index`` holds rows to hold out of ``n_rows`` data rows.

    The rows must be increasing row numbers in ``0 … n_rows-1`` and leave at
    least one row for training.  With ``n_rows`` None (a checkpoint without a
    data fingerprint) only what needs no row count is checked; resuming calls
    this again with the data's row count.
    """
    if index.dtype != np.int64 or index.ndim != 1 or index.size == 0:
        raise ValueError("validation.index must be a non-empty 1-D int64 array of row numbers")
    if index[0] < 0 or np.any(np.diff(index) <= 0):
        raise ValueError("validation.index must hold increasing row numbers >= 0")
    if n_rows is not None and (index[-1] >= n_rows or index.size >= n_rows):
        raise ValueError(f"validation.index must hold rows in 0..{n_rows - 1} and leave at "
                         f"least one of the {n_rows} rows for training; it holds "
                         f"{index.size} rows up to {index[-1]}")


def resumed_validation_rows(checkpoint: Checkpoint, n_rows: int) -> np.ndarray:
    """The rows ``checkpoint`` held out, checked against the ``n_rows`` rows a resumed run
    is given (at load they could only be checked against the data's fingerprint)."""
    try:
        check_validation_index(checkpoint.validation_index, n_rows)
    except ValueError as err:
        raise ValueError(f"the checkpoint's validation rows do not fit the data: {err}") from None
    return checkpoint.validation_index


def _check_fingerprint(data: Any) -> int:
    """Check the data fingerprint's layout (see :func:`fingerprint`); return its row count."""
    if not isinstance(data, dict) or set(data) != {"X_shape", "Y_shape", "dtype", "blake2b"}:
        raise TypeError(f"data must be a fingerprint with X_shape, Y_shape, dtype and "
                        f"blake2b, got {data!r}")
    for key in ("X_shape", "Y_shape"):
        shape = data[key]
        if not isinstance(shape, list) or len(shape) != 2:
            raise ValueError(f"data.{key} must be a list of two sizes, got {shape!r}")
        for extent in shape:
            check.check_int(extent, f"data.{key}", minimum=1)
    if data["X_shape"][0] != data["Y_shape"][0]:
        raise ValueError("data.X_shape and data.Y_shape must have the same row count")
    if data["dtype"] not in files.DTYPE_NAMES or not isinstance(data["blake2b"], str):
        raise ValueError("data.dtype must be 'float32' or 'float64' and data.blake2b a string")
    return data["X_shape"][0]


def _check_hyperparameters(name: str, hyperparameters: Any) -> dict[str, Any]:
    """The optimizer's hyperparameters, each checked as :class:`Optimizer` checks it."""
    allowed = {"eta", *Optimizer(name).hyperparameters()}
    if not isinstance(hyperparameters, dict) or not set(hyperparameters) <= allowed:
        raise TypeError(f"optimizer.hyperparameters of {name!r} must be a mapping with keys "
                        f"among {sorted(allowed)}, got {hyperparameters!r}")
    if "eta" in hyperparameters:
        check.check_positive_float(hyperparameters["eta"], "optimizer.hyperparameters.eta")
    try:
        Optimizer(name, **{k: v for k, v in hyperparameters.items() if k != "eta"})
    except (TypeError, ValueError) as err:
        raise type(err)(f"optimizer.hyperparameters: {err}") from err
    return hyperparameters
