"""Peak memory of training one epoch (mini-batch 100).

asv's ``peakmem_`` is the peak resident size of the whole benchmark process:
the interpreter, NumPy, numba and loopbp's compiled code, the epoch's data and
what training allocates.  The baseline is common to both benchmarks here, so
their difference is what each implementation allocates to train.
"""

from __future__ import annotations

import numpy as np

from loopbp import reference

from .common import DTYPES, EPOCH_EXAMPLES, ETA, SIZE_NAMES, data, network

BATCH = 100
PARAMS = [SIZE_NAMES, DTYPES]
PARAM_NAMES = ["sizes", "dtype"]


def _compile():
    """Compile training for every dtype once, in asv's separate ``setup_cache`` process.

    numba writes the machine code to its on-disk cache, so the measured
    processes load it instead of compiling: the peak is that of training,
    not of LLVM.  Returns the dtypes compiled (asv passes a non-``None``
    result of ``setup_cache`` on to ``setup`` and the benchmark).
    """
    for dtype in DTYPES:
        X, Y = data("small", 4, dtype)
        network("small", dtype).sgd(X, Y, 1, 2, ETA, progress=False)
    return list(DTYPES)


class PeakMem:
    """loopbp: ``Network.sgd`` for one epoch."""

    params = PARAMS
    param_names = PARAM_NAMES

    def setup_cache(self):
        return _compile()

    def setup(self, _, sizes, dtype):
        self.net = network(sizes, dtype)
        self.X, self.Y = data(sizes, EPOCH_EXAMPLES[sizes], dtype)

    def peakmem_epoch(self, _, sizes, dtype):
        self.net.sgd(self.X, self.Y, 1, BATCH, ETA, progress=False)


class PeakMemNumPy:
    """NumPy matrix form: ``reference.sgd_epoch``."""

    params = PARAMS
    param_names = PARAM_NAMES

    def setup(self, sizes, dtype):
        net = network(sizes, dtype)
        self.weights, self.biases = net.weights, net.biases
        self.X, self.Y = data(sizes, EPOCH_EXAMPLES[sizes], dtype)

    def peakmem_epoch(self, sizes, dtype):
        order = np.arange(self.X.shape[0])
        reference.sgd_epoch(self.weights, self.biases, self.X, self.Y, order, BATCH, ETA)
