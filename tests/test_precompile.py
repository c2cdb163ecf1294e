"""Compiling ahead of time: ``loopbp compile`` and :func:`loopbp.precompile.precompile`."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from loopbp import cli, kernels, network, precompile


def test_the_probe_reaches_both_kernel_sets_in_training_and_inference():
    """The probe's batches must take the serial twins and the parallel kernels, both in
    training and when fed forward, or one set would be left to the first real run."""
    sizes, serial, parallel = precompile._SIZES, precompile._SERIAL_ROWS, precompile._PARALLEL_ROWS
    assert network.kernels_for(sizes, serial) is kernels.SERIAL
    assert network.kernels_for(sizes, parallel) is kernels
    assert network.feedforward_chunk(sizes, serial) == serial
    assert network.kernels_for(sizes, serial, backward=False) is kernels.SERIAL
    chunk = network.feedforward_chunk(sizes, parallel)
    assert network.kernels_for(sizes, chunk, backward=False) is kernels


@pytest.mark.parametrize("dtypes", ["float16", ["float64", "int32"], [None], ["no such type"],
                                    [np.complex128]])
def test_dtypes_other_than_float64_and_float32_are_refused(dtypes):
    with pytest.raises(ValueError, match="dtypes must name float64 or float32"):
        precompile.precompile(dtypes)


def test_compile_refuses_an_unknown_dtype(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["compile", "--dtype", "float16"])
    assert stop.value.code == 2
    assert "invalid choice: 'float16'" in capsys.readouterr().err


_LATER_RUN = """
import numpy as np, loopbp
from loopbp.cli import compile_kernels
rng = np.random.default_rng(0)

def work():
    for sizes, rows, batch in (([64, 30, 10], 200, 10), ([300, 200, 10], 512, 128)):
        X, y = rng.random((rows, sizes[0])), rng.integers(0, 10, rows)
        net = loopbp.Network(sizes, activation="relu", output="softmax", cost="log_likelihood",
                             dtype="float32", seed=0)
        net.sgd(X, y, 1, batch, 0.01, optimizer="adam", progress=False)
        net.feedforward(X), net.mean_cost(X, y), net.backprop(X[:batch], y[:batch])
        net.evaluate(X, y)
    from loopbp.sklearn import MLPClassifier, MLPRegressor  # float32 inputs: float32 networks
    X = rng.random((300, 20)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, early_stopping=True, random_state=0)
    clf.fit(X, y, sample_weight=rng.random(300)).predict_proba(X)
    MLPRegressor(hidden_layer_sizes=(16,), random_state=0).partial_fit(X, X[:, :2]).predict(X)

print("compiled seconds:", compile_kernels(work))
"""


@pytest.mark.slow
def test_after_compile_a_new_process_compiles_nothing(tmp_path):
    """``loopbp compile --dtype float32`` into an empty cache; then a new process trains,
    feeds forward and backpropagates float32 networks of other sizes, activations, cost
    and optimizer, serially and in parallel, and fits the scikit-learn estimators (sample
    weights, early stopping, partial_fit), and numba compiles none of loopbp's kernels."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    first = subprocess.run([sys.executable, "-m", "loopbp", "compile", "--dtype", "float32"],
                           env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "kernels for float32" in first.stdout and "compiled in" in first.stdout
    later = subprocess.run([sys.executable, "-c", _LATER_RUN], env=env, capture_output=True,
                           text=True, timeout=300)
    assert later.returncode == 0, later.stderr[-2000:]
    assert later.stdout.strip().endswith("compiled seconds: None"), later.stdout
    again = subprocess.run([sys.executable, "-m", "loopbp", "compile", "--dtype", "float32"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "all were already in the cache" in again.stdout


def test_without_dask_the_dask_steps_are_left_out_and_said_so(monkeypatch):
    """Dask is an optional extra: without it the network's kernels are still compiled and the
    Dask steps are reported as left out (it was an ImportError after the float64 compile)."""
    import sys

    import loopbp

    monkeypatch.setitem(sys.modules, "loopbp.distributed", None)  # import fails, as without Dask
    monkeypatch.delattr(loopbp, "distributed", raising=False)
    assert precompile.precompile("float64") == [
        "the Dask steps (loopbp.distributed): Dask is not installed"]
