"""Training: one mini-batch step, one epoch, and the epoch with 1 and 2 threads.

loopbp is timed through its public API (``Network.sgd``, ``Network.backprop``),
so the numbers include what a user pays per call: argument checks and the
buffers ``sgd`` allocates once per call.  The peers do the same work from the
same initial parameters:

* ``*NumPy``: the matrix form of :mod:`loopbp.reference` (BLAS products);
* ``*Sklearn``: scikit-learn's ``MLPClassifier`` (sgd, logistic, no momentum,
  no penalty) through ``partial_fit``, which is one pass over its data;
* ``*Torch``: a PyTorch CPU loop of ``nn.Linear`` + sigmoid layers with the
  quadratic cost and plain ``torch.optim.SGD``, on as many threads as loopbp.

Peers whose package is not installed are skipped.  All compilation (and JIT
cache loading) happens in ``setup``.
"""

from __future__ import annotations

import numpy as np

import loopbp
from loopbp import reference

from .common import (
    EPOCH_EXAMPLES,
    ETA,
    PARAM_NAMES,
    PARAMS,
    data,
    import_mlp,
    import_torch,
    mlp,
    network,
    skip_unless,
    torch_model,
    torch_step,
)

# --- one training step: a single mini-batch of `batch` examples ---------------------


class Step:
    """loopbp: one ``sgd`` call over exactly one mini-batch; ``backprop`` alone."""

    params = PARAMS
    param_names = PARAM_NAMES

    def setup(self, sizes, batch, dtype):
        self.net = network(sizes, dtype)
        self.X, self.Y = data(sizes, batch, dtype)
        self.time_step(sizes, batch, dtype)  # compile
        self.time_backprop(sizes, batch, dtype)

    def time_step(self, sizes, batch, dtype):
        self.net.sgd(self.X, self.Y, 1, batch, ETA, progress=False)

    def time_backprop(self, sizes, batch, dtype):
        self.net.backprop(self.X, self.Y)


class StepNumPy:
    """NumPy matrix form: ``reference.backprop`` and the update."""

    params = PARAMS
    param_names = PARAM_NAMES

    def setup(self, sizes, batch, dtype):
        net = network(sizes, dtype)
        self.weights, self.biases = net.weights, net.biases
        self.X, self.Y = data(sizes, batch, dtype)
        self.order = np.arange(batch)

    def time_step(self, sizes, batch, dtype):
        reference.sgd_epoch(self.weights, self.biases, self.X, self.Y, self.order, batch, ETA)

    def time_backprop(self, sizes, batch, dtype):
        reference.backprop(self.weights, self.biases, self.X, self.Y)


class StepSklearn:
    """scikit-learn: ``partial_fit`` on one mini-batch."""

    params = PARAMS
    param_names = PARAM_NAMES

    def setup(self, sizes, batch, dtype):
        MLPClassifier = import_mlp()
        self.X, self.Y = data(sizes, batch, dtype)
        self.clf = mlp(MLPClassifier, network(sizes, dtype), batch, self.X, self.Y)

    def time_step(self, sizes, batch, dtype):
        self.clf.partial_fit(self.X, self.Y)


class StepTorch:
    """PyTorch: forward, backward and ``optimizer.step()`` on one mini-batch."""

    params = PARAMS
    param_names = PARAM_NAMES

    def setup(self, sizes, batch, dtype):
        self.torch = torch = import_torch()
        self.model = torch_model(torch, network(sizes, dtype))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=ETA)
        X, Y = data(sizes, batch, dtype)
        self.X, self.Y = torch.from_numpy(X), torch.from_numpy(Y)
        self.time_step(sizes, batch, dtype)

    def time_step(self, sizes, batch, dtype):
        torch_step(self.torch, self.model, self.optimizer, self.X, self.Y)

    def time_backprop(self, sizes, batch, dtype):
        self.model.zero_grad(set_to_none=True)
        (0.5 * ((self.model(self.X) - self.Y) ** 2).sum(dim=1).mean()).backward()


# --- one epoch: every example once, in shuffled mini-batches -------------------------


class Epoch:
    """loopbp: ``Network.sgd`` for one epoch (the mini-batch loop runs compiled)."""

    params = PARAMS
    param_names = PARAM_NAMES
    timeout = 300

    def setup(self, sizes, batch, dtype):
        self.net = network(sizes, dtype)
        self.X, self.Y = data(sizes, EPOCH_EXAMPLES[sizes], dtype)
        self.net.sgd(self.X[:batch], self.Y[:batch], 1, batch, ETA, progress=False)  # compile

    def time_epoch(self, sizes, batch, dtype):
        self.net.sgd(self.X, self.Y, 1, batch, ETA, progress=False)


class EpochNumPy:
    """NumPy matrix form: ``reference.sgd_epoch`` over a fresh shuffle."""

    params = PARAMS
    param_names = PARAM_NAMES
    timeout = 300

    def setup(self, sizes, batch, dtype):
        net = network(sizes, dtype)
        self.weights, self.biases = net.weights, net.biases
        self.X, self.Y = data(sizes, EPOCH_EXAMPLES[sizes], dtype)
        self.rng = np.random.default_rng(0)

    def time_epoch(self, sizes, batch, dtype):
        order = self.rng.permutation(self.X.shape[0])
        reference.sgd_epoch(self.weights, self.biases, self.X, self.Y, order, batch, ETA)


class EpochSklearn:
    """scikit-learn: one ``partial_fit`` over the epoch's examples (shuffled)."""

    params = PARAMS
    param_names = PARAM_NAMES
    timeout = 300

    def setup(self, sizes, batch, dtype):
        MLPClassifier = import_mlp()
        self.X, self.Y = data(sizes, EPOCH_EXAMPLES[sizes], dtype)
        self.clf = mlp(MLPClassifier, network(sizes, dtype), batch, self.X, self.Y)

    def time_epoch(self, sizes, batch, dtype):
        self.clf.partial_fit(self.X, self.Y)


class EpochTorch:
    """PyTorch: a plain training loop over a fresh ``randperm``."""

    params = PARAMS
    param_names = PARAM_NAMES
    timeout = 300

    def setup(self, sizes, batch, dtype):
        self.torch = torch = import_torch()
        self.model = torch_model(torch, network(sizes, dtype))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=ETA)
        X, Y = data(sizes, EPOCH_EXAMPLES[sizes], dtype)
        self.X, self.Y = torch.from_numpy(X), torch.from_numpy(Y)
        self.generator = torch.Generator().manual_seed(0)
        torch_step(torch, self.model, self.optimizer, self.X[:batch], self.Y[:batch])

    def time_epoch(self, sizes, batch, dtype):
        torch = self.torch
        n = self.X.shape[0]
        order = torch.randperm(n, generator=self.generator)
        for start in range(0, n, batch):
            rows = order[start:start + batch]
            torch_step(torch, self.model, self.optimizer, self.X[rows], self.Y[rows])


# --- thread scaling: the same epoch on 1 and on 2 threads ----------------------------

THREAD_PARAMS = [["nielsen", "hidden256", "wide"], [1, 2]]
THREAD_PARAM_NAMES = ["sizes", "threads"]


class ThreadScaling:
    """loopbp: ``Network.sgd`` for one epoch (mini-batch 64, float64) on 1 and 2 threads.

    Kernels parallelize over examples and neurons with ``prange``; the ratio
    of the two timings is the speed-up from the second core.  A thread count
    above what numba was started with is skipped.
    """

    params = THREAD_PARAMS
    param_names = THREAD_PARAM_NAMES
    timeout = 300
    batch, dtype = 64, "float64"

    def setup(self, sizes, threads):
        import numba

        self.previous = loopbp.get_num_threads()
        skip_unless(threads <= numba.config.NUMBA_NUM_THREADS)
        loopbp.set_num_threads(threads)
        self.net = network(sizes, self.dtype)
        self.X, self.Y = data(sizes, EPOCH_EXAMPLES[sizes], self.dtype)
        self.net.sgd(self.X[:self.batch], self.Y[:self.batch], 1, self.batch, ETA,
                     progress=False)  # compile

    def teardown(self, sizes, threads):
        loopbp.set_num_threads(self.previous)

    def time_epoch(self, sizes, threads):
        self.net.sgd(self.X, self.Y, 1, self.batch, ETA, progress=False)
