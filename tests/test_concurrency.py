"""Two threads training at once, and a forked child after parallel work.

numba's default ``workqueue`` layer aborts the interpreter when two threads
enter parallel code together; loopbp loads TBB (or another thread-safe layer)
or, failing that, serializes through :func:`loopbp._jit.parallel_guard`.
These tests run parallel-sized work so the parallel kernels are the ones used.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import warnings

import numpy as np
import pytest

import loopbp
from loopbp import _jit, kernels, network

# big enough per mini-batch that sgd picks the parallel kernels, small enough to be quick
JOBS = [([256, 128, 10], 0, np.float64), ([256, 160, 10], 1, np.float32),
        ([256, 128, 32, 10], 2, np.float64)]
BATCH = 128


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((512, 256))
    return X, rng.integers(0, 10, 512)


def _train(sizes, seed, dtype, n_threads=None) -> tuple[list[np.ndarray], list[float]]:
    X, y = _data(seed)
    net = loopbp.Network(sizes, seed=seed, dtype=dtype)
    history = net.sgd(X, y, 3, BATCH, 1.0, progress=False, n_threads=n_threads)
    out = net.feedforward(X)
    return [*net.weights, *net.biases, out], history.cost


def test_the_jobs_run_the_parallel_kernels():
    for sizes, _, _ in JOBS:
        assert network.kernels_for(sizes, BATCH) is kernels


def test_threading_layer_is_thread_safe():
    loopbp.Network(JOBS[0][0], seed=0).sgd(*_data(0), 1, BATCH, 1.0, progress=False)
    layer = loopbp.threading_layer()
    assert layer in ("tbb", "omp", "workqueue")
    if layer == "workqueue":  # not thread-safe: loopbp must serialize its launches
        assert _jit.parallel_guard() is _jit.PARALLEL_LOCK
    else:
        assert _jit.parallel_guard() is not _jit.PARALLEL_LOCK
    if not os.environ.get("NUMBA_THREADING_LAYER") and _jit._preload_tbb():
        assert layer == "tbb"  # TBB is installed here, so it is the one in use


def test_threads_training_at_once_match_sequential_runs():
    """Three networks trained in three threads at once == the same runs one by one."""
    expected = [_train(*job) for job in JOBS]
    for repeat in range(3):
        results = _run_together(JOBS)
        for (arrays, cost), (want_arrays, want_cost) in zip(results, expected, strict=True):
            # costs are summed per compiled call, whose length follows the clock: equal
            # up to rounding; the parameters do not depend on it and must be bitwise equal
            np.testing.assert_allclose(cost, want_cost, rtol=1e-12, err_msg=f"repeat {repeat}")
            for a, b in zip(arrays, want_arrays, strict=True):
                assert np.array_equal(a, b), f"repeat {repeat}"


def _run_together(jobs) -> list:
    results: list = [None] * len(jobs)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(jobs))

    def work(i: int) -> None:
        try:
            barrier.wait()
            # the second job also changes its thread count: a per-thread setting
            results[i] = _train(*jobs[i], n_threads=1 if i == 1 else None)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a training thread hung"
    assert not errors, errors
    return results


def test_threads_sharing_nothing_but_the_pool_in_feedforward_and_backprop():
    net_a = loopbp.Network([256, 64, 10], seed=5)
    net_b = loopbp.Network([256, 64, 10], seed=6)
    X, y = _data(3)
    want = [(net.feedforward(X), net.backprop(X, y)) for net in (net_a, net_b)]
    got: dict[int, list] = {0: [], 1: []}

    def work(i: int, net: loopbp.Network) -> None:
        for _ in range(20):
            got[i].append((net.feedforward(X), net.backprop(X, y)))

    threads = [threading.Thread(target=work, args=(i, n)) for i, n in enumerate((net_a, net_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    for i in (0, 1):
        assert len(got[i]) == 20
        for out, (nabla_w, nabla_b) in got[i]:
            assert np.array_equal(out, want[i][0])
            for a, b in zip(nabla_w + nabla_b, want[i][1][0] + want[i][1][1], strict=True):
                assert np.array_equal(a, b)


def _child_train(queue) -> None:
    arrays, cost = _train(*JOBS[0])
    queue.put(([a.tolist() for a in arrays], cost, loopbp.threading_layer()))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_trains_after_parent_ran_parallel_kernels():
    """The parent has a live thread pool; a forked child still trains, and gets the same."""
    expected_arrays, expected_cost = _train(*JOBS[0])  # parent runs parallel kernels first
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_train, args=(queue,))
    with warnings.catch_warnings():  # Python 3.12+ warns about forking with threads alive
        warnings.simplefilter("ignore", DeprecationWarning)
        child.start()
    try:
        arrays, cost, layer = queue.get(timeout=120)
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
    assert layer == loopbp.threading_layer()
    np.testing.assert_allclose(cost, expected_cost, rtol=1e-12)
    for a, b in zip(arrays, expected_arrays, strict=True):
        assert np.array_equal(np.asarray(a, dtype=b.dtype), b)



class _FakeDispatcher:
    """Just enough of a numba dispatcher for :func:`loopbp._jit.call_compiled`."""

    def __init__(self, folder, compiled: bool) -> None:
        from types import SimpleNamespace

        self._cache = SimpleNamespace(_cache_path=str(folder))
        self.overloads = {(int,): object()} if compiled else {}
        self.lock_was_held: bool | None = None

    def typeof_pyval(self, value):
        return type(value)

    def __call__(self, *args):
        import fcntl

        # another open file description of the lock file: flock conflicts with it
        with open(os.path.join(self._cache._cache_path, "loopbp-compile.lock"), "a+b") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
                self.lock_was_held = False
            except BlockingIOError:
                self.lock_was_held = True
        return args


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fcntl locks are POSIX")
def test_compiling_holds_the_cross_process_cache_lock_and_running_does_not(tmp_path):
    """numba's cache is not safe when processes compile at once: loopbp compiles under a lock.

    Two processes saving different signatures of one function at the same
    moment can both take the data file ``NAME.1.nbc``, leaving an index that
    points one signature at the other's machine code (a crash on next load).
    """
    compiling = _FakeDispatcher(tmp_path, compiled=False)
    assert _jit.call_compiled(compiling, 3) == (3,)
    assert compiling.lock_was_held is True
    compiled = _FakeDispatcher(tmp_path, compiled=True)
    assert _jit.call_compiled(compiled, 3) == (3,)
    assert compiled.lock_was_held is False
