"""Mini-batch stochastic gradient descent over a :class:`~loopbp.Network`.

An epoch shuffles the training rows with the network's generator, cuts them
into mini-batches and, for each, runs backprop and the update ``w ← w − η ∇C``.
The mini-batch loop itself runs in compiled code
(:func:`loopbp.kernels.train_mini_batches`); Python only calls it a few times
per epoch (each call a *stretch* of mini-batches lasting about
:data:`CALL_SECONDS`), for the progress bar, Ctrl-C, divergence checks and
checkpoints:

* **Ctrl-C** stops training at the next stretch boundary, that is between two
  mini-batches, so the parameters are never half updated.  While :func:`sgd`
  runs in the main thread it handles the first SIGINT itself: it notes the
  request, finishes the running stretch and returns the history so far with
  ``interrupted = True`` (and writes a checkpoint, when asked to, from which
  :func:`resume` continues exactly).  A second Ctrl-C raises
  ``KeyboardInterrupt`` at once, which :func:`sgd` still catches.
* **Divergence**: if a stretch's cost or the parameters stop being finite, the
  parameters go back to their values before that stretch and
  :class:`TrainingDiverged` names the epoch.
* **Checkpoints**: ``sgd(..., checkpoint=PATH, checkpoint_every=N)`` writes the
  whole training state every ``N`` epochs, after the last epoch and on Ctrl-C;
  :func:`resume` (or ``sgd(..., resume_from=PATH)``) continues from it with
  results bitwise identical to a run that was never stopped.

Checkpoint files
----------------
A checkpoint is a loopbp network file (:mod:`loopbp.files`) with
``meta["kind"] == "checkpoint"``, so :meth:`Network.load` also reads the
network out of one.  Besides ``w0, w1, …, b0, b1, …`` and the generator state
it holds, under ``meta["state"]["training"]``:

=====================  =====================================================
key                    content
=====================  =====================================================
``version``            :data:`CHECKPOINT_VERSION`
``epochs_done``        full epochs finished
``epochs``             the epoch count the run was asked for
``mini_batch_size``    as given to :func:`sgd`
``eta``                learning rate (also under the optimizer)
``checkpoint_every``   the interval the run used
``optimizer``          ``{"name": "sgd", "hyperparameters": {...},
                       "arrays": [...]}``; each listed array is stored as the
                       member ``optimizer.<name>`` (plain SGD has none;
                       momentum or Adam keep their velocities there)
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
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from . import _validation as check
from . import files
from ._jit import get_num_threads, parallel_guard, set_num_threads
from .network import flops_per_batch, kernels_for

if TYPE_CHECKING:
    from .network import Network

#: Target wall time of one compiled call, in seconds (progress and Ctrl-C granularity).
CALL_SECONDS = 0.1
#: Assumed speed for sizing the first call, in floating-point operations per second.
ASSUMED_FLOPS = 5e9
#: Version of the ``training`` section of a checkpoint's metadata.
CHECKPOINT_VERSION = 1
#: The optimizers a checkpoint may name (momentum and Adam will join them).
OPTIMIZERS = ("sgd",)


class TrainingDiverged(FloatingPointError):  # noqa: N818 (a public name already in use)
    """The cost or the parameters became NaN or infinite during training."""


@dataclass
class EpochRecord:
    """What happened in one epoch."""

    epoch: int  #: 1-based epoch number
    cost: float  #: mean cost of the epoch's mini-batches, each measured before its update
    seconds: float  #: wall time of the training (not the evaluation)
    test_correct: int | None = None  #: test rows classified correctly, when test data given
    test_total: int | None = None

    @property
    def test_accuracy(self) -> float | None:
        """Fraction of test rows classified correctly, or None."""
        if self.test_correct is None or not self.test_total:
            return None
        return self.test_correct / self.test_total


@dataclass
class History:
    """Per-epoch records of one training run (across resumes)."""

    records: list[EpochRecord] = field(default_factory=list)
    interrupted: bool = False  #: True when Ctrl-C stopped training early

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> EpochRecord:
        return self.records[i]

    @property
    def cost(self) -> list[float]:
        """Mean cost of each epoch."""
        return [r.cost for r in self.records]

    @property
    def test_accuracy(self) -> list[float | None]:
        """Test accuracy after each epoch (None without test data)."""
        return [r.test_accuracy for r in self.records]

    @property
    def seconds(self) -> list[float]:
        """Training wall time of each epoch."""
        return [r.seconds for r in self.records]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (see :meth:`from_dict`)."""
        return {"records": [asdict(r) for r in self.records], "interrupted": self.interrupted}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """The inverse of :meth:`to_dict`."""
        return cls([EpochRecord(**r) for r in data["records"]], bool(data["interrupted"]))


@dataclass
class OptimizerState:
    """An optimizer's name, hyperparameters and state arrays, as a checkpoint stores them.

    Plain SGD keeps no arrays; momentum or Adam will keep their per-parameter
    velocities in ``arrays`` (stored as members ``optimizer.<name>``).
    """

    name: str = "sgd"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


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
    eta: float
    checkpoint_every: int | None
    history: History
    optimizer: OptimizerState
    progress: EpochProgress | None = None  #: set when Ctrl-C stopped inside an epoch
    data: dict[str, Any] | None = None  #: fingerprint of the training data


# --- public entry points -----------------------------------------------------------


def sgd(net: Network, X: Any, Y: Any, epochs: int, mini_batch_size: int, eta: float, *,
        test_data: tuple[Any, Any] | None = None, progress: bool = True,
        n_threads: int | None = None, checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int = 1, resume_from: str | os.PathLike | None = None) -> History:
    """Train ``net`` in place with mini-batch stochastic gradient descent.

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
        Learning rate η > 0.
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
        same sizes and dtype) takes its parameters and generator state, and
        training continues where that run stopped, on the same ``X``, ``Y``.
        With the same ``mini_batch_size`` and ``eta`` the parameters end up
        bitwise identical to those of a run that was never stopped.

    Returns
    -------
    History
        One :class:`EpochRecord` per finished epoch (with ``resume_from``, the
        checkpoint's records first); ``interrupted`` is True after Ctrl-C.

    Raises
    ------
    TrainingDiverged
        When the cost or the parameters become NaN or infinite; the parameters
        are left as they were before the failing stretch of mini-batches.
    ValueError, TypeError
        For invalid arguments, or a checkpoint that does not fit ``net`` or
        the data (:class:`loopbp.NetworkFileError` for a damaged file).
    """
    start = None
    if resume_from is not None:
        loaded_net, start = load_checkpoint(resume_from)
        _adopt(net, loaded_net, resume_from)
    return _train(net, X, Y, epochs, mini_batch_size, eta, test_data=test_data,
                  progress=progress, n_threads=n_threads, checkpoint=checkpoint,
                  checkpoint_every=checkpoint_every, start=start)


def resume(path: str | os.PathLike, X: Any, Y: Any, epochs: int | None = None, *,
           test_data: tuple[Any, Any] | None = None, progress: bool = True,
           n_threads: int | None = None, checkpoint: str | os.PathLike | None = None,
           checkpoint_every: int | None = None) -> tuple[Network, History]:
    """Continue the training run saved in the checkpoint ``path``.

    The network, generator state, history, mini-batch size and learning rate
    come from the checkpoint; ``X`` and ``Y`` must be the training data of the
    original run (a fingerprint in the checkpoint checks this).

    Parameters
    ----------
    path : path
        A checkpoint written by ``sgd(..., checkpoint=...)``.
    X, Y : array_like
        The original training data.
    epochs : int, optional
        Total epochs of the run, the ones done included (default: the count
        the original run was asked for).
    test_data, progress, n_threads
        As for :func:`sgd`.
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
    if epochs is None:
        epochs = state.epochs
    every = checkpoint_every if checkpoint_every is not None else (state.checkpoint_every or 1)
    history = _train(net, X, Y, epochs, state.mini_batch_size, state.eta, test_data=test_data,
                     progress=progress, n_threads=n_threads,
                     checkpoint=path if checkpoint is None else checkpoint,
                     checkpoint_every=every, start=state)
    return net, history


def load_checkpoint(path: str | os.PathLike) -> tuple[Network, Checkpoint]:
    """Read a checkpoint written by ``sgd(..., checkpoint=path)``.

    Returns
    -------
    net : Network
        The network with its parameters and generator state at the checkpoint.
    state : Checkpoint
        Epochs done, hyperparameters, optimizer state, history and, after a
        Ctrl-C inside an epoch, where that epoch stopped.

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


def save_checkpoint(path: str | os.PathLike, net: Network, state: Checkpoint) -> None:
    """Write ``net`` and the training ``state`` to ``path`` atomically.

    :func:`sgd` calls this; it is public for tools that build checkpoints of
    their own (an optimizer with state puts its arrays in ``state.optimizer``).

    Parameters
    ----------
    path : path
        The checkpoint file; replaced atomically (:func:`loopbp.files.write_atomic`).
    net : Network
        Parameters and generator state to store.
    state : Checkpoint
        The training state (layout in the module notes of :mod:`loopbp.training`).
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
    meta["state"] = dict(meta["state"], training={
        "version": CHECKPOINT_VERSION,
        "epochs_done": state.epochs_done,
        "epochs": state.epochs,
        "mini_batch_size": state.mini_batch_size,
        "eta": state.eta,
        "checkpoint_every": state.checkpoint_every,
        "optimizer": {"name": state.optimizer.name,
                      "hyperparameters": state.optimizer.hyperparameters,
                      "arrays": sorted(state.optimizer.arrays)},
        "history": state.history.to_dict(),
        "progress": progress,
        "data": state.data,
    })
    files.write_atomic(path, meta, arrays)


# --- the run -------------------------------------------------------------------------


def _train(net: Network, X: Any, Y: Any, epochs: int, mini_batch_size: int, eta: float, *,
           test_data: tuple[Any, Any] | None, progress: bool, n_threads: int | None,
           checkpoint: str | os.PathLike | None, checkpoint_every: int,
           start: Checkpoint | None) -> History:
    X = check.as_inputs(X, "X", net.sizes[0], net.dtype)
    Y = check.as_targets(Y, "Y", X.shape[0], net.sizes[-1], net.dtype)
    epochs = check.check_int(epochs, "epochs", minimum=0)
    mini_batch_size = check.check_int(mini_batch_size, "mini_batch_size", minimum=1)
    eta = check.check_positive_float(eta, "eta")
    if test_data is not None:
        if not isinstance(test_data, tuple | list) or len(test_data) != 2:
            raise TypeError("test_data must be a pair (X_test, y_test)")
        X_test = check.as_inputs(test_data[0], "test_data[0]", net.sizes[0], net.dtype)
        y_test = check.as_labels(test_data[1], "test_data[1]", X_test.shape[0], net.sizes[-1])
    if n_threads is not None:
        n_threads = check.check_int(n_threads, "n_threads", minimum=1)
    if checkpoint is not None and not isinstance(checkpoint, str | os.PathLike):
        raise TypeError(f"checkpoint must be a path, got {type(checkpoint).__name__}")
    checkpoint_every = check.check_int(checkpoint_every, "checkpoint_every", minimum=1)

    net.parameters()  # refuses parameters of the wrong shape, NaN or infinity
    fingerprint = _fingerprint(X, Y) if (checkpoint is not None or start is not None) else None
    history = History()
    done, resume_at = 0, None
    if start is not None:
        if start.data is not None and start.data != fingerprint:
            raise ValueError(
                "the checkpoint was written while training on other data "
                f"({start.data.get('X_shape')} inputs); resume needs the run's own X and Y")
        if start.progress is not None and mini_batch_size != start.mini_batch_size:
            raise ValueError(
                f"the checkpoint stopped inside epoch {start.progress.epoch} with mini-batches "
                f"of {start.mini_batch_size}; resume it with mini_batch_size="
                f"{start.mini_batch_size}, not {mini_batch_size}")
        history.records = list(start.history.records)
        done, resume_at = start.epochs_done, start.progress

    trainer = _Trainer(net, X, Y, mini_batch_size, eta)
    if resume_at is not None and resume_at.order.shape != (X.shape[0],):
        raise ValueError("the checkpoint's epoch order does not fit the data")

    def write(where: EpochProgress | None) -> None:
        save_checkpoint(checkpoint, net, Checkpoint(
            epochs_done=len(history), epochs=epochs, mini_batch_size=mini_batch_size, eta=eta,
            checkpoint_every=checkpoint_every, history=History(list(history.records)),
            optimizer=OptimizerState("sgd", {"eta": eta}), progress=where, data=fingerprint))

    remaining = max(epochs - done, 0)
    previous_threads = get_num_threads()
    bar = tqdm(total=remaining * X.shape[0], unit="ex", unit_scale=True, disable=not progress,
               desc="training", dynamic_ncols=True, leave=True)
    stop = _StopRequest()
    saved_on_stop = False
    try:
        if n_threads is not None:
            set_num_threads(n_threads)
        with stop.handling_sigint():
            for epoch in range(done + 1, epochs + 1):
                record = trainer.epoch(epoch, bar, stop, resume_at)
                resume_at = None
                if record is None:  # Ctrl-C inside the epoch
                    history.interrupted = True
                    if checkpoint is not None:
                        write(trainer.progress)
                        saved_on_stop = True
                    break
                if test_data is not None:
                    record.test_correct = net.evaluate(X_test, y_test)
                    record.test_total = X_test.shape[0]
                history.records.append(record)
                if progress:
                    bar.set_postfix_str(_describe(record), refresh=False)
                    bar.write(f"epoch {epoch}/{epochs}: {_describe(record)}")
                last = epoch == epochs
                if checkpoint is not None and (epoch % checkpoint_every == 0 or last
                                               or stop.requested):
                    write(None)
                    saved_on_stop = stop.requested
                if stop.requested and not last:
                    history.interrupted = True
                    break
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside the main thread's handler
        history.interrupted = True
    finally:
        bar.close()
        if n_threads is not None:
            set_num_threads(previous_threads)
    if history.interrupted and progress:
        where = (f"; checkpoint written to {os.fspath(checkpoint)}" if saved_on_stop else "")
        tqdm.write(f"interrupted: {len(history)} full epoch(s) done; parameters are those "
                   f"after the last finished mini-batch{where}")
    return history


def _describe(record: EpochRecord) -> str:
    text = f"cost {record.cost:.5f}"
    if record.test_accuracy is not None:
        text += (f", test accuracy {record.test_correct}/{record.test_total} "
                 f"({100 * record.test_accuracy:.2f}%)")
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
    """Buffers allocated once per :func:`sgd` call, and the epoch loop around the kernel."""

    def __init__(self, net: Network, X: np.ndarray, Y: np.ndarray, batch_size: int,
                 eta: float) -> None:
        from .network import typed_list, workspace

        self.net, self.X, self.Y, self.eta = net, X, Y, eta
        n = X.shape[0]
        self.batch_size = min(batch_size, n)
        self.n_batches = math.ceil(n / self.batch_size)
        tail = n - (self.n_batches - 1) * self.batch_size
        self.ws_full = workspace(net.sizes, self.batch_size, net.dtype)
        self.ws_tail = (self.ws_full if tail == self.batch_size
                        else workspace(net.sizes, tail, net.dtype))
        self.weights_T = typed_list([np.zeros(w.shape[::-1], net.dtype) for w in net.weights])
        self.nabla_w = typed_list([np.zeros_like(w) for w in net.weights])
        self.nabla_b = typed_list([np.zeros_like(b) for b in net.biases])
        #: :mod:`loopbp.kernels` or its serial twins, by the work per mini-batch
        self.kernels = kernels_for(net.sizes, self.batch_size)
        #: each mini-batch's summed cost, added up once per epoch in a fixed order
        self.batch_costs = np.zeros(self.n_batches)
        self.saved_w = [np.empty_like(w) for w in net.weights]
        self.saved_b = [np.empty_like(b) for b in net.biases]
        work = flops_per_batch(net.sizes, self.batch_size)
        self.batches_per_call = max(1, int(CALL_SECONDS * ASSUMED_FLOPS / work))
        self.progress: EpochProgress | None = None

    def epoch(self, epoch: int, bar: tqdm, stop: _StopRequest,
              resume_at: EpochProgress | None = None) -> EpochRecord | None:
        """Run one epoch; None when a stop request ended it early (see :attr:`progress`)."""
        net = self.net
        weights, biases = net.parameters()
        if resume_at is not None:
            order = np.ascontiguousarray(resume_at.order, dtype=np.int64)
            first, cost_before, spent = (resume_at.next_batch, resume_at.cost_sum,
                                         resume_at.seconds)
            bar.update(min(first * self.batch_size, self.X.shape[0]))
        else:
            order = net.rng.permutation(self.X.shape[0])
            first, cost_before, spent = 0, 0.0, 0.0
        epoch_first = first
        started = time.perf_counter()
        while first < self.n_batches:
            if stop.requested:
                cost_sum = cost_before + math.fsum(self.batch_costs[epoch_first:first])
                self.progress = EpochProgress(epoch, first, cost_sum,
                                              spent + time.perf_counter() - started, order)
                return None
            stop_at = min(first + self.batches_per_call, self.n_batches)
            for dest, src in zip(self.saved_w + self.saved_b, net.weights + net.biases):
                dest[...] = src
            call_started = time.perf_counter()
            with parallel_guard():
                cost = self.kernels.train_mini_batches(
                    weights, biases, self.X, self.Y, order, first, stop_at, self.eta,
                    self.weights_T, self.nabla_w, self.nabla_b, self.ws_full, self.ws_tail,
                    self.batch_costs)
            if not (math.isfinite(cost) and _all_finite(net.weights)
                    and _all_finite(net.biases)):
                for dest, src in zip(net.weights + net.biases, self.saved_w + self.saved_b):
                    dest[...] = src
                raise TrainingDiverged(
                    f"training diverged in epoch {epoch}: the cost or the parameters became "
                    f"NaN or infinite (the learning rate eta={self.eta:g} is probably too "
                    "large, or the targets too big); the parameters are left as they were "
                    "before the failing mini-batches")
            self._resize_calls(stop_at - first, time.perf_counter() - call_started)
            rows = min(stop_at * self.batch_size, self.X.shape[0]) - first * self.batch_size
            bar.update(rows)
            first = stop_at
        # fsum is exactly rounded: the total does not depend on how calls split the epoch
        cost_sum = cost_before + math.fsum(self.batch_costs[epoch_first:])
        return EpochRecord(epoch, cost_sum / self.X.shape[0],
                           spent + time.perf_counter() - started)

    def _resize_calls(self, batches: int, seconds: float) -> None:
        """Aim each compiled call at :data:`CALL_SECONDS` from the last one's speed."""
        if seconds > 0:
            rate = batches / seconds
            self.batches_per_call = max(1, min(int(rate * CALL_SECONDS), self.n_batches))


def _all_finite(arrays: list[np.ndarray]) -> bool:
    return all(np.isfinite(a).all() for a in arrays)


# --- checkpoint helpers ----------------------------------------------------------------


def _fingerprint(X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    """Shapes, dtype and a hash of the (converted) training data."""
    digest = hashlib.blake2b(digest_size=16)
    for array in (X, Y):
        digest.update(repr((array.shape, array.dtype.str)).encode())
        digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    return {"X_shape": list(X.shape), "Y_shape": list(Y.shape), "dtype": X.dtype.name,
            "blake2b": digest.hexdigest()}


def _adopt(net: Network, loaded: Network, path: str | os.PathLike) -> None:
    """Give ``net`` the parameters and generator state of the checkpoint's network."""
    if net.sizes != loaded.sizes or net.dtype != loaded.dtype:
        raise ValueError(
            f"checkpoint {str(path)!r} holds a {loaded.sizes} {loaded.dtype.name} network; "
            f"it cannot resume training of a {net.sizes} {net.dtype.name} one")
    net.weights = [w.copy() for w in loaded.weights]
    net.biases = [b.copy() for b in loaded.biases]
    net.rng = loaded.rng
    net.seed = loaded.seed


def _checkpoint_from_meta(training: dict, arrays: dict[str, np.ndarray],
                          net: Network) -> Checkpoint:
    def integer(value: Any, name: str, minimum: int) -> int:
        return check.check_int(value, f"training.{name}", minimum=minimum)

    version = training["version"]
    if not isinstance(version, int) or isinstance(version, bool) or not (
            1 <= version <= CHECKPOINT_VERSION):
        raise files.NetworkFileError(
            f"checkpoint version {version!r}; this loopbp reads version {CHECKPOINT_VERSION}")
    optimizer = training["optimizer"]
    name = optimizer["name"]
    if name not in OPTIMIZERS:
        raise files.NetworkFileError(
            f"the checkpoint uses the optimizer {name!r}, which this loopbp does not know")
    hyperparameters = optimizer["hyperparameters"]
    if not isinstance(hyperparameters, dict):
        raise TypeError("optimizer hyperparameters must be a mapping")
    optimizer_arrays = {a: arrays[f"optimizer.{a}"] for a in optimizer["arrays"]}
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
            cost_sum=float(progress["cost_sum"]), seconds=float(progress["seconds"]),
            order=np.ascontiguousarray(order))
        if progress.epoch != epochs_done + 1 or not math.isfinite(progress.cost_sum):
            raise ValueError("progress does not follow the finished epochs")
    every = training["checkpoint_every"]
    data = training["data"]
    if data is not None and not isinstance(data, dict):
        raise TypeError("data fingerprint must be a mapping")
    return Checkpoint(
        epochs_done=epochs_done,
        epochs=integer(training["epochs"], "epochs", 0),
        mini_batch_size=integer(training["mini_batch_size"], "mini_batch_size", 1),
        eta=check.check_positive_float(training["eta"], "training.eta"),
        checkpoint_every=None if every is None else integer(every, "checkpoint_every", 1),
        history=history,
        optimizer=OptimizerState(name, hyperparameters, optimizer_arrays),
        progress=progress,
        data=data)
