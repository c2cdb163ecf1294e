"""Mini-batch stochastic gradient descent over a :class:`~loopbp.Network`.

An epoch shuffles the training rows with the network's generator, cuts them
into mini-batches and, for each, runs backprop and the update ``w ← w − η ∇C``.
The mini-batch loop itself runs in compiled code
(:func:`loopbp.kernels.train_mini_batches`); Python only calls it a few times
per epoch, for the progress bar, Ctrl-C and divergence checks:

* **Ctrl-C** raises ``KeyboardInterrupt`` between two compiled calls, that is
  between two mini-batches, so the parameters are never half updated.  ``sgd``
  catches it, marks the history ``interrupted`` and returns.
* **Divergence**: if a mini-batch's cost or the parameters stop being finite,
  the parameters go back to their values before the offending call and
  :class:`TrainingDiverged` names the epoch.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from . import _validation as check
from . import kernels
from ._jit import get_num_threads, parallel_guard, set_num_threads

if TYPE_CHECKING:
    from .network import Network

#: Target wall time of one compiled call, in seconds (progress and Ctrl-C granularity).
CALL_SECONDS = 0.1
#: Assumed speed for sizing the first call, in floating-point operations per second.
ASSUMED_FLOPS = 5e9


class TrainingDiverged(FloatingPointError):
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
    """Per-epoch records of one :func:`sgd` call."""

    records: list[EpochRecord] = field(default_factory=list)
    interrupted: bool = False  #: True when Ctrl-C stopped training early

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> EpochRecord:
        return self.records[i]

    @property
    def cost(self) -> list[float]:
        return [r.cost for r in self.records]

    @property
    def test_accuracy(self) -> list[float | None]:
        return [r.test_accuracy for r in self.records]

    @property
    def seconds(self) -> list[float]:
        return [r.seconds for r in self.records]

    def to_dict(self) -> dict[str, Any]:
        return {"records": [asdict(r) for r in self.records], "interrupted": self.interrupted}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls([EpochRecord(**r) for r in data["records"]], bool(data["interrupted"]))


def sgd(net: Network, X: Any, Y: Any, epochs: int, mini_batch_size: int, eta: float, *,
        test_data: tuple[Any, Any] | None = None, progress: bool = True,
        n_threads: int | None = None) -> History:
    """Train ``net`` in place with mini-batch stochastic gradient descent.

    Parameters
    ----------
    net : Network
    X : array_like, shape (n, sizes[0])
        Training inputs, one example per row.
    Y : array_like, shape (n, sizes[-1]) or (n,)
        Targets, or integer class labels (one-hot encoded here).
    epochs : int
        Passes over the data (0 trains nothing).
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

    Returns
    -------
    History
        One :class:`EpochRecord` per finished epoch.

    Raises
    ------
    TrainingDiverged
        When the cost becomes NaN or infinite; the parameters are left as they
        were before the failing stretch of mini-batches.
    """
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

    trainer = _Trainer(net, X, Y, mini_batch_size, eta)
    history = History()
    previous_threads = get_num_threads()
    bar = tqdm(total=epochs * X.shape[0], unit="ex", unit_scale=True, disable=not progress,
               desc="training", dynamic_ncols=True, leave=True)
    try:
        if n_threads is not None:
            set_num_threads(n_threads)
        for epoch in range(1, epochs + 1):
            record = trainer.epoch(epoch, bar)
            if test_data is not None:
                record.test_correct = net.evaluate(X_test, y_test)
                record.test_total = X_test.shape[0]
            history.records.append(record)
            if progress:
                bar.set_postfix_str(_describe(record), refresh=False)
                bar.write(f"epoch {epoch}/{epochs}: {_describe(record)}")
    except KeyboardInterrupt:
        history.interrupted = True
        if progress:
            bar.write(f"interrupted: {len(history)} full epoch(s) done; "
                      "parameters are those after the last finished mini-batch")
    finally:
        bar.close()
        if n_threads is not None:
            set_num_threads(previous_threads)
    return history


def _describe(record: EpochRecord) -> str:
    text = f"cost {record.cost:.5f}"
    if record.test_accuracy is not None:
        text += (f", test accuracy {record.test_correct}/{record.test_total} "
                 f"({100 * record.test_accuracy:.2f}%)")
    return text


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
        work = 6 * self.batch_size * sum(a * b for a, b in zip(net.sizes, net.sizes[1:]))
        self.batches_per_call = max(1, int(CALL_SECONDS * ASSUMED_FLOPS / work))

    def epoch(self, epoch: int, bar: tqdm) -> EpochRecord:
        net = self.net
        weights, biases = net.parameters()
        order = net.rng.permutation(self.X.shape[0])
        started = time.perf_counter()
        cost_sum = 0.0
        first = 0
        while first < self.n_batches:
            stop = min(first + self.batches_per_call, self.n_batches)
            saved = [w.copy() for w in net.weights], [b.copy() for b in net.biases]
            call_started = time.perf_counter()
            with parallel_guard():
                cost = kernels.train_mini_batches(
                    weights, biases, self.X, self.Y, order, first, stop, self.eta,
                    self.weights_T, self.nabla_w, self.nabla_b, self.ws_full, self.ws_tail)
            if not (math.isfinite(cost) and _all_finite(net.weights)
                    and _all_finite(net.biases)):
                for dest, src in zip(net.weights + net.biases, saved[0] + saved[1]):
                    dest[...] = src
                raise TrainingDiverged(
                    f"training diverged in epoch {epoch}: the cost or the parameters became "
                    f"NaN or infinite (learning rate eta={self.eta:g} is probably too large); "
                    "the parameters are left as they were before the failing mini-batches")
            cost_sum += cost
            self._resize_calls(stop - first, time.perf_counter() - call_started)
            rows = min(stop * self.batch_size, self.X.shape[0]) - first * self.batch_size
            bar.update(rows)
            first = stop
        return EpochRecord(epoch, cost_sum / self.X.shape[0], time.perf_counter() - started)

    def _resize_calls(self, batches: int, seconds: float) -> None:
        """Aim each compiled call at :data:`CALL_SECONDS` from the last one's speed."""
        if seconds > 0:
            rate = batches / seconds
            self.batches_per_call = max(1, min(int(rate * CALL_SECONDS), self.n_batches))


def _all_finite(arrays: list[np.ndarray]) -> bool:
    return all(np.isfinite(a).all() for a in arrays)
