"""Data-parallel training on Dask (:mod:`loopbp.distributed`).

The synchronous mode must give the network of one process: each test compares
with ``Network.sgd`` on the same seed, data and settings, to 1e-9 relative in
float64 (only the order of the sums over a mini-batch's rows differs), at the
scale of each parameter array (see :func:`_assert_close`).  The
cluster is a ``LocalCluster`` of two worker processes with one thread each,
on the loopback interface.
"""

from __future__ import annotations

import gc
import itertools
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import loopbp

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
from loopbp import distributed as ld  # noqa: E402  (after the skip: needs dask)

SIZES = [8, 7, 3]
RTOL = 1e-9


def _cluster(n_workers: int = 2) -> distributed.LocalCluster:
    return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                    host="127.0.0.1", dashboard_address=":0",
                                    silence_logs=50)


@pytest.fixture(scope="module")
def client():
    with _cluster() as cluster, distributed.Client(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture
def fresh_client():
    """A cluster of its own, for tests that kill one of its workers."""
    with _cluster() as cluster, distributed.Client(cluster, set_as_default=False) as c:
        yield c


def _data(n: int = 203, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, SIZES[0]))
    return X, (X[:, 0] * 3 + X[:, 1]).astype(int) % SIZES[-1]


def _assert_close(a: loopbp.Network, b: loopbp.Network, rtol: float = RTOL) -> None:
    """Every parameter array of ``b`` equals ``a``'s to ``rtol`` relative to the array's scale.

    Entries that training took close to zero are compared at the array's
    scale, not their own: Adam divides each step by √v̂, so a rounding
    difference in a small gradient moves a weight near zero by a tiny
    absolute amount that is a large fraction of that weight.
    """
    for p, q in zip(a.weights + a.biases, b.weights + b.biases, strict=True):
        np.testing.assert_allclose(q, p, rtol=rtol, atol=rtol * float(np.max(np.abs(p))))


def _params(net: loopbp.Network) -> list[np.ndarray]:
    return [p.copy() for p in net.weights + net.biases]


def _unchanged(net: loopbp.Network, before: list[np.ndarray]) -> bool:
    return all(np.array_equal(p, q) for p, q in zip(net.weights + net.biases, before))


def _nothing_left_on(client: distributed.Client, seconds: float = 10.0) -> bool:
    """Whether the scheduler forgets every key (releases travel asynchronously)."""
    gc.collect()  # futures held by a traceback's frames
    deadline = time.monotonic() + seconds
    while client.who_has():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --- without a cluster -------------------------------------------------------------


def test_import_loopbp_does_not_import_dask():
    code = "import sys, loopbp; print(sorted(m for m in sys.modules if m.split('.')[0] " \
           "in ('dask', 'distributed')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_client_of_the_wrong_kind_is_refused():
    X, y = _data()
    net = loopbp.Network(SIZES, seed=0)
    before = _params(net)
    with pytest.raises(TypeError, match=r"client must be a dask\.distributed Client"):
        ld.sgd(net, X, y, 1, 10, 1.0, client=42, progress=False)
    assert _unchanged(net, before)


@pytest.mark.parametrize("address,message", [
    ("", "got an empty string"),
    ("not an address", "client='not an address' is not a Dask scheduler address"),
])
def test_malformed_address_is_a_value_error(address, message):
    X, y = _data()
    net = loopbp.Network(SIZES, seed=0)
    before = _params(net)
    with pytest.raises(ValueError, match=message):
        ld.sgd(net, X, y, 1, 10, 1.0, client=address, progress=False)
    assert _unchanged(net, before)


@pytest.mark.slow
def test_unreachable_scheduler_is_an_os_error(monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(ld, "CONNECT_TIMEOUT", 1)
    X, y = _data()
    net = loopbp.Network(SIZES, seed=0)
    before = _params(net)
    with pytest.raises(OSError, match=f"cannot reach a Dask scheduler at 'tcp://127.0.0.1:{port}'"):
        ld.sgd(net, X, y, 1, 10, 1.0, client=f"tcp://127.0.0.1:{port}", progress=False)
    assert _unchanged(net, before)


# --- the same network as one process ---------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("optimizer,eta", [("sgd", 2.0), ("adam", 0.01)])
@pytest.mark.parametrize("kind", ["numpy", "dask"])
def test_same_network_as_one_process(client, optimizer, eta, kind):
    """Plain SGD and Adam, NumPy and dask.array inputs, mini-batches that do not divide n."""
    X, y = _data()
    one = loopbp.Network(SIZES, seed=4)
    expected = one.sgd(X, y, 3, 16, eta, optimizer=optimizer, progress=False)
    if kind == "dask":  # shards of unequal size: chunks of 37, 80, 23 and 63 rows, and empty ones
        rows = (0, 37, 80, 0, 23, 63)
        X = da.from_array(X, chunks=(rows, (8,)))
        y = da.from_array(y, chunks=(rows,))
    net = loopbp.Network(SIZES, seed=4)
    history = ld.sgd(net, X, y, 3, 16, eta, optimizer=optimizer, client=client,
                     progress=False)
    assert not any(np.array_equal(p, q) for p, q in zip(net.weights, _params(
        loopbp.Network(SIZES, seed=4))))  # it trained
    _assert_close(one, net)
    np.testing.assert_allclose(history.cost, expected.cost, rtol=RTOL)
    assert net.rng.bit_generator.state == one.rng.bit_generator.state


#: Networks whose kernels read transposed weights: the first layer's short forward sums
#: (fewer than 128 inputs, at least 16 outputs) and, in the second, the error sent back
#: through a 300 → 900 layer (too many weights for the row form).
TRANSPOSED = {"short first layer": [40, 64, 10], "300-neuron hidden layer": [8, 300, 900, 3]}


def _transposes_read(sizes: list[int]) -> list[bool]:
    return [bool(loopbp.kernels.needs_transpose(np.empty((o, i)), layer >= 1))
            for layer, (i, o) in enumerate(itertools.pairwise(sizes))]


def _data_for(sizes: list[int], n: int = 150) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    X = rng.random((n, sizes[0]))
    return X, (X[:, :3].sum(axis=1) * sizes[-1] / 3).astype(int) % sizes[-1]


@pytest.mark.slow
@pytest.mark.parametrize("optimizer,eta", [("sgd", 0.5), ("adam", 0.005)])
@pytest.mark.parametrize("name", list(TRANSPOSED))
def test_transposed_weights_are_kept_up_to_date(client, name, optimizer, eta):
    """Each step's transposes are those of the step's weights, the first layer's included."""
    sizes = TRANSPOSED[name]
    assert _transposes_read(sizes)[:2] == ([True, False] if len(sizes) == 3 else [True, True])
    X, y = _data_for(sizes)
    one = loopbp.Network(sizes, seed=3)
    expected = one.sgd(X, y, 2, 16, eta, optimizer=optimizer, progress=False)
    net = loopbp.Network(sizes, seed=3)
    history = ld.sgd(net, X, y, 2, 16, eta, optimizer=optimizer, client=client, progress=False)
    _assert_close(one, net)
    np.testing.assert_allclose(history.cost, expected.cost, rtol=RTOL)


@pytest.mark.slow
def test_worker_threads_run_the_parallel_kernels_to_the_same_network(client):
    sizes = TRANSPOSED["short first layer"]
    X, y = _data_for(sizes, 400)
    one = loopbp.Network(sizes, seed=2)
    one.sgd(X, y, 1, 200, 0.5, progress=False)
    net = loopbp.Network(sizes, seed=2)
    ld.sgd(net, X, y, 1, 200, 0.5, client=client, worker_threads=2, progress=False)
    _assert_close(one, net)


@pytest.mark.slow
def test_every_option_as_in_one_process(client):
    """Nesterov with L2, a step schedule, a held-out validation split, early stopping, test data."""
    X, y = _data(240)
    options = dict(optimizer="nesterov", momentum=0.8, l2=0.5,
                   schedule=loopbp.schedules.Step(0.5, 2), validation_fraction=0.25,
                   early_stopping=3, test_data=(X[:50], y[:50]), progress=False)
    one = loopbp.Network(SIZES, seed=7)
    expected = one.sgd(X, y, 4, 32, 0.5, **options)
    options["schedule"] = loopbp.schedules.Step(0.5, 2)
    net = loopbp.Network(SIZES, seed=7)
    history = ld.sgd(net, X, y, 4, 32, 0.5, client=client, **options)
    _assert_close(one, net)
    np.testing.assert_allclose(history.cost, expected.cost, rtol=RTOL)
    np.testing.assert_allclose(history.validation_cost, expected.validation_cost, rtol=RTOL)
    assert [r.eta for r in history] == [r.eta for r in expected]
    assert [r.test_correct for r in history] == [r.test_correct for r in expected]


@pytest.mark.slow
def test_dask_validation_split_and_one_hot_targets(client):
    """dask.array inputs with one-hot targets: the held-out rows are those of one process."""
    X, y = _data(150)
    Y = np.eye(SIZES[-1])[y]
    one = loopbp.Network(SIZES, seed=2)
    expected = one.sgd(X, Y, 2, 20, 1.5, validation_fraction=0.2, progress=False)
    net = loopbp.Network(SIZES, seed=2)
    history = ld.sgd(net, da.from_array(X, chunks=(40, 8)), da.from_array(Y, chunks=(40, 3)),
                     2, 20, 1.5, client=client, validation_fraction=0.2, progress=False)
    _assert_close(one, net)
    np.testing.assert_allclose(history.validation_cost, expected.validation_cost, rtol=RTOL)
    assert history.records[-1].validation_total == expected.records[-1].validation_total


@pytest.mark.slow
def test_dask_array_is_never_gathered_on_the_client(client, monkeypatch):
    X, y = _data()
    Xd, yd = da.from_array(X, chunks=(60, 8)), da.from_array(y, chunks=60)

    def refuse(*args, **kwargs):
        raise AssertionError("a dask.array was computed on the client")

    monkeypatch.setattr(da.Array, "__array__", refuse)
    monkeypatch.setattr(da.Array, "compute", refuse)
    net = loopbp.Network(SIZES, seed=1)
    ld.sgd(net, Xd, yd, 1, 25, 1.0, client=client, progress=False)
    one = loopbp.Network(SIZES, seed=1)
    one.sgd(X, y, 1, 25, 1.0, progress=False)
    _assert_close(one, net)


@pytest.mark.slow
def test_workers_compile_and_run_one_thread_on_a_safe_layer(client):
    layers = client.run(ld._warm_up, SIZES, np.zeros(2, np.int64), 0, "float64", 1, False)
    assert len(layers) == 2
    assert set(layers.values()) <= {"tbb", "omp"}


# --- faults ------------------------------------------------------------------------


def _kill_worker_at(monkeypatch, client, step: int, calls: list) -> None:
    """Kill the worker that holds rank 0's shard after the client's ``step``-th update."""
    real = ld._SyncTrainer._apply

    def apply(self, eta, stop):
        real(self, eta, stop)
        calls.append(self.step)
        if self.step == step:
            holder = next(iter(client.who_has(self.shards.futures[0])
                               [self.shards.futures[0].key]))
            pid = client.run(os.getpid, workers=[holder])[holder]
            os.kill(pid, signal.SIGKILL)

    monkeypatch.setattr(ld._SyncTrainer, "_apply", apply)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["numpy", "dask"])
def test_worker_killed_mid_epoch(fresh_client, monkeypatch, kind):
    """Training completes with the network of an undisturbed run; the lost shard is rebuilt."""
    X, y = _data()
    one = loopbp.Network(SIZES, seed=5)
    one.sgd(X, y, 2, 16, 2.0, progress=False)
    recovered = []
    real_recover = ld._Shards.recover
    monkeypatch.setattr(ld._Shards, "recover",
                        lambda self: recovered.append(real_recover(self)) or recovered[-1])
    calls: list[int] = []
    _kill_worker_at(monkeypatch, fresh_client, 5, calls)  # step 5 of 13 in epoch 1
    if kind == "dask":
        X, y = da.from_array(X, chunks=(70, 8)), da.from_array(y, chunks=70)
    net = loopbp.Network(SIZES, seed=5)
    history = ld.sgd(net, X, y, 2, 16, 2.0, client=fresh_client, progress=False)
    assert len(history) == 2 and not history.interrupted
    assert calls == list(range(1, 27))  # every update applied once
    _assert_close(one, net)
    if kind == "numpy":  # scattered from the client: sent again from there
        assert True in recovered


# --- checkpoints and Ctrl-C ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("first", ["distributed", "distributed, dask.array",
                                   "one process", "one process, then dask.array"])
def test_checkpoint_resumes_across_modes(client, tmp_path, first):
    """2 epochs on one side, checkpoint, 2 more on the other == 4 in one process.

    With ``dask.array`` data the checkpoint's fingerprint is hashed a slice at a
    time on the cluster side; it must be the one-process fingerprint of the same rows.
    """
    X, y = _data()
    straight = loopbp.Network(SIZES, seed=6)
    full = straight.sgd(X, y, 4, 16, 0.01, optimizer="adam", progress=False)
    path = tmp_path / "run.npz"
    net = loopbp.Network(SIZES, seed=6)
    options = dict(optimizer="adam", progress=False)
    Xd, yd = da.from_array(X, chunks=(70, 8)), da.from_array(y, chunks=70)
    if first.startswith("distributed"):
        on_dask = "dask" in first
        ld.sgd(net, Xd if on_dask else X, yd if on_dask else y, 2, 16, 0.01, client=client,
               checkpoint=path, **options)
        resumed = loopbp.Network(SIZES, seed=0)
        history = resumed.sgd(X, y, 4, 16, 0.01, resume_from=path, **options)
    else:
        on_dask = "dask" in first
        net.sgd(X, y, 2, 16, 0.01, checkpoint=path, **options)
        resumed = loopbp.Network(SIZES, seed=0)
        history = ld.sgd(resumed, Xd if on_dask else X, yd if on_dask else y, 4, 16, 0.01,
                         client=client, resume_from=path, **options)
    _assert_close(straight, resumed)
    assert [r.epoch for r in history] == [1, 2, 3, 4]
    np.testing.assert_allclose(history.cost, full.cost, rtol=RTOL)


@pytest.mark.slow
def test_stop_request_mid_epoch_then_resume_in_one_process(client, tmp_path, monkeypatch):
    """Ctrl-C (a stop request) between two steps writes a checkpoint one process continues."""
    X, y = _data()
    straight = loopbp.Network(SIZES, seed=8)
    straight.sgd(X, y, 2, 16, 2.0, progress=False)
    real = ld._SyncTrainer._apply

    def apply(self, eta, stop):
        real(self, eta, stop)
        if self.step == 17:  # the 4th mini-batch of epoch 2
            stop.requested = True

    monkeypatch.setattr(ld._SyncTrainer, "_apply", apply)
    path = tmp_path / "stop.npz"
    net = loopbp.Network(SIZES, seed=8)
    history = ld.sgd(net, X, y, 2, 16, 2.0, client=client, checkpoint=path, progress=False)
    assert history.interrupted and len(history) == 1
    state = loopbp.load_checkpoint(path)[1]
    assert state.progress.next_batch == 4 and state.optimizer.step == 17
    resumed, _ = loopbp.resume(path, X, y, progress=False)
    _assert_close(straight, resumed)


@pytest.mark.slow
def test_divergence_rolls_back(client):
    X, y = _data()
    net = loopbp.Network(SIZES, seed=0)
    before = _params(net)
    with pytest.raises(loopbp.TrainingDiverged, match="epoch 1"):
        ld.sgd(net, X, np.eye(3)[y] * 1e200, 1, 16, 1.0, client=client, progress=False)
    assert _unchanged(net, before)


# --- bad input ---------------------------------------------------------------------


@pytest.mark.slow
def test_closed_client_is_refused(tmp_path):
    with _cluster(1) as cluster:
        c = distributed.Client(cluster, set_as_default=False)
        c.close()
        X, y = _data()
        net = loopbp.Network(SIZES, seed=0)
        before = _params(net)
        with pytest.raises(ValueError, match="client is closed"):
            ld.sgd(net, X, y, 1, 10, 1.0, client=c, progress=False)
        assert _unchanged(net, before)


@pytest.mark.slow
def test_misaligned_chunks_are_refused(client):
    X, y = _data()
    net = loopbp.Network(SIZES, seed=0)
    before = _params(net)
    with pytest.raises(ValueError, match="row chunks of X and Y must line up"):
        ld.sgd(net, da.from_array(X, chunks=(50, 8)), da.from_array(y, chunks=60), 1, 10, 1.0,
               client=client, progress=False)
    assert _unchanged(net, before)


@pytest.mark.slow
@pytest.mark.parametrize("case,error,message", [
    ("NumPy X, shorter dask Y", ValueError, "X has 203 rows but Y has 200"),
    ("dask X, shorter NumPy Y", ValueError, "X has 203 rows but Y has 200"),
    ("1-D NumPy X", ValueError, "X must be 2-D"),
    ("targets of the wrong width", ValueError, r"Y must have shape \(203, 3\)"),
    ("rows of unknown length", ValueError, r"X must have known chunk sizes"),
    ("text in X", TypeError, "X must hold real numbers"),
])
def test_shapes_that_do_not_fit_are_named(client, case, error, message):
    """Refused from the arrays' shapes (or the worker's check), nothing left on the cluster."""
    X, y = _data()
    chunks = (70, 8)
    Xd, yd = da.from_array(X, chunks=chunks), da.from_array(y, chunks=70)
    given = {
        "NumPy X, shorter dask Y": (X, yd[:200]),
        "dask X, shorter NumPy Y": (Xd, y[:200]),
        "1-D NumPy X": (X[:, 0], yd),
        "targets of the wrong width": (Xd, da.from_array(np.eye(4)[y], chunks=(70, 4))),
        "rows of unknown length": (Xd[Xd[:, 0] >= 0], yd),
        "text in X": (da.from_array(X.astype(str), chunks=chunks), yd),
    }[case]
    net = loopbp.Network(SIZES, seed=0)
    before = _params(net)
    with pytest.raises(error, match=message):
        ld.sgd(net, *given, 1, 10, 1.0, client=client, progress=False)
    assert _unchanged(net, before)
    assert _nothing_left_on(client)


@pytest.mark.slow
def test_refused_resume_leaves_the_network_as_it_was(client, tmp_path):
    """A checkpoint is adopted, then the data are refused: the caller's network is untouched."""
    X, y = _data()
    path = tmp_path / "run.npz"
    loopbp.Network(SIZES, seed=1).sgd(X, y, 1, 16, 1.0, checkpoint=path, progress=False)
    net = loopbp.Network(SIZES, seed=2)
    before, state = _params(net), net.rng.bit_generator.state
    with pytest.raises(ValueError, match="row chunks of X and Y must line up"):
        ld.sgd(net, da.from_array(X, chunks=(50, 8)), da.from_array(y, chunks=60), 2, 16, 1.0,
               client=client, resume_from=path, progress=False)
    assert _unchanged(net, before) and net.seed == 2
    assert net.rng.bit_generator.state == state
    assert _nothing_left_on(client)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["numpy", "dask"])
def test_refused_validation_split_leaves_the_generator_as_it_was(client, kind):
    """The held-out rows are drawn, then monitor='accuracy' is refused (no labels)."""
    X, _ = _data()
    Y = np.random.default_rng(0).random((X.shape[0], SIZES[-1]))  # targets, not classes
    if kind == "dask":
        X, Y = da.from_array(X, chunks=(70, 8)), da.from_array(Y, chunks=(70, 3))
    net = loopbp.Network(SIZES, seed=2)
    state = net.rng.bit_generator.state
    with pytest.raises(ValueError, match="monitor='accuracy' needs validation labels"):
        ld.sgd(net, X, Y, 1, 16, 1.0, client=client, validation_fraction=0.2,
               early_stopping=2, monitor="accuracy", progress=False)
    assert net.rng.bit_generator.state == state
    assert _nothing_left_on(client)


@pytest.mark.slow
def test_bad_values_in_a_chunk_are_named(client):
    X, y = _data()
    X[150, 3] = np.nan
    net = loopbp.Network(SIZES, seed=0)
    before = _params(net)
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        ld.sgd(net, da.from_array(X, chunks=(50, 8)), da.from_array(y, chunks=50), 1, 10, 1.0,
               client=client, progress=False)
    with pytest.raises(ValueError, match=r"labels in 0\.\.2"):
        ld.sgd(net, X[:100] * 0, y[:100] + 5, 1, 10, 1.0, client=client, progress=False)
    assert _unchanged(net, before)


# --- local SGD ---------------------------------------------------------------------


def _local_sgd_reference(net: loopbp.Network, X: np.ndarray, y: np.ndarray, epochs: int,
                         B: int, eta: float, sync_every: int, bounds: list[int]) -> None:
    """Local SGD written out with ``Network.backprop``: the algorithm the docs describe."""
    Y = np.eye(net.sizes[-1])[y]
    for _ in range(epochs):
        order = net.rng.permutation(X.shape[0])
        ranks = [order[(order >= a) & (order < b)] for a, b in itertools.pairwise(bounds)]
        batches = [[o[i:i + B] for i in range(0, o.size, B)] for o in ranks]
        for first in range(0, max(map(len, batches)), sync_every):
            copies = []
            for mine in batches:
                rows = mine[first:first + sync_every]
                if not rows:
                    continue
                w = [p.copy() for p in net.weights]
                b = [p.copy() for p in net.biases]
                probe = loopbp.Network(net.sizes, seed=0)
                probe.weights, probe.biases = w, b
                for batch in rows:
                    nabla_w, nabla_b = probe.backprop(X[batch], Y[batch])
                    for p, g in zip(w + b, nabla_w + nabla_b):
                        p -= eta * g
                copies.append((sum(r.size for r in rows), w, b))
            total = sum(c[0] for c in copies)
            for i in range(len(net.weights)):
                net.weights[i] = sum(n / total * w[i] for n, w, _ in copies)
                net.biases[i] = sum(n / total * b[i] for n, _, b in copies)


@pytest.mark.slow
def test_local_sgd_averages_every_round(client):
    X, y = _data()
    net = loopbp.Network(SIZES, seed=9)
    history = ld.local_sgd(net, X, y, 2, 10, 1.5, client=client, sync_every=3,
                           progress=False)
    assert len(history) == 2
    expected = loopbp.Network(SIZES, seed=9)
    _local_sgd_reference(expected, X, y, 2, 10, 1.5, 3, [0, 102, 203])
    _assert_close(expected, net)
    synchronous = loopbp.Network(SIZES, seed=9)
    synchronous.sgd(X, y, 2, 20, 1.5, progress=False)
    assert not np.allclose(synchronous.weights[0], net.weights[0])  # another algorithm


@pytest.mark.slow
def test_local_sgd_on_one_worker_is_one_process():
    """Also for networks whose kernels read transposed weights (the driver keeps them)."""
    cases = [(SIZES, _data())] + [(sizes, _data_for(sizes)) for sizes in TRANSPOSED.values()]
    with _cluster(1) as cluster, distributed.Client(cluster, set_as_default=False) as c:
        for sizes, (X, y) in cases:
            net = loopbp.Network(sizes, seed=9)
            ld.local_sgd(net, X, y, 2, 10, 0.5, client=c, sync_every=4, progress=False)
            one = loopbp.Network(sizes, seed=9)
            one.sgd(X, y, 2, 10, 0.5, progress=False)
            for p, q in zip(one.weights + one.biases, net.weights + net.biases):
                assert np.array_equal(p, q)  # the same compiled epoch driver, the same rows


@pytest.mark.slow
def test_local_sgd_ignores_empty_chunks(client):
    """Empty row chunks make no shard: one chunk of rows is one rank, so one process's run."""
    X, y = _data()
    rows = (0, 0, X.shape[0], 0)
    net = loopbp.Network(SIZES, seed=9)
    ld.local_sgd(net, da.from_array(X, chunks=(rows, (8,))), da.from_array(y, chunks=(rows,)),
                 2, 10, 1.5, client=client, sync_every=4, progress=False)
    one = loopbp.Network(SIZES, seed=9)
    one.sgd(X, y, 2, 10, 1.5, progress=False)
    for p, q in zip(one.weights + one.biases, net.weights + net.biases):
        assert np.array_equal(p, q)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sgd", "local_sgd"])
def test_big_parameters_travel_by_scatter(client, monkeypatch, mode):
    """Parameters over SCATTER_BYTES go by one scatter per step: the same results."""
    monkeypatch.setattr(ld, "SCATTER_BYTES", 0)
    X, y = _data()
    net, expected = loopbp.Network(SIZES, seed=3), loopbp.Network(SIZES, seed=3)
    if mode == "sgd":
        ld.sgd(net, X, y, 1, 16, 2.0, client=client, progress=False)
        expected.sgd(X, y, 1, 16, 2.0, progress=False)
    else:
        ld.local_sgd(net, X, y, 1, 10, 1.5, client=client, sync_every=3, progress=False)
        _local_sgd_reference(expected, X, y, 1, 10, 1.5, 3, [0, 102, 203])
    _assert_close(expected, net)


def test_validation_rows_of_a_checkpoint_are_checked_against_the_data(client, tmp_path):
    """As loopbp.sgd does: held-out rows that would leave none to train on are refused."""
    from loopbp import training

    X, y = _data(n=40)
    net = loopbp.Network(SIZES, seed=0)
    state = training.Checkpoint(0, 2, 4, 0.5, 1, loopbp.History(), training.OptimizerState(),
                                validation_index=np.arange(40, dtype=np.int64),
                                validation_fraction=0.25)
    training.save_checkpoint(tmp_path / "c.npz", net, state)
    with pytest.raises(ValueError, match=r"validation rows do not fit the data: .*leave at least"):
        ld.sgd(loopbp.Network(SIZES, seed=0), X, y, 2, 4, 0.5, client=client,
               resume_from=tmp_path / "c.npz", validation_fraction=0.25, progress=False)
