"""Every kernel stays inside its arrays: the whole path rerun with numba's bounds checks on.

numba checks no bounds by default, so an index one past the end would read or
write memory silently.  With ``NUMBA_BOUNDSCHECK=1`` (in a fresh process and a
fresh cache, so nothing compiled without checks is reused) such an index
raises ``IndexError`` instead.  The shapes leave remainders at every tile and
block edge and take both weight-gradient forms, serial and parallel, with the
softmax and linear outputs and every optimizer's state.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import itertools

    import numpy as np
    import loopbp
    from loopbp import kernels, reference

    rng = np.random.default_rng(0)
    # the derivations' network with plain SGD (whose state arrays are empty), and
    # the softmax and linear outputs with the optimizers that keep state
    MODELS = [({}, "sgd"),
              ({"activation": "relu", "output": "softmax", "cost": "log_likelihood"}, "adam"),
              ({"activation": "tanh", "output": "identity"}, "nesterov")]
    SHAPES = [([1, 1, 1], 3, [1, 2]), ([5, 3, 2], 7, [3, 130]),
              ([37, 18, 9, 5], 150, [10, 129]), ([600, 70, 33], 300, [17, 130])]
    for (sizes, n, batches), dtype, (model, optimizer) in itertools.product(
            SHAPES, (np.float64, np.float32), MODELS):
        net = loopbp.Network(sizes, seed=0, dtype=dtype, **model)
        X = rng.random((n, sizes[0]))
        Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)]  # one-hot: fits every cost
        for batch in batches:
            net.sgd(X, Y, 1, batch, 0.05, progress=False, optimizer=optimizer, l2=0.1)
        assert np.allclose(net.feedforward(X),
                           reference.feedforward(net.weights, net.biases, X.astype(dtype),
                                                 net.activations)[-1], atol=1e-4)
        for rows in (1, 5, 130):
            net.backprop(X[:rows], Y[:rows])
    print("in bounds")
""")


@pytest.mark.slow
def test_kernels_stay_in_bounds_with_bounds_checking_on(tmp_path):
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "in bounds" in result.stdout
