"""Data-parallel training on a Dask cluster, over the same compiled kernels.

Two modes, each its own function:

:func:`sgd` — synchronous data parallelism, the same network as one process.
    The training rows are cut into *shards*, one per rank (a rank is a logical
    index; rank r's shard is kept in the memory of one Dask worker).  The
    client keeps the parameters and the optimizer's state.  For each
    mini-batch of the epoch — the rows ``order[m·B : (m+1)·B]`` of the same
    permutation ``net.rng.permutation(n)`` that :func:`loopbp.sgd` draws — the
    client sends the parameters to every rank holding some of its rows; rank r
    refreshes the transposed weights its kernels read (:func:`_transpose_where_read`),
    runs the forward and backward pass (I1–I7, M1–M6) over its *part* of the
    mini-batch and returns the *sum* of its rows' gradients (the kernels' mean
    times the part's rows).  The client adds the parts in rank order and
    divides by the mini-batch's rows (eq avg split by rank)::

        ∂C/∂w = (1/B) Σ_r Σ_{x ∈ part r} ∂C_x/∂w

    then applies the optimizer's update (eq sgd, l2, momentum, nesterov, adam)
    once, with the compiled :func:`loopbp.kernels.update` and the step count
    of :func:`loopbp.kernels.train_mini_batches`.  Only the order of the sums
    over x differs from one process, so the parameters agree with
    :func:`loopbp.sgd`'s to rounding (float64: within 1e-9 of each array's
    largest entry).

:func:`local_sgd` — local SGD, a different algorithm (never chosen silently).
    Each rank runs ``sync_every`` mini-batch steps of plain SGD on its own
    shard with its own copy of the parameters (the compiled epoch driver, no
    round trip per step); then the client averages the copies, weighting each
    by the rows it trained on in that round.  With one rank it is exactly
    :func:`loopbp.sgd`; with several it is not, and converges differently.

Why the tasks can be retried
----------------------------
Every task is a pure function of its inputs (a shard, the parameters, the
rows) under a key made of this run's random prefix and the step's
coordinates; only the client changes parameters.  If a worker dies, its lost
tasks run again elsewhere and return the same sums, and the update is still
applied once.  A shard lost with its worker is rebuilt from its source: a
``dask.array`` shard by the scheduler from the array's own graph; a NumPy
shard by the client, which scatters the same rows again.

Workers run the serial twins of the kernels (one thread each, no
oversubscription of a worker's core) unless ``worker_threads`` says
otherwise; the threading layer is :mod:`loopbp._jit`'s choice, TBB (thread-
and fork-safe) where installed.  Kernels are compiled, or loaded from numba's
cache, on every worker (:meth:`distributed.Client.run`) before the first
step, so that no step waits for a compiler.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
from tqdm import tqdm

try:
    import dask
    import dask.array as da
    import distributed
except ImportError as err:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "loopbp.distributed needs Dask's distributed scheduler; install the extra with "
        "pip install 'loopbp[dask]'") from err

from . import _validation as check
from . import kernels
from ._jit import parallel_guard, serial, set_num_threads
from .checkpoints import (
    Checkpoint,
    EpochProgress,
    fingerprint,
    load_checkpoint,
    resumed_validation_rows,
)
from .history import EpochRecord, History
from .network import kernels_for, typed_list, workspace
from .optimizers import STATE_ARRAYS, OptimizerState
from .schedules import Schedule
from .training import (
    CALL_SECONDS,
    Settings,
    TrainingDiverged,
    _adopt,
    _check_resumable,
    _Evaluation,
    _labels_of,
    _settings,
    _StopRequest,
    checkpoint_writer,
    diverged,
    epoch_start,
    holdout_rows,
    run_epochs,
    starting_point,
)

if TYPE_CHECKING:
    from .network import Network

__all__ = ["connect", "local_sgd", "sgd"]

#: Seconds to wait for a scheduler given by address before giving up.
CONNECT_TIMEOUT = 10
#: Times one step is submitted again after a shard was lost with its worker.
MAX_ATTEMPTS = 4
#: Parameters of at least this many bytes go to the workers by one scatter per step;
#: smaller ones travel inside the tasks (one message less per step).
SCATTER_BYTES = 1 << 20
#: Rows of a shard fetched at a time when the client hashes ``dask.array`` data.
HASH_ROWS = 65_536
#: Workspaces a worker thread keeps, one per part size (the sizes vary from step to step).
WORKSPACES_KEPT = 8


# --- the client side: connecting -------------------------------------------------------


def connect(client: distributed.Client | str) -> tuple[distributed.Client, bool]:
    """A running :class:`distributed.Client` for ``client``, and whether we opened it.

    ``client`` is a ``Client`` (which must not be closed) or a scheduler's
    address such as ``"tcp://10.0.0.5:8786"`` (connected to here, within
    :data:`CONNECT_TIMEOUT` seconds).  A client opened here is closed again
    when the cluster turns out to have no workers.

    Raises
    ------
    TypeError
        For anything else.
    ValueError
        For a closed client, an address Dask cannot parse, or a cluster
        without workers.
    OSError
        When no scheduler answers at the address.
    """
    opened = False
    if isinstance(client, str):
        address = client.strip()
        if not address:
            raise ValueError("client must be a dask.distributed Client or a scheduler "
                             "address such as 'tcp://10.0.0.5:8786', got an empty string")
        _probe(address)
        try:
            client = distributed.Client(address, timeout=CONNECT_TIMEOUT,
                                        set_as_default=False)
        except ValueError as err:  # Dask's parser: no port, unknown protocol
            raise ValueError(f"client={address!r} is not a Dask scheduler address: "
                             f"{err}") from err
        except (OSError, TimeoutError) as err:
            raise OSError(f"cannot reach a Dask scheduler at {address!r} within "
                          f"{CONNECT_TIMEOUT} s: {err}") from err
        opened = True
    if not isinstance(client, distributed.Client):
        raise TypeError(f"client must be a dask.distributed Client or a scheduler address, "
                        f"got {type(client).__name__}")
    if client.status != "running":
        raise ValueError(f"the Dask client is {client.status}, not running: open a new "
                         "Client (or pass the scheduler's address)")
    if not _workers(client):
        if opened:
            client.close()
        raise ValueError("the Dask cluster has no workers")
    return client, opened


def _probe(address: str) -> None:
    """Refuse a TCP address where nothing listens, before a ``Client`` is made for it.

    A ``Client`` whose connection failed is left half-started, and closing it
    when it is garbage-collected can block for good; a plain socket first
    avoids making one at all.
    """
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        host, port = parse_host_port(location) if scheme == "tcp" else (None, None)
    except ValueError as err:  # no port, unknown protocol
        raise ValueError(f"client={address!r} is not a Dask scheduler address: {err}") from err
    if host is None:
        return
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as err:
        raise OSError(f"cannot reach a Dask scheduler at {address!r} within "
                      f"{CONNECT_TIMEOUT} s: {err}") from err


def _workers(client: distributed.Client) -> list[str]:
    """The workers' addresses, sorted (rank r's shard goes to worker r mod their count)."""
    return sorted(client.scheduler_info(n_workers=-1)["workers"])


# --- the worker side: pure functions of their arguments --------------------------------


@dataclass
class _Shard:
    """Rank r's training rows on its worker: inputs and targets in the network's dtype."""

    X: np.ndarray
    Y: np.ndarray


class _TargetRules:
    """The part of a :class:`Network` that :meth:`Network.targets` reads (no parameters).

    Shards are converted on the worker that holds them; shipping the network
    there only to check targets would send its weights for nothing.
    """

    def __init__(self, sizes: list[int], cost: str, dtype: np.dtype) -> None:
        self.sizes, self.cost, self.dtype = sizes, cost, dtype

    def check(self, X: Any, Y: Any, width: int) -> _Shard:
        from .network import Network

        X = check.as_inputs(X, "X", width, self.dtype)
        Y = Network.targets(self, Y, "Y", X.shape[0])  # type: ignore[arg-type]
        return _Shard(X, Y)


def _shard_from_blocks(x_rows: list[list[np.ndarray]], y_blocks: list[np.ndarray],
                       rules: _TargetRules) -> _Shard:
    """Join a shard's chunks (rows in order; columns of a row chunk side by side) and convert."""
    X = np.concatenate([np.concatenate(row, axis=1) if len(row) > 1 else row[0]
                        for row in x_rows], axis=0)
    Y = np.concatenate([np.asarray(y) for y in y_blocks], axis=0)
    return rules.check(X, Y, rules.sizes[0])


def _shard_labels(shard: _Shard, given_1d: bool) -> np.ndarray | None:
    """The shard's class labels as :func:`loopbp.training._labels_of` reads them."""
    return _labels_of(np.empty(0) if given_1d else shard.Y, shard.Y)


def _shard_rows(shard: _Shard, which: str, start: int, stop: int) -> np.ndarray:
    """A slice of the shard's inputs (``"X"``) or targets (``"Y"``), for hashing."""
    return np.array(getattr(shard, which)[start:stop])


def _shard_take(shard: _Shard, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Copies of the shard's ``rows`` (the held-out validation rows)."""
    return shard.X[rows], shard.Y[rows]


def _shard_drop(shard: _Shard, rows: np.ndarray) -> _Shard:
    """The shard without ``rows`` (they were held out for validation)."""
    keep = np.ones(shard.X.shape[0], bool)
    keep[rows] = False
    return _Shard(np.ascontiguousarray(shard.X[keep]), np.ascontiguousarray(shard.Y[keep]))


class _StepBuffers:
    """A worker thread's arrays for one network shape, reused from step to step.

    The parameters arrive in a message, possibly as read-only views; they
    are copied into writable C arrays here, so that the kernels see one
    compiled signature everywhere.  The typed lists share those arrays'
    memory.  Workspaces are sized by the part's rows, which vary from step
    to step: only the :data:`WORKSPACES_KEPT` most recently used are kept.
    """

    def __init__(self, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray]) -> None:
        dtype = weights[0].dtype
        self.sizes = [weights[0].shape[1]] + [w.shape[0] for w in weights]
        self.weights = [np.empty_like(w, order="C") for w in weights]
        self.biases = [np.empty_like(b, order="C") for b in biases]
        self.w, self.b = typed_list(self.weights), typed_list(self.biases)
        unused = np.empty((0, 0), dtype)  # a layer whose kernels never read its transpose
        self.w_T = typed_list([np.zeros(w.shape[::-1], dtype)
                               if kernels.needs_transpose(w, i >= 1) else unused
                               for i, w in enumerate(weights)])
        self.nabla_w = typed_list([np.zeros_like(w) for w in self.weights])
        self.nabla_b = typed_list([np.zeros_like(b) for b in self.biases])
        self.workspaces: collections.OrderedDict[int, tuple] = collections.OrderedDict()

    @staticmethod
    def of_thread(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray]) -> _StepBuffers:
        """This thread's buffers for the shape of ``weights`` (new ones for a new shape)."""
        key = (tuple(w.shape for w in weights), weights[0].dtype.str)
        if getattr(_THREAD, "key", None) != key:
            _THREAD.key, _THREAD.buffers = key, _StepBuffers(weights, biases)
        return _THREAD.buffers

    def load(self, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray]) -> None:
        for dest, src in zip(self.weights + self.biases, [*weights, *biases]):
            np.copyto(dest, src)

    def workspace(self, rows: int) -> tuple:
        if rows in self.workspaces:
            self.workspaces.move_to_end(rows)
        else:
            if len(self.workspaces) >= WORKSPACES_KEPT:
                self.workspaces.popitem(last=False)
            self.workspaces[rows] = workspace(self.sizes, rows, self.weights[0].dtype)
        return self.workspaces[rows]


#: The buffers of this worker thread (:meth:`_StepBuffers.of_thread`).
_THREAD = threading.local()


def _worker_kernels(sizes: Sequence[int], rows: int, threads: int) -> Any:
    """Serial twins on one thread (no thread pool to start or share); else as one process."""
    if threads == 1:
        return kernels.SERIAL
    set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # per thread in numba
    return kernels_for(sizes, rows)


def _transpose_where_read(k: Any, weights: Any, weights_T: Any) -> None:
    """``weights_T[i] ← weights[i]ᵀ`` for every layer whose kernels read the transpose.

    :func:`loopbp.kernels.forward_layer` reads it for short sums (any layer,
    the first included) and :func:`loopbp.kernels.hidden_error` for layers
    i >= 1 outside the row form (:func:`loopbp.kernels.needs_transpose`).
    A transpose left stale there is read silently: wrong sums, no error.
    """
    for i in range(len(weights)):
        if kernels.needs_transpose(weights[i], i >= 1):
            k.transpose(weights[i], weights_T[i])


def _part_gradient(shard: _Shard, rows: np.ndarray, params: tuple[list, list],
                   f_codes: np.ndarray, cost: int, threads: int, kernel_set: Any = None
                   ) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    """Rank r's share of one mini-batch: ``Σ_x C_x`` and ``Σ_x ∂C_x/∂w``, ``Σ_x ∂C_x/∂b``.

    ``rows`` index the shard.  The kernels return means over the part (eq
    avg); times the part's rows they are the sums the client adds up.
    ``kernel_set`` overrides the choice of :func:`_worker_kernels` (for
    :func:`_warm_up` only).
    """
    weights, biases = params
    n = rows.shape[0]
    buffers = _StepBuffers.of_thread(weights, biases)
    buffers.load(weights, biases)
    ws = buffers.workspace(n)
    np.take(shard.X, rows, axis=0, out=ws[0][0])
    np.take(shard.Y, rows, axis=0, out=ws[1])
    k = _worker_kernels(buffers.sizes, n, threads) if kernel_set is None else kernel_set
    w, w_T, nabla_w, nabla_b = buffers.w, buffers.w_T, buffers.nabla_w, buffers.nabla_b
    with parallel_guard():
        _transpose_where_read(k, w, w_T)  # w changed since the last step
        mean_cost = k.backprop(w, buffers.b, w_T, nabla_w, nabla_b, ws, f_codes, cost,
                               np.empty(0, buffers.weights[0].dtype))
    return n * float(mean_cost), [n * g for g in nabla_w], [n * g for g in nabla_b]


def _local_round(shard: _Shard, params: tuple[list, list], order: np.ndarray, first: int,
                 stop: int, batch_size: int, f_codes: np.ndarray, cost: int, hyper: np.ndarray,
                 threads: int, kernel_set: Any = None
                 ) -> tuple[int, float, list[np.ndarray], list[np.ndarray]]:
    """Local SGD: mini-batches ``first … stop-1`` of this rank's ``order``, from ``params``.

    Runs the compiled epoch driver :func:`loopbp.kernels.train_mini_batches`
    (plain SGD, eq sgd and l2; it keeps the transposes it reads up to date
    itself) on the shard alone and returns the rows trained on, their summed
    cost and the parameters reached (new arrays).  ``kernel_set`` as for
    :func:`_part_gradient`.
    """
    weights = [np.array(x) for x in params[0]]
    biases = [np.array(x) for x in params[1]]
    sizes = [weights[0].shape[1]] + [x.shape[0] for x in weights]
    dtype = weights[0].dtype
    n = order.shape[0]
    B = min(batch_size, n)
    tail = n - (math.ceil(n / B) - 1) * B
    ws_full = workspace(sizes, B, dtype)
    ws_tail = ws_full if tail == B else workspace(sizes, tail, dtype)
    w, b = typed_list(weights), typed_list(biases)
    nabla_w = typed_list([np.zeros_like(x) for x in weights])
    nabla_b = typed_list([np.zeros_like(x) for x in biases])
    w_T = typed_list([np.zeros(x.shape[::-1], dtype) for x in weights])
    empty = np.empty(0, dtype)
    X = np.require(shard.X, requirements=["C", "W"])
    Y = np.require(shard.Y, requirements=["C", "W"])
    batch_costs = np.zeros(math.ceil(n / B))
    k = _worker_kernels(sizes, B, threads) if kernel_set is None else kernel_set
    with parallel_guard():
        cost_sum = k.train_mini_batches(
            w, b, X, Y, empty, order, first, stop, f_codes, cost, 0, hyper,
            nabla_w, nabla_b, nabla_w, nabla_b, np.zeros(1, np.int64), w_T, nabla_w, nabla_b,
            ws_full, ws_tail, empty, empty, batch_costs)
    rows = min(stop * B, n) - first * B
    return rows, float(cost_sum), weights, biases


def _warm_up(sizes: list[int], f_codes: np.ndarray, cost: int, dtype: str, threads: int,
             local: bool) -> str:
    """Compile (or load from numba's cache) the kernels a worker runs; return its layer.

    Run once per worker through :meth:`distributed.Client.run` before the
    first step, so that no step's task spends its time in the compiler.
    """
    from ._jit import threading_layer

    rng = np.random.default_rng(0)
    dt = np.dtype(dtype)
    weights = [rng.standard_normal((o, i)).astype(dt) for i, o in itertools.pairwise(sizes)]
    biases = [np.zeros(o, dt) for o in sizes[1:]]
    rows = 2
    X = rng.random((rows, sizes[0])).astype(dt)
    Y = np.full((rows, sizes[-1]), 1 / sizes[-1], dt)
    shard = _Shard(X, Y)
    # with several threads a step takes the parallel kernels or their serial twins,
    # by its work (_worker_kernels): compile both
    kernel_sets = [kernels.SERIAL] if threads == 1 else [kernels.SERIAL, kernels]
    if threads > 1:
        set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    for k in kernel_sets:
        if local:
            hyper = np.array([1e-3, 0.0, 0.0, 0.9, 0.999, 1e-8, 0.0])
            _local_round(shard, (weights, biases), np.arange(rows), 0, 1, rows, f_codes, cost,
                         hyper, threads, kernel_set=k)
        else:
            _part_gradient(shard, np.arange(rows), (weights, biases), f_codes, cost, threads,
                           kernel_set=k)
    return threading_layer()


@serial
def _bias_corrections(beta1, beta2, t):
    """``(1 − β1^t, 1 − β2^t)`` compiled as in the epoch driver, so Adam's steps round alike."""
    return 1 - beta1 ** t, 1 - beta2 ** t


# --- the client side: shards -------------------------------------------------------


class _Shards:
    """The futures of every rank's shard, the rows each holds, and how to rebuild them."""

    def __init__(self, client: distributed.Client, futures: list[distributed.Future],
                 rows: Sequence[int], sources: list[_Shard] | None) -> None:
        self.client, self.futures = client, futures
        self.rows = np.asarray(rows, dtype=np.int64)
        #: first global row of each rank, and the total (len = ranks + 1)
        self.bounds = np.concatenate([[0], np.cumsum(self.rows)]).astype(np.int64)
        #: NumPy data kept on the client to scatter again when a worker is lost
        self.sources = sources
        #: the worker holding each shard, where its rank's tasks are sent
        self.homes: list[str | None] = [None] * len(futures)

    def locate(self) -> None:
        """Find the worker of every shard (after a loss the scheduler may have moved one).

        Each rank's tasks are asked to run there: the scheduler would otherwise
        be free to run two ranks on one worker and copy a shard across, which
        costs time and memory on every step.
        """
        who_has = self.client.who_has(self.futures)
        self.homes = [min(who_has.get(f.key, ()), default=None) for f in self.futures]

    def submit(self, rank: int, function: Any, *args: Any, key: str) -> distributed.Future:
        """``function(shard, *args)`` as a task of rank ``rank``, on its shard's worker."""
        home = self.homes[rank]
        return self.client.submit(function, self.futures[rank], *args, key=key,
                                  workers=None if home is None else [home],
                                  allow_other_workers=True)

    @property
    def n(self) -> int:
        return int(self.bounds[-1])

    @classmethod
    def scatter(cls, client: distributed.Client, X: np.ndarray, Y: np.ndarray,
                ranks: int) -> _Shards:
        """Cut NumPy rows into ``ranks`` near-equal contiguous shards; scatter one per worker."""
        edges = np.linspace(0, X.shape[0], ranks + 1).round().astype(np.int64)
        sources = [_Shard(X[a:b], Y[a:b]) for a, b in itertools.pairwise(edges) if b > a]
        shards = cls(client, [], [s.X.shape[0] for s in sources], sources)
        shards.futures = [shards._send(r) for r in range(len(sources))]
        shards.locate()
        return shards

    def _send(self, rank: int) -> distributed.Future:
        workers = _workers(self.client)
        return self.client.scatter(self.sources[rank], workers=[workers[rank % len(workers)]],
                                   hash=False)

    def recover(self) -> bool:
        """Scatter again every NumPy shard lost with its worker; whether any was.

        A ``dask.array`` shard needs nothing from here: the scheduler computes
        it again from the array's graph.  Either way the shards' workers are
        looked up again, as a lost one may have moved.
        """
        lost = [r for r, f in enumerate(self.futures) if f.status != "finished"]
        sent = bool(lost) and self.sources is not None
        if sent:
            for r in lost:
                self.futures[r] = self._send(r)
        self.locate()
        return sent

    def parts(self, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each entry of ``order`` (global rows): its rank and its row within the shard."""
        rank = np.searchsorted(self.bounds, order, side="right") - 1
        return rank, order - self.bounds[rank]

    def map(self, function: Any, *args: Any, key: str) -> list[Any]:
        """``function(shard_r, *args)`` on every rank, gathered in rank order."""
        futures = [self.submit(r, function, *args, key=f"{key}-{r}")
                   for r in range(len(self.futures))]
        return self.client.gather(futures)

    def release(self) -> None:
        for future in self.futures:
            future.release()
        self.futures = []


def _dask_pair(X: Any, Y: Any, width: int, n_out: int) -> tuple[da.Array, da.Array]:
    """``X`` and ``Y`` as ``dask.array``s whose row chunks line up, their shapes checked.

    One of the two may be a NumPy array (or array-like): it is cut into the
    other's row chunks.  Only shapes are checked here, from the arrays'
    metadata; the values are checked on the workers, shard by shard
    (:class:`_TargetRules`), so that the client never computes the data.
    """
    if not _is_dask(X):
        X = check._as_numeric_array(X, "X")
    if not _is_dask(Y):
        Y = check._as_numeric_array(Y, "Y")
    for name, a in (("X", X), ("Y", Y)):
        if any(math.isnan(s) for s in a.shape):
            raise ValueError(f"{name} must have known chunk sizes (call "
                             f"{name}.compute_chunk_sizes() on an array of unknown length)")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D with shape (n_examples, {width}), got "
                         f"{X.ndim}-D shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError("X is empty: it must have at least one row")
    if X.shape[1] != width:
        raise ValueError(f"X must have {width} columns (the input layer's size), "
                         f"got {X.shape[1]}")
    if Y.ndim not in (1, 2):
        raise ValueError(f"Y must be targets (n, {n_out}) or labels (n,), got shape {Y.shape}")
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
    if Y.ndim == 2 and Y.shape[1] != n_out:
        raise ValueError(f"Y must have shape {(X.shape[0], n_out)} to match the inputs and the "
                         f"output layer, got {Y.shape}")
    if not _is_dask(X):
        X = da.from_array(X, chunks=(Y.chunks[0], -1))
    if not _is_dask(Y):
        Y = da.from_array(Y, chunks=(X.chunks[0],) + (-1,) * (Y.ndim - 1))
    if X.chunks[0] != Y.chunks[0]:
        raise ValueError(f"the row chunks of X and Y must line up, so that each worker holds "
                         f"the targets of its inputs: X has {X.chunks[0]}, Y has "
                         f"{Y.chunks[0]}; rechunk one like the other "
                         "(Y = Y.rechunk({0: X.chunks[0]}))")
    if Y.ndim == 2 and len(Y.chunks[1]) > 1:
        Y = Y.rechunk({1: -1})  # a row of targets is small; whole rows keep one block per chunk
    return X, Y


def _dask_shards(client: distributed.Client, X: da.Array, Y: da.Array, rules: _TargetRules,
                 ranks: int) -> _Shards:
    """Shards built on the workers from the chunks of ``X`` and ``Y`` (see :func:`_dask_pair`).

    Consecutive non-empty row chunks are grouped into at most ``ranks``
    shards (each chunk goes to the rank its middle row falls in), and each
    shard is computed from its chunks on one worker: the client never sees
    the data, and the scheduler can recompute a lost shard from the arrays'
    graph.  A chunk's bad values raise the worker's ValueError or TypeError
    here, and no shard is left behind on the cluster.
    """
    sizes = np.asarray(X.chunks[0], dtype=np.int64)
    middles = np.cumsum(sizes) - sizes / 2
    rank_of_chunk = np.minimum((middles * ranks / X.shape[0]).astype(np.int64), ranks - 1)
    rank_of_chunk[sizes == 0] = -1  # an empty chunk belongs to no shard
    x_blocks, y_blocks = X.to_delayed(), Y.to_delayed()
    workers = _workers(client)
    futures, rows = [], []
    for r in np.unique(rank_of_chunk[rank_of_chunk >= 0]):
        chunks = np.flatnonzero(rank_of_chunk == r)
        x_rows = [list(x_blocks[c]) for c in chunks]
        y_rows = [y_blocks[c] if Y.ndim == 1 else y_blocks[c][0] for c in chunks]
        shard = dask.delayed(_shard_from_blocks, pure=True)(x_rows, y_rows, rules)
        futures.append(client.compute(shard, workers=[workers[len(futures) % len(workers)]],
                                      allow_other_workers=True))
        rows.append(int(sizes[chunks].sum()))
    shards = _Shards(client, futures, rows, None)
    try:
        _wait(client, futures)
    except BaseException:
        shards.release()
        raise
    shards.locate()
    return shards


def _wait(client: distributed.Client, futures: list[distributed.Future]) -> None:
    """Wait for ``futures`` without fetching them; raise a task's error as the worker did."""
    with client.as_current():  # the client need not be the default one
        distributed.wait(futures)
    for future in futures:
        if future.status == "error":
            future.result()  # a ValueError/TypeError from the checks, naming the problem


def _is_dask(a: Any) -> bool:
    return isinstance(a, da.Array)


# --- the client side: preparing a run ----------------------------------------------


@dataclass
class _Prepared:
    shards: _Shards
    validation: _Evaluation | None
    tests: tuple[np.ndarray, np.ndarray] | None
    held_out: np.ndarray | None
    data_print: dict | None


def _evaluation_data(net: Network, settings: Settings, validation_data: Any,
                     test_data: Any) -> tuple[_Evaluation | None, tuple | None]:
    """Validation and test data, measured on the client after each epoch (as in one process)."""
    def local(a: Any) -> Any:
        return a.compute() if _is_dask(a) else a

    tests = validation = None
    if test_data is not None:
        if not isinstance(test_data, tuple | list) or len(test_data) != 2:
            raise TypeError("test_data must be a pair (X_test, y_test)")
        X_test = check.as_inputs(local(test_data[0]), "test_data[0]", net.sizes[0], net.dtype)
        tests = (X_test, check.as_labels(local(test_data[1]), "test_data[1]",
                                          X_test.shape[0], net.sizes[-1]))
    if validation_data is not None and settings.validation_fraction is not None:
        raise ValueError("give either validation_data or validation_fraction, not both")
    if validation_data is not None:
        if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (X_val, Y_val)")
        X_val = check.as_inputs(local(validation_data[0]), "validation_data[0]",
                                net.sizes[0], net.dtype)
        given = local(validation_data[1])
        Y_val = net.targets(given, "validation_data[1]", X_val.shape[0])
        validation = _Evaluation(X_val, Y_val, _labels_of(given, Y_val))
    if settings.early_stopping is not None and validation_data is None \
            and settings.validation_fraction is None:
        raise ValueError("early_stopping needs validation data: pass validation_data=(X, Y) "
                         "or validation_fraction")
    return validation, tests


def _prepare(client: distributed.Client, net: Network, X: Any, Y: Any, settings: Settings,
             validation_data: Any, test_data: Any, start: Checkpoint | None,
             ranks: int) -> _Prepared:
    """Check the data, hold out validation rows, and put one shard on each worker.

    The same steps, in the same order, as :func:`loopbp.training._train`
    (the generator draws the held-out rows before any epoch's order).  When
    a check fails, the shards already on the cluster are released.
    """
    s = settings
    validation, tests = _evaluation_data(net, s, validation_data, test_data)
    net.parameters()  # refuses parameters of the wrong shape, NaN or infinity
    want_print = s.checkpoint is not None or start is not None
    given_1d = np.ndim(Y) == 1
    shards = None
    try:
        if _is_dask(X) or _is_dask(Y):
            X, Y = _dask_pair(X, Y, net.sizes[0], net.sizes[-1])
            shards = _dask_shards(client, X, Y, _TargetRules(net.sizes, net.cost, net.dtype),
                                  ranks)
            data_print = _streamed_fingerprint(shards, net) if want_print else None
            labels = None
            if s.validation_fraction is not None and not (start and start.validation_index
                                                          is not None):
                parts = shards.map(_shard_labels, given_1d,
                                   key=f"loopbp-labels-{uuid.uuid4()}")
                labels = None if any(p is None for p in parts) else np.concatenate(parts)
        else:
            X = check.as_inputs(X, "X", net.sizes[0], net.dtype)
            Y_given, Y = Y, net.targets(Y, "Y", X.shape[0])
            data_print = fingerprint(X, Y) if want_print else None
            labels = _labels_of(Y_given, Y) if s.validation_fraction is not None else None
        n = X.shape[0]
        if start is not None and start.data is not None and start.data != data_print:
            raise ValueError(
                "the checkpoint was written while training on other data "
                f"({start.data.get('X_shape')} inputs); resume needs the run's own X and Y")

        held_out = None
        if s.validation_fraction is not None:
            if start is not None and start.validation_index is not None:
                held_out = resumed_validation_rows(start, n)
            else:
                held_out = holdout_rows(labels, n, s.validation_fraction, net.rng)
            if shards is None:
                keep = np.ones(n, bool)
                keep[held_out] = False
                X_val, Y_val = X[held_out], Y[held_out]
                X, Y = np.ascontiguousarray(X[keep]), np.ascontiguousarray(Y[keep])
            else:
                X_val, Y_val, shards = _split_off(shards, held_out)
            validation = _Evaluation(X_val, Y_val,
                                     _labels_of(np.empty(0) if given_1d else Y_val, Y_val))
        if s.early_stopping is not None and s.monitor == "accuracy" \
                and validation.labels is None:
            raise ValueError("monitor='accuracy' needs validation labels (or one-hot targets)")
        if shards is None:
            shards = _Shards.scatter(client, X, Y, min(ranks, X.shape[0]))
    except BaseException:
        if shards is not None:
            shards.release()
        raise
    return _Prepared(shards, validation, tests, held_out, data_print)


def _split_off(shards: _Shards, held_out: np.ndarray) -> tuple[np.ndarray, np.ndarray, _Shards]:
    """Fetch the held-out rows (only those) and leave every shard without them."""
    rank, local = shards.parts(held_out)
    token = uuid.uuid4()
    client = shards.client
    taken, futures, rows = [], [], []
    for r in range(len(shards.futures)):
        mine = local[rank == r]
        taken.append(shards.submit(r, _shard_take, mine, key=f"loopbp-take-{token}-{r}"))
        futures.append(shards.submit(r, _shard_drop, mine, key=f"loopbp-drop-{token}-{r}"))
        rows.append(int(shards.rows[r]) - mine.size)
    kept = _Shards(client, futures, rows, None)
    try:
        parts = client.gather(taken)
        _wait(client, futures)
    except BaseException:
        kept.release()
        raise
    X_val = np.concatenate([p[0] for p in parts])
    Y_val = np.concatenate([p[1] for p in parts])
    kept.locate()
    shards.release()
    return X_val, Y_val, kept


def _streamed_fingerprint(shards: _Shards, net: Network) -> dict[str, Any]:
    """:func:`loopbp.checkpoints.fingerprint` of sharded data, fetched a slice at a time.

    The hash reads X's rows in order, then Y's; each slice is hashed and
    dropped, so the client holds at most :data:`HASH_ROWS` rows at once and
    checkpoints of a distributed run fit the single-process fingerprint.
    """
    import hashlib

    n, width, n_out = shards.n, net.sizes[0], net.sizes[-1]
    digest = hashlib.blake2b(digest_size=16)
    token = uuid.uuid4()
    for which, shape in (("X", (n, width)), ("Y", (n, n_out))):
        digest.update(repr((shape, net.dtype.str)).encode())
        for r in range(len(shards.futures)):
            for a in range(0, int(shards.rows[r]), HASH_ROWS):
                piece = shards.submit(r, _shard_rows, which, a, a + HASH_ROWS,
                                      key=f"loopbp-hash-{token}-{which}-{r}-{a}").result()
                digest.update(memoryview(np.ascontiguousarray(piece)).cast("B"))
    return {"X_shape": [n, width], "Y_shape": [n, n_out], "dtype": net.dtype.name,
            "blake2b": digest.hexdigest()}


# --- the client side: the synchronous trainer ---------------------------------------


class _Stop(_StopRequest):
    """Ctrl-C as in :func:`loopbp.sgd`, and never while the client applies an update.

    In one process the update runs inside compiled code, which a signal cannot
    cut in two; here it is a Python loop over layers, so a second Ctrl-C that
    arrives during it is held until the update is complete.
    """

    def __init__(self) -> None:
        super().__init__()
        self._updating = False
        self._held = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self._updating and self.requested:
            self._held = True
            return
        super()._handler(signum, frame)

    @contextmanager
    def updating(self) -> Iterator[None]:
        self._updating = True
        try:
            yield
        finally:
            self._updating = False
            if self._held:
                self._held = False
                raise KeyboardInterrupt


def _send_params(client: distributed.Client, net: Network) -> Any:
    """The parameters as a task argument: the arrays, or a future of them when they are big.

    Big parameters are scattered once to every worker rather than once per
    task through the scheduler (which also warns about large task graphs).
    """
    params = (net.weights, net.biases)
    if sum(p.nbytes for p in [*net.weights, *net.biases]) < SCATTER_BYTES:
        return params
    return client.scatter([params], broadcast=True, hash=False, direct=True)[0]


class _SyncTrainer:
    """The epoch loop of :func:`sgd`: parts of each mini-batch on the ranks, the update here.

    Mirrors :class:`loopbp.training._Trainer` (same order, same mini-batches,
    same step count and rollback on divergence); only ``_step`` differs.
    """

    def __init__(self, net: Network, shards: _Shards, batch_size: int, settings: Settings,
                 state: OptimizerState, decay: float, worker_threads: int) -> None:
        self.net, self.shards = net, shards
        self.optimizer, self.decay = settings.optimizer, decay
        self.client = shards.client
        n = shards.n
        self.batch_size = min(batch_size, n)
        self.n_batches = math.ceil(n / self.batch_size)
        self.worker_threads = worker_threads
        self.nabla_w = [np.zeros_like(w) for w in net.weights]
        self.nabla_b = [np.zeros_like(b) for b in net.biases]
        self.kernels = kernels_for(net.sizes, self.batch_size)
        self.batch_costs = np.zeros(self.n_batches)
        self.state_arrays, self.hyperparameters = state.arrays, state.hyperparameters
        self.step = int(state.step)
        self.state = []  # v_w, v_b, m_w, m_b per layer (the gradients where none are kept)
        for kind in ("v", "m"):
            layers = range(len(net.weights))
            if kind in STATE_ARRAYS[self.optimizer.name]:
                self.state.append([state.arrays[f"{kind}{i}"] for i in layers])
                self.state.append([state.arrays[f"{kind}b{i}"] for i in layers])
            else:
                self.state += [self.nabla_w, self.nabla_b]
        self.f_codes, self.cost_code = net.f_codes, net.cost_code
        self.saved = [np.empty_like(a) for a in self._rolled_back()]
        self.saved_step = self.step
        #: every task key of this run starts so (unique to the run, then the step's coordinates)
        self.run = f"loopbp-{uuid.uuid4().hex[:12]}"
        self.progress: EpochProgress | None = None
        self.stop: _Stop | None = None

    def _rolled_back(self) -> list[np.ndarray]:
        return [*self.net.weights, *self.net.biases, *self.state_arrays.values()]

    def optimizer_state(self) -> OptimizerState:
        return OptimizerState(self.optimizer.name, self.hyperparameters, self.state_arrays,
                              self.step)

    def epoch(self, epoch: int, eta: float, bar: tqdm, stop: _Stop,
              resume_at: EpochProgress | None = None) -> EpochRecord | None:
        """Run one epoch at rate ``eta``; None when a stop request ended it early."""
        n = self.shards.n
        order, first, cost_before, spent = epoch_start(self.net, n, self.batch_size, resume_at,
                                                       bar)
        rank, local = self.shards.parts(order)
        self.shards.locate()
        epoch_first = first
        started = time.perf_counter()
        stretch_started = started
        self._save(first)
        m = first
        while m < self.n_batches:
            if stop.requested:
                cost_sum = cost_before + math.fsum(self.batch_costs[epoch_first:m])
                self.progress = EpochProgress(epoch, m, cost_sum,
                                              spent + time.perf_counter() - started, order)
                return None
            self.batch_costs[m] = self._step(epoch, m, eta, rank, local, stop)
            m += 1
            bar.update(min(m * self.batch_size, n) - (m - 1) * self.batch_size)
            # divergence is judged per stretch of about CALL_SECONDS, as in one process
            last = m == self.n_batches
            if last or time.perf_counter() - stretch_started >= CALL_SECONDS \
                    or not math.isfinite(self.batch_costs[m - 1]):
                self._check(epoch, eta, self.batch_costs[self.saved_at:m])
                self._save(m)
                stretch_started = time.perf_counter()
        cost_sum = cost_before + math.fsum(self.batch_costs[epoch_first:])
        return EpochRecord(epoch, cost_sum / n, spent + time.perf_counter() - started, eta=eta)

    def _save(self, at: int = 0) -> None:
        for dest, src in zip(self.saved, self._rolled_back()):
            dest[...] = src
        self.saved_step, self.saved_at = self.step, at

    def _check(self, epoch: int, eta: float, costs: np.ndarray) -> None:
        finite = (np.isfinite(costs).all() and all(np.isfinite(a).all() for a in
                                                     [*self.net.weights, *self.net.biases]))
        if finite:
            return
        for dest, src in zip(self._rolled_back(), self.saved):
            dest[...] = src
        self.step = self.saved_step
        raise diverged(epoch, eta)

    def _step(self, epoch: int, m: int, eta: float, rank: np.ndarray, local: np.ndarray,
              stop: _Stop) -> float:
        """One mini-batch: the ranks' sums, added in rank order, then one update here."""
        B = self.batch_size
        batch = slice(m * B, (m + 1) * B)
        batch_rank, batch_local = rank[batch], local[batch]
        rows = batch_rank.shape[0]
        parts = [(r, batch_local[batch_rank == r]) for r in range(len(self.shards.futures))]
        parts = [(r, idx) for r, idx in parts if idx.size]  # ranks with no row here send nothing
        for attempt in range(MAX_ATTEMPTS):
            params = _send_params(self.client, self.net)
            futures = [self.shards.submit(
                r, _part_gradient, idx, params, self.f_codes, self.cost_code,
                self.worker_threads, key=f"{self.run}-grad-{epoch}-{m}-{r}-{attempt}")
                for r, idx in parts]
            try:
                sums = self.client.gather(futures)
                break
            except concurrent.futures.CancelledError:
                # a worker was lost with data sent from here (a shard, the parameters)
                if attempt == MAX_ATTEMPTS - 1 or self.client.status != "running":
                    raise
                self.shards.recover()
        for i in range(len(self.nabla_w)):  # Σ over ranks, in rank order
            self.nabla_w[i][...] = sums[0][1][i]
            self.nabla_b[i][...] = sums[0][2][i]
        for _c, dw, db in sums[1:]:
            for i in range(len(self.nabla_w)):
                self.nabla_w[i] += dw[i]
                self.nabla_b[i] += db[i]
        cost = math.fsum(c for c, _, _ in sums)
        inv_rows = 1 / rows
        for i in range(len(self.nabla_w)):
            self.nabla_w[i] *= inv_rows  # the mean (1/B) Σ_r Σ_{x ∈ part r} ∂C_x/∂w
            self.nabla_b[i] *= inv_rows
        self._apply(eta, stop)
        return cost

    def _apply(self, eta: float, stop: _Stop) -> None:
        """The optimizer's step, applied once, as :func:`loopbp.kernels.train_mini_batches` does."""
        opt = self.optimizer
        with stop.updating():
            self.step += 1
            c1, c2 = _bias_corrections(opt.betas[0], opt.betas[1], np.int64(self.step))
            hyper = (float(eta), float(self.decay), float(opt.momentum), float(opt.betas[0]),
                     float(opt.betas[1]), float(opt.epsilon), float(c1), float(c2))
            v_w, v_b, m_w, m_b = self.state
            with parallel_guard():
                for i in range(len(self.net.weights)):
                    self.kernels.update(self.net.weights[i], self.net.biases[i],
                                        self.nabla_w[i], self.nabla_b[i], opt.code, hyper,
                                        v_w[i], v_b[i], m_w[i], m_b[i])


# --- public entry points ------------------------------------------------------------


def sgd(net: Network, X: Any, Y: Any, epochs: int, mini_batch_size: int, eta: float, *,
        client: distributed.Client | str, optimizer: str = "sgd", momentum: float = 0.9,
        betas: tuple[float, float] = (0.9, 0.999), epsilon: float = 1e-8, l2: float = 0.0,
        schedule: str | Schedule | Any = "constant",
        validation_data: tuple[Any, Any] | None = None,
        validation_fraction: float | None = None, early_stopping: int | None = None,
        monitor: str = "cost", min_delta: float = 0.0,
        test_data: tuple[Any, Any] | None = None, progress: bool = True,
        n_threads: int | None = None, worker_threads: int = 1,
        checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 1,
        resume_from: str | os.PathLike | None = None) -> History:
    """Train ``net`` in place on a Dask cluster: the network :func:`loopbp.sgd` would give.

    Synchronous data parallelism (module notes): every rank computes the
    summed gradient of its part of each mini-batch, the client adds the parts
    in rank order, divides by the mini-batch's rows and applies the update
    once.  The same seed, data and settings give the parameters of
    ``net.sgd(X, Y, ...)`` to rounding (float64: within 1e-9 of each
    parameter array's largest entry), the same history, and checkpoints
    either can resume.

    Parameters
    ----------
    net, epochs, mini_batch_size, eta, optimizer, momentum, betas, epsilon, l2, schedule
        As for :func:`loopbp.sgd`.
    X : ndarray or dask.array.Array, shape (n, sizes[0])
        Training inputs.  A NumPy array is cut into one contiguous shard per
        worker and scattered (the client keeps it, to send a shard again if
        its worker is lost).  A ``dask.array`` stays on the cluster: its row
        chunks are grouped into one shard per worker, built there; only the
        held-out validation rows (``validation_fraction``) and, for
        checkpoints, one slice at a time for the data's hash reach the client.
    Y : ndarray or dask.array.Array, shape (n, sizes[-1]) or (n,)
        Targets or integer labels, with the same row chunks as ``X``.
    client : distributed.Client or str
        A running client, or the address of a scheduler to connect to (and
        disconnect from at the end).
    validation_data, validation_fraction, early_stopping, monitor, min_delta, test_data
        As for :func:`loopbp.sgd`; validation and test data are measured on
        the client after every epoch (a ``dask.array`` there is computed).
    progress : bool
        Show a progress bar and a line per epoch.
    n_threads : int, optional
        Threads for the client's kernels (the update and the measurements).
    worker_threads : int
        numba threads per rank on the workers (default 1: the serial kernels).
    checkpoint, checkpoint_every, resume_from
        As for :func:`loopbp.sgd`; the files are the same, so a run can go on
        in one process, or on another cluster, from either's checkpoint.

    Returns
    -------
    History

    Raises
    ------
    TypeError, ValueError
        For invalid arguments, data whose shapes or row chunks do not line
        up (found from the arrays' shapes) or whose values are refused (by
        the worker that holds them), a closed client or an address Dask
        cannot parse.  ``net`` keeps its parameters and generator state (also
        with ``resume_from``), and no shard is left on the cluster.
    OSError
        When no scheduler answers at the address ``client``.
    TrainingDiverged
        As for :func:`loopbp.sgd`: the parameters go back to their values
        before the failing stretch of mini-batches.
    """
    settings = _settings(epochs, mini_batch_size, eta, optimizer=optimizer, momentum=momentum,
                         betas=betas, epsilon=epsilon, l2=l2, schedule=schedule,
                         early_stopping=early_stopping, monitor=monitor, min_delta=min_delta,
                         validation_fraction=validation_fraction, progress=progress,
                         n_threads=n_threads, checkpoint=checkpoint,
                         checkpoint_every=checkpoint_every)
    worker_threads = check.check_int(worker_threads, "worker_threads", minimum=1)
    start = None
    if resume_from is not None:
        loaded_net, start = load_checkpoint(resume_from)
        _check_resumable(start, settings, resume_from)
    client, opened = connect(client)
    shards = None
    try:
        with _restored_on_error(net):
            if start is not None:
                _adopt(net, loaded_net, resume_from)
            prepared = _prepare(client, net, X, Y, settings, validation_data, test_data, start,
                                len(_workers(client)))
            shards = prepared.shards
            if start is not None:
                _check_progress_fits(start, settings, shards.n)
            _compile_on_workers(client, net, worker_threads, local=False)
        return _run(net, prepared, settings, start, worker_threads)
    finally:
        if shards is not None:
            shards.release()
        if opened:
            client.close()


def _compile_on_workers(client: distributed.Client, net: Network, threads: int,
                        local: bool) -> None:
    client.run(_warm_up, net.sizes, net.f_codes, net.cost_code, net.dtype.name, threads,
               local)


def _check_progress_fits(start: Checkpoint, s: Settings, n: int) -> None:
    """Refuse to resume inside an epoch with another mini-batch size or other data rows."""
    if start.progress is None:
        return
    if s.mini_batch_size != start.mini_batch_size:
        raise ValueError(
            f"the checkpoint stopped inside epoch {start.progress.epoch} with mini-batches "
            f"of {start.mini_batch_size}; resume it with mini_batch_size="
            f"{start.mini_batch_size}, not {s.mini_batch_size}")
    if start.progress.order.shape != (n,):
        raise ValueError("the checkpoint's epoch order does not fit the data")


@contextmanager
def _restored_on_error(net: Network) -> Iterator[None]:
    """Give ``net`` back its parameters and generator state if the block raises.

    Before the first step, resuming adopts the checkpoint's parameters and a
    validation split draws from the generator; a check that fails after
    either must still leave the network as the caller passed it.
    """
    weights, biases = net.weights, net.biases
    items = [list(weights), list(biases)]  # net.parameters() may convert items in place
    rng, rng_state, seed = net.rng, net.rng.bit_generator.state, net.seed
    try:
        yield
    except BaseException:
        for held, before in zip((weights, biases), items):
            if isinstance(held, list):
                held[:] = before
        net.weights, net.biases, net.rng, net.seed = weights, biases, rng, seed
        rng.bit_generator.state = rng_state
        raise


def _run(net: Network, prepared: _Prepared, s: Settings, start: Checkpoint | None,
         worker_threads: int) -> History:
    """The epochs, as :func:`loopbp.training._train` runs them, with the synchronous trainer."""
    validation, tests, held_out = prepared.validation, prepared.tests, prepared.held_out
    history, done, resume_at, stopping, optimizer_state = starting_point(net, s, start)
    n = prepared.shards.n
    trainer = _SyncTrainer(net, prepared.shards, s.mini_batch_size, s, optimizer_state,
                           decay=s.l2 / n, worker_threads=worker_threads)
    write = checkpoint_writer(net, s, history, trainer, prepared.data_print, held_out,
                              stopping)
    return run_epochs(net, s, history, done, resume_at, trainer, validation, tests, stopping,
                      write, n, _Stop())


# --- local SGD ----------------------------------------------------------------------


class _LocalTrainer:
    """The epoch loop of :func:`local_sgd`: rounds of ``sync_every`` local steps, then a mean."""

    def __init__(self, net: Network, shards: _Shards, batch_size: int, decay: float,
                 sync_every: int, worker_threads: int) -> None:
        self.net, self.shards, self.decay = net, shards, decay
        self.client = shards.client
        self.batch_size, self.sync_every = batch_size, sync_every
        self.worker_threads = worker_threads
        self.run = f"loopbp-{uuid.uuid4().hex[:12]}"
        self.progress = None

    def epoch(self, epoch: int, eta: float, bar: tqdm, stop: _Stop,
              resume_at: Any = None) -> EpochRecord | None:
        net, shards = self.net, self.shards
        order = net.rng.permutation(shards.n)
        rank, local = shards.parts(order)
        shards.locate()
        # each rank walks its own rows in the epoch's order, in mini-batches of its own
        orders = [np.ascontiguousarray(local[rank == r]) for r in range(len(shards.futures))]
        batches = [math.ceil(o.size / min(self.batch_size, o.size)) for o in orders]
        rounds = math.ceil(max(batches) / self.sync_every)
        hyper = np.array([eta, self.decay, 0.0, 0.9, 0.999, 1e-8, 0.0])
        started = time.perf_counter()
        costs = []
        for j in range(rounds):
            if stop.requested:
                return None
            first = j * self.sync_every
            args = {r: (orders[r], first, min(first + self.sync_every, batches[r]),
                        self.batch_size, net.f_codes, net.cost_code, hyper,
                        self.worker_threads)
                    for r in range(len(orders)) if first < batches[r]}
            results = self._round(args, f"{self.run}-round-{epoch}-{j}")
            total = sum(rows for rows, _, _, _ in results)
            costs += [c for _, c, _, _ in results]
            if not all(math.isfinite(c) for c in costs[-len(results):]) or not all(
                    np.isfinite(w).all() for _, _, ws, _ in results for w in ws):
                raise TrainingDiverged(
                    f"training diverged in epoch {epoch}: the cost or the parameters became "
                    f"NaN or infinite (eta={eta:g} is probably too large); the parameters are "
                    "left as they were before the failing round")
            for i in range(len(net.weights)):
                # the mean of the ranks' parameters, each weighted by its rows this round
                net.weights[i][...] = sum((rows / total) * ws[i] for rows, _, ws, _ in results)
                net.biases[i][...] = sum((rows / total) * bs[i] for rows, _, _, bs in results)
            bar.update(total)
        return EpochRecord(epoch, math.fsum(costs) / shards.n, time.perf_counter() - started,
                           eta=eta)

    def _round(self, args: dict[int, tuple], key: str) -> list:
        """One round's results in rank order, sending lost NumPy shards again if need be."""
        for attempt in range(MAX_ATTEMPTS):
            params = _send_params(self.client, self.net)
            futures = [self.shards.submit(r, _local_round, params, *args[r],
                                          key=f"{key}-{r}-{attempt}") for r in sorted(args)]
            try:
                return self.client.gather(futures)
            except concurrent.futures.CancelledError:
                if attempt == MAX_ATTEMPTS - 1 or self.client.status != "running":
                    raise
                self.shards.recover()
        raise AssertionError("unreachable")  # pragma: no cover


def local_sgd(net: Network, X: Any, Y: Any, epochs: int, mini_batch_size: int, eta: float, *,
              client: distributed.Client | str, sync_every: int = 16, l2: float = 0.0,
              schedule: str | Schedule | Any = "constant",
              validation_data: tuple[Any, Any] | None = None,
              test_data: tuple[Any, Any] | None = None, progress: bool = True,
              worker_threads: int = 1) -> History:
    """Local SGD: each rank takes ``sync_every`` steps on its shard, then the copies are averaged.

    Not the algorithm of :func:`loopbp.sgd` (hence its own function): between
    two averages each rank follows its own gradients.  Rank r walks its shard's
    rows in the order they have in the epoch's permutation
    ``net.rng.permutation(n)``, in mini-batches of ``mini_batch_size`` rows of
    its own, with plain gradient descent (eq sgd, and eq l2 with
    ``decay = λ/n``).  After every ``sync_every`` of its mini-batches the client
    sets ``w ← Σ_r (n_r / Σ_s n_s) w_r``, with ``n_r`` the rows rank r trained on
    in that round, and sends the mean out for the next round: one round trip
    per ``sync_every`` steps instead of one per step.

    With one rank (one worker, or ``dask.array`` data in one non-empty row
    chunk) it gives exactly the network of :func:`loopbp.sgd`, whatever
    ``sync_every``.

    Parameters
    ----------
    net, X, Y, epochs, mini_batch_size, eta, l2, schedule, validation_data, test_data, progress
        As for :func:`sgd` (plain SGD only; no checkpoints or early stopping).
    client : distributed.Client or str
    sync_every : int
        Local mini-batch steps per round.
    worker_threads : int
        numba threads per rank on the workers.

    Returns
    -------
    History
        The epoch's cost is the mean over all rows of their cost measured on
        the rank's copy before its step.
    """
    settings = _settings(epochs, mini_batch_size, eta, optimizer="sgd", momentum=0.9,
                         betas=(0.9, 0.999), epsilon=1e-8, l2=l2, schedule=schedule,
                         early_stopping=None, monitor="cost", min_delta=0.0,
                         validation_fraction=None, progress=progress, n_threads=None,
                         checkpoint=None, checkpoint_every=1)
    sync_every = check.check_int(sync_every, "sync_every", minimum=1)
    worker_threads = check.check_int(worker_threads, "worker_threads", minimum=1)
    client, opened = connect(client)
    shards = None
    try:
        prepared = _prepare(client, net, X, Y, settings, validation_data, test_data, None,
                            len(_workers(client)))
        shards = prepared.shards
        _compile_on_workers(client, net, worker_threads, local=True)
        settings.schedule.start(settings.eta, settings.epochs)
        trainer = _LocalTrainer(net, shards, settings.mini_batch_size,
                                settings.l2 / shards.n, sync_every, worker_threads)
        return run_epochs(net, settings, History(), 0, None, trainer, prepared.validation,
                          prepared.tests, None, None, shards.n, _Stop())
    finally:
        if shards is not None:
            shards.release()
        if opened:
            client.close()
