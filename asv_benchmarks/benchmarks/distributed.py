"""Training on a Dask cluster: one epoch with 1 and 2 workers, and the same epoch in one process.

``loopbp.distributed.sgd`` (synchronous: one round trip between the client and
the workers per mini-batch) and ``loopbp.distributed.local_sgd`` (a round trip
per :data:`SYNC_EVERY` mini-batches) on a ``LocalCluster`` of ``workers``
processes with one kernel thread each, against ``Network.sgd`` in this
process on ``workers`` threads — the same cores doing the same epoch.

Networks, each with its own mini-batch (so that the work per step spans a
wide range):

* ``small``: ``[64, 30, 10]``, mini-batch 10 — microseconds of work per step,
  where a round trip per step cannot pay;
* ``hidden256``: ``[784, 256, 256, 10]``, mini-batch 256;
* ``wide``: ``[1024, 1024, 1024, 1024]``, mini-batch 256 — tens of
  milliseconds of work per step.

The cluster is started and the workers' kernels compiled in ``setup``; the
timed epoch includes scattering the data to the workers, as a user's call
does.  Skipped where Dask is not installed (asv's history environments).
"""

from __future__ import annotations

import numpy as np

import loopbp

from .common import skip_unless

#: Network, mini-batch and epoch rows of each case.
CASES = {
    "small": ([64, 30, 10], 10, 1000),
    "hidden256": ([784, 256, 256, 10], 256, 4096),
    "wide": ([1024, 1024, 1024, 1024], 256, 2048),
}
#: Local SGD: mini-batch steps per rank between two averages.
SYNC_EVERY = 16
#: Learning rate (small, so that the random data never make the cost diverge).
ETA = 0.1

PARAMS = [list(CASES), [1, 2]]
PARAM_NAMES = ["sizes", "workers"]


def _epoch_data(sizes_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs in [0, 1) and one-hot random labels, as ``common.data`` makes them."""
    sizes, _, rows = CASES[sizes_name]
    rng = np.random.default_rng(0)
    X = rng.random((rows, sizes[0]))
    Y = np.zeros((rows, sizes[-1]))
    Y[np.arange(rows), rng.integers(0, sizes[-1], rows)] = 1
    return X, Y


class _OnCluster:
    """A ``LocalCluster`` of ``workers`` processes (1 thread each), loopback only."""

    params = PARAMS
    param_names = PARAM_NAMES
    timeout = 300
    number = 1
    repeat = (1, 3, 60.0)

    def setup(self, sizes, workers):
        try:
            import distributed

            from loopbp import distributed as on_dask
        except ImportError:
            raise NotImplementedError("Dask is not installed") from None
        import numba

        skip_unless(workers <= numba.config.NUMBA_NUM_THREADS)
        self.on_dask = on_dask
        self.cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                                processes=True, host="127.0.0.1",
                                                dashboard_address=":0", silence_logs=40)
        self.client = None
        try:
            self.client = distributed.Client(self.cluster, set_as_default=False)
            self.sizes, self.batch, _ = CASES[sizes]
            self.X, self.Y = _epoch_data(sizes)
            self.net = loopbp.Network(self.sizes, seed=0)
            # compile on the client and the workers (and load the caches) before timing
            self.train(self.X[:2 * self.batch], self.Y[:2 * self.batch])
        except BaseException:  # asv runs no teardown after a failed setup
            self.teardown(sizes, workers)
            raise

    def teardown(self, sizes, workers):
        if self.client is not None:
            self.client.close()
        self.cluster.close()


class DaskEpoch(_OnCluster):
    """``loopbp.distributed.sgd``: one epoch, one round trip per mini-batch."""

    def train(self, X, Y):
        self.on_dask.sgd(self.net, X, Y, 1, self.batch, ETA, client=self.client,
                         progress=False)

    def time_epoch(self, sizes, workers):
        self.train(self.X, self.Y)


class DaskLocalEpoch(_OnCluster):
    """``loopbp.distributed.local_sgd``: one epoch, a round trip per 16 mini-batches."""

    def train(self, X, Y):
        self.on_dask.local_sgd(self.net, X, Y, 1, self.batch, ETA, client=self.client,
                               sync_every=SYNC_EVERY, progress=False)

    def time_epoch(self, sizes, workers):
        self.train(self.X, self.Y)


class OneProcessEpoch:
    """``Network.sgd`` in this process on ``workers`` threads: the yardstick."""

    params = PARAMS
    param_names = PARAM_NAMES
    timeout = 300

    def setup(self, sizes, workers):
        import numba

        skip_unless(workers <= numba.config.NUMBA_NUM_THREADS)
        self.previous = loopbp.get_num_threads()
        loopbp.set_num_threads(workers)
        self.sizes, self.batch, _ = CASES[sizes]
        self.X, self.Y = _epoch_data(sizes)
        self.net = loopbp.Network(self.sizes, seed=0)
        self.net.sgd(self.X[:self.batch], self.Y[:self.batch], 1, self.batch, ETA,
                     progress=False)  # compile

    def teardown(self, sizes, workers):
        loopbp.set_num_threads(self.previous)

    def time_epoch(self, sizes, workers):
        self.net.sgd(self.X, self.Y, 1, self.batch, ETA, progress=False)
