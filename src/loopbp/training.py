"""Mini-batch gradient descent over a :class:`~loopbp.Network`, and what it needs around it.

An epoch shuffles the training rows with the network's generator, cuts them
into mini-batches and, for each, runs backprop and one optimizer update
(:mod:`loopbp.optimizers`: plain SGD, momentum, Nesterov or Adam, with an
optional L2 term).  The mini-batch loop itself runs in compiled code
(:func:`loopbp.kernels.train_mini_batches`); Python only calls it a few times
per epoch (each call a *stretch* of mini-batches lasting about
:data:`CALL_SECONDS`), and between epochs it sets the learning rate
(:mod:`loopbp.schedules`), measures validation and test data, and decides on
early stopping (:mod:`loopbp.early_stopping`):

* **Ctrl-C** stops training at the next stretch boundary, that is between two
  mini-batches, so the parameters are never half updated.  While :func:`sgd`
  runs in the main thread it handles the first SIGINT itself: it notes the
  request, finishes the running stretch and returns the history so far with
  ``interrupted = True`` (and writes a checkpoint, when asked to, from which
  :func:`resume` continues exactly).  A second Ctrl-C raises
  ``KeyboardInterrupt`` at once, which :func:`sgd` still catches.
* **Divergence**: if a stretch's cost or the parameters stop being finite, the
  parameters and the optimizer's state go back to their values before that
  stretch and :class:`TrainingDiverged` names the epoch.
* **Checkpoints**: ``sgd(..., checkpoint=PATH, checkpoint_every=N)`` writes the
  whole training state (:mod:`loopbp.checkpoints`) every ``N`` epochs, after
  the last epoch and on Ctrl-C; :func:`resume` (or ``sgd(..., resume_from=PATH)``)
  continues from it with results bitwise identical to a run never stopped.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from . import _validation as check
from . import kernels
from ._jit import get_num_threads, parallel_guard, set_num_threads
from .checkpoints import (
    CHECKPOINT_VERSION,
    Checkpoint,
    EpochProgress,
    fingerprint,
    load_checkpoint,
    resumed_validation_rows,
    save_checkpoint,
)
from .early_stopping import MONITORS, EarlyStopping
from .history import EpochRecord, History
from .network import (
    borrow,
    flops_per_batch,
    give_back,
    kernels_for,
    typed_list,
    weights_bytes,
    workspace,
    workspace_bytes,
)
from .optimizers import (
    OPTIMIZERS,
    STATE_ARRAYS,
    Optimizer,
    OptimizerState,
    initial_state,
)
from .schedules import Schedule, as_schedule
from .schedules import from_dict as schedule_from_dict

if TYPE_CHECKING:
    from .network import Network

__all__ = [
    "CHECKPOINT_VERSION", "OPTIMIZERS", "Checkpoint", "EpochProgress", "EpochRecord", "History",
    "OptimizerState", "TrainingDiverged", "load_checkpoint", "resume", "save_checkpoint", "sgd",
]

#: Target wall time of one compiled call, in seconds (progress and Ctrl-C granularity).
CALL_SECONDS = 0.1
#: Assumed speed for sizing the first call, in floating-point operations per second.
ASSUMED_FLOPS = 5e9


class TrainingDiverged(FloatingPointError):  # noqa: N818 (a public name already in use)
    """The cost or the parameters became NaN or infinite during training."""


@dataclass
class Settings:
    """Everything a run is asked to do besides its data, validated."""

    epochs: int
    mini_batch_size: int
    eta: float
    optimizer: Optimizer
    l2: float
    schedule: Schedule
    early_stopping: int | None
    monitor: str
    min_delta: float
    validation_fraction: float | None
    progress: bool
    n_threads: int | None
    checkpoint: str | os.PathLike | None
    checkpoint_every: int


def sum_of_squares(weights: Any) -> float:
    """``Σ w²`` over every entry of the weight matrices (for the L2 term of a reported cost).

    NumPy's own summing loop (``einsum``), not a BLAS dot product: a BLAS call
    wakes OpenBLAS's threads, which then spin for a while on the cores the
    next kernels are about to use.
    """
    return sum(float(np.einsum("jk,jk->", w, w)) for w in weights)


def _settings(epochs: Any, mini_batch_size: Any, eta: Any, *, optimizer: Any, momentum: Any,
              betas: Any, epsilon: Any, l2: Any, schedule: Any, early_stopping: Any,
              monitor: Any, min_delta: Any, validation_fraction: Any, progress: Any,
              n_threads: Any, checkpoint: Any, checkpoint_every: Any) -> Settings:
    if early_stopping is not None:
        early_stopping = check.check_int(early_stopping, "early_stopping", minimum=1)
    if validation_fraction is not None:
        if isinstance(validation_fraction, bool) or not isinstance(
                validation_fraction, int | float | np.floating | np.integer):
            raise TypeError(f"validation_fraction must be a number in (0, 1), got "
                            f"{type(validation_fraction).__name__} {validation_fraction!r}")
        validation_fraction = float(validation_fraction)
        if not 0 < validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    if n_threads is not None:
        n_threads = check.check_int(n_threads, "n_threads", minimum=1)
    if checkpoint is not None and not isinstance(checkpoint, str | os.PathLike):
        raise TypeError(f"checkpoint must be a path, got {type(checkpoint).__name__}")
    problem = check.folder_problem(checkpoint, "checkpoint")
    if problem:  # refused now, not after the first epochs have changed the network
        raise ValueError(problem)
    return Settings(
        epochs=check.check_int(epochs, "epochs", minimum=0),
        mini_batch_size=check.check_int(mini_batch_size, "mini_batch_size", minimum=1),
        eta=check.check_positive_float(eta, "eta"),
        optimizer=Optimizer(optimizer, momentum, betas, epsilon),
        l2=check.check_non_negative_float(l2, "l2"),
        schedule=as_schedule(schedule),
        early_stopping=early_stopping,
        monitor=check.check_choice(monitor, "monitor", MONITORS),
        min_delta=check.check_non_negative_float(min_delta, "min_delta"),
        validation_fraction=validation_fraction,
        progress=bool(progress),
        n_threads=n_threads,
        checkpoint=checkpoint,
        checkpoint_every=check.check_int(checkpoint_every, "checkpoint_every", minimum=1))


# --- public entry points -----------------------------------------------------------


def sgd(net: Network, X: Any, Y: Any, epochs: int, mini_batch_size: int, eta: float, *,
        optimizer: str = "sgd", momentum: float = 0.9,
        betas: tuple[float, float] = (0.9, 0.999), epsilon: float = 1e-8, l2: float = 0.0,
        schedule: str | Schedule | Any = "constant",
        validation_data: tuple[Any, Any] | None = None,
        validation_fraction: float | None = None, early_stopping: int | None = None,
        monitor: str = "cost", min_delta: float = 0.0,
        test_data: tuple[Any, Any] | None = None, progress: bool = True,
        n_threads: int | None = None, checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int = 1, resume_from: str | os.PathLike | None = None) -> History:
    """Train ``net`` in place with mini-batch gradient descent.

    Parameters
    ----------
    net : Network
    X : array_like, shape (n, sizes[0])
        Training inputs, one example per row.
    Y : array_like, shape (n, sizes[-1]) or (n,)
        Targets, or integer class labels (one-hot encoded here).
    epochs : int
        Passes over the data (0 trains nothing).  With ``resume_from`` this is
        the total for the whole run, the epochs already done included: a run
        checkpointed after 2 epochs and resumed with ``epochs=4`` trains 2 more.
    mini_batch_size : int
        Examples per gradient step; the last batch of an epoch may be smaller,
        and a size above ``n`` means one batch of all rows.
    eta : float
        Learning rate η > 0 (the base rate η₀ of a ``schedule``).
    optimizer : {"sgd", "momentum", "nesterov", "adam"}
        The update rule (:mod:`loopbp.optimizers`).
    momentum : float
        μ in [0, 1) for ``momentum`` and ``nesterov``.
    betas : (float, float)
        Adam's β1 and β2, each in [0, 1).
    epsilon : float
        Adam's ε > 0.
    l2 : float
        λ >= 0 of L2 regularization: the cost becomes ``C_0 + (λ/2n) Σ w²``
        with ``n`` the number of training rows; biases are not decayed.
    schedule : str, Schedule or callable
        ``"constant"``, ``"step"``, ``"cosine"``, ``"plateau"``, an instance
        from :mod:`loopbp.schedules` (to set its parameters), or a function
        ``epoch -> eta`` of the 0-based epoch index.
    validation_data : (X_val, Y_val), optional
        Measured after every epoch (cost, and accuracy when ``Y_val`` holds
        labels or one-hot rows); drives early stopping and ``plateau``.
    validation_fraction : float in (0, 1), optional
        Instead of ``validation_data``: hold out this fraction of the training
        rows, drawn with the network's generator and stratified by class when
        ``Y`` holds labels or one-hot rows.
    early_stopping : int, optional
        Stop after this many epochs in a row without improvement of the
        validation ``monitor``, and give the network the parameters of its
        best epoch.  Needs validation data.
    monitor : {"cost", "accuracy"}
        What early stopping watches: the validation cost (lower is better) or
        the validation accuracy (higher is better).
    min_delta : float
        The smallest change of ``monitor`` that counts as an improvement.
    test_data : (X_test, y_test), optional
        Evaluated after every epoch; labels as in :meth:`Network.evaluate`.
    progress : bool
        Show a progress bar and a line per epoch.
    n_threads : int, optional
        Threads for the kernels during this call (default: current setting).
    checkpoint : path, optional
        Write a checkpoint here (atomically) every ``checkpoint_every`` epochs,
        after the last epoch, and when Ctrl-C stops training.
    checkpoint_every : int
        Epochs between checkpoints (default 1).
    resume_from : path, optional
        A checkpoint written by an earlier run: ``net`` (which must have the
        same sizes, activations, cost and dtype) takes its parameters and
        generator state, and training continues where that run stopped, on
        the same ``X``, ``Y``, with the optimizer's state, the schedule's
        state, the held-out rows and the early-stopping record of the
        checkpoint.  The *settings* are this call's arguments (the optimizer
        and schedule must be of the checkpoint's kind, validation and early
        stopping used as in its run); with the same settings the parameters
        end up bitwise identical to those of a run that was never stopped,
        while another ``eta``, ``l2`` or momentum continues the run with
        those.  :func:`resume` takes every setting from the checkpoint.

    Returns
    -------
    History
        One :class:`EpochRecord` per finished epoch (with ``resume_from``, the
        checkpoint's records first); ``interrupted`` is True after Ctrl-C,
        ``stopped_early`` after early stopping.

    Raises
    ------
    TrainingDiverged
        When the cost or the parameters become NaN or infinite; the parameters
        are left as they were before the failing stretch of mini-batches.
    ValueError, TypeError
        For invalid arguments, or a checkpoint that does not fit ``net``, the
        data or the settings (:class:`loopbp.NetworkFileError` for a damaged file).
    """
    settings = _settings(epochs, mini_batch_size, eta, optimizer=optimizer, momentum=momentum,
                         betas=betas, epsilon=epsilon, l2=l2, schedule=schedule,
                         early_stopping=early_stopping, monitor=monitor, min_delta=min_delta,
                         validation_fraction=validation_fraction, progress=progress,
                         n_threads=n_threads, checkpoint=checkpoint,
                         checkpoint_every=checkpoint_every)
    start = None
    if resume_from is not None:
        loaded_net, start = load_checkpoint(resume_from)
        _check_resumable(start, settings, resume_from)
        _adopt(net, loaded_net, resume_from)
    return _train(net, X, Y, settings, validation_data=validation_data, test_data=test_data,
                  start=start)


def resume(path: str | os.PathLike, X: Any, Y: Any, epochs: int | None = None, *,
           validation_data: tuple[Any, Any] | None = None,
           test_data: tuple[Any, Any] | None = None, schedule: Any = None,
           progress: bool = True, n_threads: int | None = None,
           checkpoint: str | os.PathLike | None = None,
           checkpoint_every: int | None = None) -> tuple[Network, History]:
    """Continue the training run saved in the checkpoint ``path``.

    The network, generator state, history, mini-batch size, learning rate,
    optimizer and its state, L2 term, schedule, held-out rows and early
    stopping all come from the checkpoint; ``X`` and ``Y`` must be the
    training data of the original run (a fingerprint in the checkpoint checks
    this).

    Parameters
    ----------
    path : path
        A checkpoint written by ``sgd(..., checkpoint=...)``.
    X, Y : array_like
        The original training data.
    epochs : int, optional
        Total epochs of the run, the ones done included (default: the count
        the original run was asked for).
    validation_data, test_data, progress, n_threads
        As for :func:`sgd` (validation data given to the original run must be
        given again: checkpoints do not store data).
    schedule : callable, optional
        The original run's schedule function, when it used one.
    checkpoint : path, optional
        Where to keep writing checkpoints (default: ``path`` itself).
    checkpoint_every : int, optional
        Epochs between checkpoints (default: the original run's interval).

    Returns
    -------
    net : Network
        The trained network.
    history : History
        The records of the whole run, the checkpoint's included.
    """
    net, state = load_checkpoint(path)
    hyper = state.optimizer.hyperparameters
    stopping = state.early_stopping
    try:
        plan = schedule_from_dict(state.schedule, schedule)
    except (KeyError, TypeError) as err:
        raise ValueError(f"the checkpoint's schedule cannot be rebuilt: {err!r}") from err
    settings = _settings(
        state.epochs if epochs is None else epochs, state.mini_batch_size, state.eta,
        optimizer=state.optimizer.name, momentum=hyper.get("momentum", 0.9),
        betas=tuple(hyper.get("betas", (0.9, 0.999))), epsilon=hyper.get("epsilon", 1e-8),
        l2=state.l2, schedule=plan,
        early_stopping=None if stopping is None else stopping.patience,
        monitor="cost" if stopping is None else stopping.monitor,
        min_delta=0.0 if stopping is None else stopping.min_delta,
        validation_fraction=state.validation_fraction, progress=progress,
        n_threads=n_threads, checkpoint=path if checkpoint is None else checkpoint,
        checkpoint_every=(checkpoint_every if checkpoint_every is not None
                          else (state.checkpoint_every or 1)))
    history = _train(net, X, Y, settings, validation_data=validation_data,
                     test_data=test_data, start=state)
    return net, history


# --- the run -------------------------------------------------------------------------


@dataclass
class _Evaluation:
    """Data measured after every epoch: inputs, targets and (for accuracy) labels."""

    X: np.ndarray
    Y: np.ndarray
    labels: np.ndarray | None

    def measure(self, net: Network) -> tuple[float, int | None]:
        """Mean cost and, with labels, the number of rows classified correctly."""
        out = net.feedforward(self.X)
        cost = float(kernels.batch_cost(out, self.Y, net.cost_code, np.empty(0, net.dtype)))
        if self.labels is None:
            return cost, None
        return cost, int(np.count_nonzero(np.argmax(out, axis=1) == self.labels))


def _labels_of(Y_given: Any, targets: np.ndarray) -> np.ndarray | None:
    """Class labels behind ``targets``: given as labels, or one-hot rows; None otherwise."""
    if np.ndim(Y_given) == 1:
        return np.argmax(targets, axis=1)
    one_hot = np.all((targets == 0) | (targets == 1), axis=1) & (targets.sum(axis=1) == 1)
    return np.argmax(targets, axis=1) if one_hot.all() else None


def holdout_rows(labels: np.ndarray | None, n: int, fraction: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of the rows held out for validation.

    With labels, each class gives ``round(fraction · its count)`` of its rows
    (a stratified split); without, ``round(fraction · n)`` rows are drawn.
    """
    if labels is None:
        groups = [np.arange(n)]
    else:
        groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    held = [rng.permutation(rows)[:math.floor(fraction * rows.size + 0.5)] for rows in groups]
    index = np.sort(np.concatenate(held)).astype(np.int64)
    if not 0 < index.size < n:
        raise ValueError(
            f"validation_fraction={fraction:g} holds out {index.size} of {n} training rows; "
            "choose a fraction that leaves rows on both sides")
    return index


def _train(net: Network, X: Any, Y: Any, settings: Settings, *,
           validation_data: tuple[Any, Any] | None, test_data: tuple[Any, Any] | None,
           start: Checkpoint | None) -> History:
    Y_given = Y  # labels or targets, as the caller gave them (for stratifying and accuracy)
    net._check_model_attributes()  # the dtype and cost below must be ones a network can have
    X = check.as_inputs(X, "X", net.sizes[0], net.dtype)
    Y = net.targets(Y, "Y", X.shape[0])
    s = settings
    tests = validation = None
    if test_data is not None:
        if not isinstance(test_data, tuple | list) or len(test_data) != 2:
            raise TypeError("test_data must be a pair (X_test, y_test)")
        X_test = check.as_inputs(test_data[0], "test_data[0]", net.sizes[0], net.dtype)
        tests = (X_test, check.as_labels(test_data[1], "test_data[1]", X_test.shape[0],
                                          net.sizes[-1]))
    if validation_data is not None and s.validation_fraction is not None:
        raise ValueError("give either validation_data or validation_fraction, not both")
    if validation_data is not None:
        if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (X_val, Y_val)")
        X_val = check.as_inputs(validation_data[0], "validation_data[0]", net.sizes[0],
                                net.dtype)
        Y_val = net.targets(validation_data[1], "validation_data[1]", X_val.shape[0])
        validation = _Evaluation(X_val, Y_val, _labels_of(validation_data[1], Y_val))
    if s.early_stopping is not None and validation_data is None \
            and s.validation_fraction is None:
        raise ValueError("early_stopping needs validation data: pass validation_data=(X, Y) "
                         "or validation_fraction")
    net.parameters()  # refuses parameters of the wrong shape, NaN or infinity
    data_print = fingerprint(X, Y) if (s.checkpoint is not None or start is not None) else None
    if start is not None and start.data is not None and start.data != data_print:
        raise ValueError(
            "the checkpoint was written while training on other data "
            f"({start.data.get('X_shape')} inputs); resume needs the run's own X and Y")

    if s.early_stopping is not None and s.monitor == "accuracy" and validation_data is None \
            and _labels_of(Y_given, Y) is None:  # refused before the split draws from net.rng
        raise ValueError("monitor='accuracy' needs validation labels (or one-hot targets)")
    held_out = None
    if s.validation_fraction is not None:
        if start is not None and start.validation_index is not None:
            held_out = resumed_validation_rows(start, X.shape[0])
        else:
            held_out = holdout_rows(_labels_of(Y_given, Y), X.shape[0], s.validation_fraction,
                                    net.rng)
        keep = np.ones(X.shape[0], bool)
        keep[held_out] = False
        X_val, Y_val = X[held_out], Y[held_out]
        validation = _Evaluation(X_val, Y_val, _labels_of(Y_given, Y_val))
        X, Y = np.ascontiguousarray(X[keep]), np.ascontiguousarray(Y[keep])
    if s.early_stopping is not None and s.monitor == "accuracy" and validation.labels is None:
        raise ValueError("monitor='accuracy' needs validation labels (or one-hot targets)")

    if start is not None and start.progress is not None \
            and s.mini_batch_size != start.mini_batch_size:
        raise ValueError(
            f"the checkpoint stopped inside epoch {start.progress.epoch} with mini-batches "
            f"of {start.mini_batch_size}; resume it with mini_batch_size="
            f"{start.mini_batch_size}, not {s.mini_batch_size}")
    history, done, resume_at, stopping, optimizer_state = starting_point(net, s, start)

    trainer = _Trainer(net, X, Y, s.mini_batch_size, s.optimizer, optimizer_state,
                       decay=s.l2 / X.shape[0])
    if resume_at is not None and resume_at.order.shape != (X.shape[0],):
        raise ValueError("the checkpoint's epoch order does not fit the data")

    write = checkpoint_writer(net, s, history, trainer, data_print, held_out, stopping)
    try:
        return run_epochs(net, s, history, done, resume_at, trainer, validation, tests,
                          stopping, write, X.shape[0], _StopRequest())
    finally:
        trainer.release()



def starting_point(net: Network, s: Settings, start: Checkpoint | None) -> tuple:
    """``(history, epochs done, progress inside an epoch, early stopping, optimizer state)``
    of a new run, or of the run ``start`` was written by; starts the schedule."""
    history = History()
    done, resume_at = 0, None
    stopping = (EarlyStopping(s.early_stopping, s.monitor, s.min_delta)
                if s.early_stopping is not None else None)
    if start is None:
        optimizer_state = initial_state(s.optimizer, s.eta, net.weights, net.biases)
    else:
        history = History(list(start.history.records), stopped_early=start.history.stopped_early,
                          best_epoch=start.history.best_epoch)
        done, resume_at = start.epochs_done, start.progress
        # the checkpoint's arrays were checked against the network when it was read
        optimizer_state = OptimizerState(s.optimizer.name,
                                         dict(s.optimizer.hyperparameters(), eta=s.eta),
                                         start.optimizer.arrays, start.optimizer.step)
        if start.early_stopping is not None:  # _check_resumable: both runs stop early or not
            stopping = start.early_stopping
    s.schedule.start(s.eta, s.epochs)
    return history, done, resume_at, stopping, optimizer_state


def checkpoint_writer(net: Network, s: Settings, history: History, trainer: Any,
                      data_print: dict | None, held_out: np.ndarray | None,
                      stopping: EarlyStopping | None) -> Any:
    """``write(progress)``: save a checkpoint of the run as it stands to ``s.checkpoint``."""
    def write(where: EpochProgress | None) -> None:
        save_checkpoint(s.checkpoint, net, Checkpoint(
            epochs_done=len(history), epochs=s.epochs, mini_batch_size=s.mini_batch_size,
            eta=s.eta, checkpoint_every=s.checkpoint_every,
            history=History(list(history.records), stopped_early=history.stopped_early,
                            best_epoch=history.best_epoch),
            optimizer=trainer.optimizer_state(), progress=where, data=data_print, l2=s.l2,
            schedule=s.schedule.to_dict(), validation_index=held_out,
            validation_fraction=s.validation_fraction, early_stopping=stopping))

    return write


def run_epochs(net: Network, s: Settings, history: History, done: int,
               resume_at: EpochProgress | None, trainer: Any, validation: _Evaluation | None,
               tests: tuple | None, stopping: EarlyStopping | None, write: Any, n: int,
               stop: _StopRequest) -> History:
    """The loop over epochs: train one (``trainer.epoch``), measure, stop, checkpoint.

    Shared by :func:`sgd` and :func:`loopbp.distributed.sgd`: ``trainer`` runs an
    epoch's mini-batches (in this process or on a cluster), ``write(progress)``
    writes a checkpoint, ``n`` is the number of training rows, ``stop`` the
    Ctrl-C handler.
    """
    remaining = 0 if history.stopped_early else max(s.epochs - done, 0)
    previous_threads = get_num_threads()
    bar = tqdm(total=remaining * n, unit="ex", unit_scale=True, disable=not s.progress,
               desc="training", dynamic_ncols=True, leave=True)
    saved_on_stop = False
    try:
        if s.n_threads is not None:
            set_num_threads(s.n_threads)
        with stop.handling_sigint():
            for epoch in range(done + 1, done + remaining + 1):
                eta = s.schedule.eta(epoch - 1)
                record = trainer.epoch(epoch, eta, bar, stop, resume_at)
                resume_at = None
                if record is None:  # Ctrl-C inside the epoch
                    history.interrupted = True
                    if s.checkpoint is not None and write is not None:
                        write(trainer.progress)
                        saved_on_stop = True
                    break
                if s.l2:
                    record.cost += 0.5 * trainer.decay * sum_of_squares(net.weights)
                if validation is not None:
                    record.validation_cost, record.validation_correct = validation.measure(net)
                    if validation.labels is not None:
                        record.validation_total = validation.X.shape[0]
                if tests is not None:
                    record.test_correct = net.evaluate(*tests)
                    record.test_total = tests[0].shape[0]
                history.records.append(record)
                s.schedule.observe(epoch - 1, record.cost if validation is None
                                   else record.validation_cost)
                stop_early = False
                if stopping is not None:
                    value = (record.validation_cost if stopping.monitor == "cost"
                             else record.validation_accuracy)
                    stop_early = stopping.observe(epoch, value, net.weights, net.biases)
                    history.best_epoch = stopping.best_epoch
                    history.stopped_early = stop_early
                if s.progress:
                    bar.set_postfix_str(_describe(record), refresh=False)
                    bar.write(f"epoch {epoch}/{s.epochs}: {_describe(record)}")
                last = epoch == s.epochs or stop_early
                if s.checkpoint is not None and write is not None and (
                        epoch % s.checkpoint_every == 0 or last or stop.requested):
                    write(None)
                    saved_on_stop = stop.requested
                if stop_early:
                    if s.progress:
                        bar.write(f"early stopping: no improvement of the validation "
                                  f"{stopping.monitor} for {stopping.patience} epoch(s); "
                                  f"keeping the parameters of epoch {stopping.best_epoch}")
                    break
                if stop.requested and not last:
                    history.interrupted = True
                    break
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside the main thread's handler
        history.interrupted = True
    finally:
        bar.close()
        if s.n_threads is not None:
            set_num_threads(previous_threads)
    if stopping is not None and stopping.best_epoch is not None and not history.interrupted:
        stopping.restore(net.weights, net.biases)
    if history.interrupted and s.progress:
        where = (f"; checkpoint written to {os.fspath(s.checkpoint)}" if saved_on_stop else "")
        tqdm.write(f"interrupted: {len(history)} full epoch(s) done; parameters are those "
                   f"after the last finished mini-batch{where}")
    return history


def _describe(record: EpochRecord) -> str:
    text = f"cost {record.cost:.5f}"
    if record.validation_cost is not None:
        text += f", validation cost {record.validation_cost:.5f}"
    if record.validation_accuracy is not None:
        text += f" ({100 * record.validation_accuracy:.2f}%)"
    if record.test_accuracy is not None:
        text += (f", test accuracy {record.test_correct}/{record.test_total} "
                 f"({100 * record.test_accuracy:.2f}%)")
    if record.eta is not None:
        text += f", eta {record.eta:.4g}"
    return text


class _StopRequest:
    """Ctrl-C as a request to stop at the next mini-batch boundary.

    In the main thread, while the default SIGINT handler is installed, the
    first SIGINT only sets :attr:`requested`; a second one raises
    ``KeyboardInterrupt`` as usual.  Elsewhere (other threads, custom
    handlers) nothing is installed and ``KeyboardInterrupt`` is caught by
    :func:`sgd` instead.
    """

    def __init__(self) -> None:
        self.requested = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    @contextmanager
    def handling_sigint(self) -> Iterator[None]:
        install = (threading.current_thread() is threading.main_thread()
                   and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        if not install:
            yield
            return
        previous = signal.signal(signal.SIGINT, self._handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


class _Trainer:
    """Buffers for one :func:`sgd` call (allocated, or lent by the network's last call of
    the same shapes), and the epoch loop around the kernel."""

    def __init__(self, net: Network, X: np.ndarray, Y: np.ndarray, batch_size: int,
                 optimizer: Optimizer, state: OptimizerState, decay: float, *,
                 alpha: float = 0.0, sample_weight: np.ndarray | None = None,
                 shuffle: bool = True) -> None:
        """``decay = λ/n`` is network2's L2; ``alpha`` scikit-learn's per mini-batch.

        ``sample_weight`` (one non-negative weight per row, checked by the
        caller) makes each mini-batch's gradient and cost weighted means;
        ``shuffle=False`` walks the rows in their order every epoch.
        """
        self.net, self.X, self.Y = net, X, Y
        self.optimizer, self.decay, self.alpha, self.shuffle = optimizer, decay, alpha, shuffle
        n = X.shape[0]
        self.batch_size = min(batch_size, n)
        self.n_batches = math.ceil(n / self.batch_size)
        tail = n - (self.n_batches - 1) * self.batch_size
        # scratch that each compiled call fills afresh, lent from call to call
        self._scratch_key = (tuple(net.sizes), net.dtype, self.batch_size, tail)
        self._scratch_bytes = (workspace_bytes(net.sizes, self.batch_size + tail, net.dtype)
                               + 2 * weights_bytes(net.sizes, net.dtype))
        self._scratch = borrow(net, "sgd", self._scratch_key, lambda: (
            workspace(net.sizes, self.batch_size, net.dtype),
            workspace(net.sizes, tail, net.dtype) if tail < self.batch_size else None,
            typed_list([np.zeros(w.shape[::-1], net.dtype) for w in net.weights]),
            typed_list([np.zeros_like(w) for w in net.weights]),
            typed_list([np.zeros_like(b) for b in net.biases])))
        self.ws_full, ws_tail, self.weights_T, self.nabla_w, self.nabla_b = self._scratch
        self.ws_tail = self.ws_full if ws_tail is None else ws_tail
        if sample_weight is None:
            self.S = self.s_full = self.s_tail = np.empty(0, net.dtype)
        else:
            self.S = np.ascontiguousarray(sample_weight, dtype=net.dtype)
            self.s_full = np.empty(self.batch_size, net.dtype)
            self.s_tail = np.empty(tail, net.dtype)
        #: :mod:`loopbp.kernels` or its serial twins, by the work per mini-batch
        self.kernels = kernels_for(net.sizes, self.batch_size)
        #: each mini-batch's summed cost, added up once per epoch in a fixed order
        self.batch_costs = np.zeros(self.n_batches)
        # the optimizer's arrays, by kind; a kind it does not keep is given the
        # gradient lists as placeholders of the right type, which it never reads
        # (building typed lists costs more than a small epoch's update)
        self.state_arrays, self.hyperparameters = state.arrays, state.hyperparameters
        self.step = np.array([state.step], dtype=np.int64)
        lists = []
        for kind in ("v", "m"):
            if kind in STATE_ARRAYS[optimizer.name]:
                layers = range(len(net.weights))
                lists.append(typed_list([state.arrays[f"{kind}{i}"] for i in layers]))
                lists.append(typed_list([state.arrays[f"{kind}b{i}"] for i in layers]))
            else:
                lists += [self.nabla_w, self.nabla_b]
        self.state = lists  # v_w, v_b, m_w, m_b
        self.f_codes, self.cost_code = net.f_codes, net.cost_code
        # copies to roll back to when a stretch diverges
        self.saved = [np.empty_like(a) for a in self._rolled_back()]
        work = flops_per_batch(net.sizes, self.batch_size)
        self.batches_per_call = max(1, int(CALL_SECONDS * ASSUMED_FLOPS / work))
        self.progress: EpochProgress | None = None

    def release(self) -> None:
        """Lend the scratch buffers (workspaces, transposes, gradients) to the network's next
        call of the same shapes: nothing in them outlives a compiled call."""
        give_back(self.net, "sgd", self._scratch_key, self._scratch, self._scratch_bytes)

    def _rolled_back(self) -> list[np.ndarray]:
        """Everything a stretch changes: parameters, optimizer arrays, step count."""
        return [*self.net.weights, *self.net.biases, *self.state_arrays.values(), self.step]

    def optimizer_state(self) -> OptimizerState:
        """The optimizer's state now (the arrays are shared, not copied)."""
        return OptimizerState(self.optimizer.name, self.hyperparameters, self.state_arrays,
                              int(self.step[0]))

    def epoch(self, epoch: int, eta: float, bar: tqdm, stop: _StopRequest,
              resume_at: EpochProgress | None = None) -> EpochRecord | None:
        """Run one epoch at rate ``eta``; None when a stop request ended it early."""
        net = self.net
        weights, biases = net.parameters()
        opt = self.optimizer
        hyper = np.array([eta, self.decay, opt.momentum, opt.betas[0], opt.betas[1],
                          opt.epsilon, self.alpha])
        order, first, cost_before, spent = epoch_start(net, self.X.shape[0], self.batch_size,
                                                       resume_at, bar, self.shuffle)
        epoch_first = first
        started = time.perf_counter()
        while first < self.n_batches:
            if stop.requested:
                cost_sum = cost_before + math.fsum(self.batch_costs[epoch_first:first])
                self.progress = EpochProgress(epoch, first, cost_sum,
                                              spent + time.perf_counter() - started, order)
                return None
            stop_at = min(first + self.batches_per_call, self.n_batches)
            for dest, src in zip(self.saved, self._rolled_back()):
                dest[...] = src
            call_started = time.perf_counter()
            with parallel_guard():
                cost = self.kernels.train_mini_batches(
                    weights, biases, self.X, self.Y, self.S, order, first, stop_at, self.f_codes,
                    self.cost_code, opt.code, hyper, *self.state, self.step, self.weights_T,
                    self.nabla_w, self.nabla_b, self.ws_full, self.ws_tail, self.s_full,
                    self.s_tail, self.batch_costs)
            if not (math.isfinite(cost) and _all_finite(net.weights)
                    and _all_finite(net.biases)):
                for dest, src in zip(self._rolled_back(), self.saved):
                    dest[...] = src
                raise diverged(epoch, eta)
            self._resize_calls(stop_at - first, time.perf_counter() - call_started)
            rows = min(stop_at * self.batch_size, self.X.shape[0]) - first * self.batch_size
            bar.update(rows)
            first = stop_at
        # fsum is exactly rounded: the total does not depend on how calls split the epoch
        cost_sum = cost_before + math.fsum(self.batch_costs[epoch_first:])
        return EpochRecord(epoch, cost_sum / self.X.shape[0],
                           spent + time.perf_counter() - started, eta=eta)

    def _resize_calls(self, batches: int, seconds: float) -> None:
        """Aim each compiled call at :data:`CALL_SECONDS` from the last one's speed."""
        if seconds > 0:
            rate = batches / seconds
            self.batches_per_call = max(1, min(int(rate * CALL_SECONDS), self.n_batches))


def epoch_start(net: Network, n: int, batch_size: int, resume_at: EpochProgress | None,
                bar: tqdm, shuffle: bool = True) -> tuple[np.ndarray, int, int, float]:
    """``(order, first mini-batch, cost summed so far, seconds spent)`` of an epoch: a new
    permutation from the network's generator, or where a checkpoint stopped inside it."""
    if resume_at is None:
        return (net.rng.permutation(n) if shuffle else np.arange(n)), 0, 0.0, 0.0
    bar.update(min(resume_at.next_batch * batch_size, n))
    return (np.ascontiguousarray(resume_at.order, dtype=np.int64), resume_at.next_batch,
            resume_at.cost_sum, resume_at.seconds)


def diverged(epoch: int, eta: float) -> TrainingDiverged:
    """The error a run raises when its cost or parameters stop being finite."""
    return TrainingDiverged(
        f"training diverged in epoch {epoch}: the cost or the parameters became NaN or "
        f"infinite (the learning rate eta={eta:g} is probably too large, or the targets too "
        "big); the parameters are left as they were before the failing mini-batches")


def _all_finite(arrays: list[np.ndarray]) -> bool:
    return all(np.isfinite(a).all() for a in arrays)


# --- resuming ------------------------------------------------------------------------


def _check_resumable(start: Checkpoint, settings: Settings, path: Any) -> None:
    """Refuse to resume with settings whose state the checkpoint does not hold."""
    where = repr(str(path))
    if start.optimizer.name != settings.optimizer.name:
        raise ValueError(f"checkpoint {where} was written by a run with optimizer="
                         f"{start.optimizer.name!r}; resume it with the same optimizer "
                         f"(or use loopbp.resume, which takes every setting from the checkpoint)")
    if start.schedule["name"] != settings.schedule.name:
        raise ValueError(f"checkpoint {where} was written by a run with schedule "
                         f"{start.schedule['name']!r}, not {settings.schedule.name!r}")
    settings.schedule.load_state(start.schedule["state"])
    if (start.validation_index is None) != (settings.validation_fraction is None) or (
            start.validation_fraction is not None
            and start.validation_fraction != settings.validation_fraction):
        raise ValueError(f"checkpoint {where} held out validation_fraction="
                         f"{start.validation_fraction}; resume it with the same fraction")
    if (start.early_stopping is None) != (settings.early_stopping is None):
        raise ValueError(f"checkpoint {where}: early_stopping must be set as in the original "
                         "run to resume it")


def _adopt(net: Network, loaded: Network, path: str | os.PathLike) -> None:
    """Give ``net`` the parameters and generator state of the checkpoint's network."""
    if (net.sizes, net.activations, net.cost, net.dtype) != (
            loaded.sizes, loaded.activations, loaded.cost, loaded.dtype):
        raise ValueError(
            f"checkpoint {str(path)!r} holds a {loaded!r}; it cannot resume training of a "
            f"{net!r}")
    net.weights = [w.copy() for w in loaded.weights]
    net.biases = [b.copy() for b in loaded.biases]
    net.rng = loaded.rng
    net.seed = loaded.seed
