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



def _plus_one(x):
    return x + 1


_OTHER_PROCESS = """
import sys
sys.path.insert(0, sys.argv[1])
import test_concurrency
from loopbp import _jit
print(_jit.serial(test_concurrency._plus_one)(1.5))
"""


@pytest.mark.slow
def test_processes_saving_new_signatures_at_once_keep_the_cache_sound(tmp_path, monkeypatch):
    """numba's cache can pair a signature with another's machine code; loopbp's lock prevents it.

    This process compiles ``_plus_one`` for an int and is stopped right after
    it has read the cache index for its save; another process then compiles a
    float into the same cache folder.  Without a lock both pick
    ``NAME.1.nbc`` and the index ends up pairing one signature with the
    other's code (a crash when loaded).  With loopbp's lock the other process
    waits, reads the index this one wrote, and takes ``NAME.2.nbc``.
    """
    import subprocess
    import sys

    import numba

    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    mine = _jit.serial(_plus_one)
    cache_file = mine._cache._cache_file
    read_index = cache_file._load_index
    reads, other = [], {}

    def read_then_let_the_other_process_save():
        index = read_index()
        reads.append(index)
        if len(reads) == 2:  # the first read is the cache lookup, the second the save's
            other["process"] = process = subprocess.Popen(
                [sys.executable, "-c", _OTHER_PROCESS, os.path.dirname(__file__)],
                env=env, stdout=subprocess.PIPE, text=True)
            try:
                process.wait(timeout=15)  # it cannot finish its save while we hold the lock
                other["waited"] = False
            except subprocess.TimeoutExpired:
                other["waited"] = True
        return index

    monkeypatch.setattr(cache_file, "_load_index", read_then_let_the_other_process_save)
    assert mine(1) == 2
    out, _ = other["process"].communicate(timeout=120)
    assert out.strip() == "2.5"
    assert other["waited"], "the other process saved while this one was saving"
    assert len(set(read_index().values())) == 2  # one data file per signature
    # a third process loads both signatures from the cache and gets the right code
    check = "import sys; sys.path.insert(0, sys.argv[1]); import test_concurrency as t; " \
            "from loopbp import _jit; f = _jit.serial(t._plus_one); print(f(1), f(2.5)); " \
            "print(sum(f.stats.cache_misses.values()))"
    done = subprocess.run([sys.executable, "-c", check, os.path.dirname(__file__)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["2", "3.5", "0"], done.stderr


@pytest.mark.slow
def test_a_driver_loaded_from_the_cache_runs_its_parallel_kernels(tmp_path):
    """A process that only loads compiled code must still have numba's thread pool started.

    Sequence that crashed (segmentation fault) before loopbp started the pool at
    import: one process compiles a parallel kernel alone, a second compiles the
    feedforward driver, a third loads that driver from the cache and calls it.
    """
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    kernel = ("from loopbp import kernels; kernels.forward_layer(np.ones((50, 200)), "
              "np.ones((200, 50)), np.ones(50), np.ones((1024, 200)), np.empty((1024, 50)), 0)")
    driver = "print(loopbp.Network([200, 50, 40], seed=0).feedforward(np.ones((1024, 200))).sum())"
    outputs = []
    for code in (kernel, f"{kernel}; {driver}", driver):
        done = subprocess.run([sys.executable, "-c", f"import numpy as np, loopbp; {code}"],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(done.stdout.strip())
    assert outputs[1] == outputs[2] != ""


_PROBE = '''
from loopbp._jit import serial
from loopbp.activations import sigmoid_prime


@serial
def slope(a):
    return sigmoid_prime(a)  # inlined from another module of the package
'''


@pytest.mark.slow
def test_an_edit_to_an_inlined_module_alone_recompiles_from_the_cache(tmp_path):
    """A cached function is compiled again when a package file it only inlines from changes.

    numba compares only the defining file; a copy of the package has
    ``sigmoid_prime`` changed to 2a(1 − a) in ``activations.py``, and the function
    that inlines it (defined elsewhere, left untouched) must see the change,
    then be loaded from the cache again while nothing changes.
    """
    import shutil
    import subprocess
    import sys

    package = tmp_path / "src" / "loopbp"
    shutil.copytree(os.path.dirname(loopbp.__file__), package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "src" / "probe.py").write_text(_PROBE)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=str(tmp_path / "src"))
    run = ("import loopbp, probe; print(loopbp.__file__); print(probe.slope(0.5)); "
           "print(sum(probe.slope.stats.cache_misses.values()))")

    def slope_and_misses() -> tuple[float, int]:
        done = subprocess.run([sys.executable, "-c", run], env=env, capture_output=True,
                              text=True, timeout=120, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        where, value, misses = done.stdout.split()
        assert where.startswith(str(package))  # the copy, not the project's package
        return float(value), int(misses)

    assert slope_and_misses() == (0.25, 1)  # compiled and saved
    assert slope_and_misses() == (0.25, 0)  # loaded from the cache
    activations = package / "activations.py"
    source = activations.read_text()
    edited = source.replace("return a * (in_precision_of(a, 1) - a)",
                            "return 2 * a * (in_precision_of(a, 1) - a)")
    assert edited != source
    activations.write_text(edited)
    assert slope_and_misses() == (0.5, 1)  # the edit reached the cached function
    assert slope_and_misses() == (0.5, 0)
