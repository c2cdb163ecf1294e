"""The performance floor: a few key loopbp-versus-NumPy ratios that CI holds up.

Each case is one class with its NumPy twin (the matrix form of
:mod:`loopbp.reference`, products in BLAS), on the same data from the same
parameters, so one asv run gives each ratio NumPy time / loopbp time.
``floor_check.py`` compares those ratios with the floors committed in
``floors.json`` and fails CI when one falls below its floor.  The cases are
kept short (tens of milliseconds) so that CI can repeat them often:

=====================  ====================================================
case                   work
=====================  ====================================================
``EpochNielsen``       one epoch, [784, 30, 10] sigmoid/quadratic, SGD,
                       mini-batch 10, 2000 examples
``EpochWide``          one epoch, [1024, 1024, 1024, 1024], mini-batch 256,
                       512 examples
``EpochReluAdam``      one epoch, [40, 256, 256, 10] ReLU/softmax/Adam,
                       mini-batch 100, 2000 examples (MNIST-1D's shape)
``FeedforwardSmall``   inference, [64, 30, 10], 20,000 rows
``FeedforwardNielsen`` inference, [784, 100, 10] ReLU/softmax, 4000 rows
``FeedforwardWide``    inference, [40, 256, 256, 10] ReLU/softmax, 4000 rows
=====================  ====================================================
"""

from __future__ import annotations

import numpy as np

import loopbp
from loopbp import reference

#: case → (sizes, model options, optimizer, mini-batch size or None, rows).
CASES = {
    "EpochNielsen": ([784, 30, 10], {}, "sgd", 10, 2000),
    "EpochWide": ([1024, 1024, 1024, 1024], {}, "sgd", 256, 512),
    "EpochReluAdam": ([40, 256, 256, 10], {"activation": "relu", "output": "softmax",
                                           "cost": "log_likelihood", "init": "he"},
                      "adam", 100, 2000),
    "FeedforwardSmall": ([64, 30, 10], {}, None, None, 20_000),
    "FeedforwardNielsen": ([784, 100, 10], {"activation": "relu", "output": "softmax",
                                            "cost": "log_likelihood", "init": "he"},
                         None, None, 4000),
    "FeedforwardWide": ([40, 256, 256, 10], {"activation": "relu", "output": "softmax",
                                             "cost": "log_likelihood", "init": "he"},
                        None, None, 4000),
}
#: Learning rates: the derivations' η for SGD, Adam's usual default.
ETA = {"sgd": 3.0, "adam": 1e-3}


def _setup(case: str):
    sizes, model, optimizer, batch, rows = CASES[case]
    net = loopbp.Network(sizes, seed=0, **model)
    rng = np.random.default_rng(0)
    X = rng.random((rows, sizes[0]))
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], rows)]
    return net, X, Y, optimizer, batch


class _Loopbp:
    """loopbp through its public API: ``Network.sgd`` for one epoch, or ``feedforward``."""

    case = ""
    timeout = 120

    def setup(self):
        self.net, self.X, self.Y, self.optimizer, self.batch = _setup(self.case)
        self.time_case()  # compile, or load numba's cache

    def time_case(self):
        if self.batch is None:
            self.net.feedforward(self.X)
        else:
            self.net.sgd(self.X, self.Y, 1, self.batch, ETA[self.optimizer],
                         optimizer=self.optimizer, progress=False)


class _NumPy:
    """The matrix form: ``reference.sgd_epoch`` or ``reference.feedforward``."""

    case = ""
    timeout = 120

    def setup(self):
        net, self.X, self.Y, name, self.batch = _setup(self.case)
        self.weights, self.biases = net.weights, net.biases
        self.activations, self.cost = list(net.activations), net.cost
        self.optimizer = reference.Optimizer(name) if name else None
        self.rng = np.random.default_rng(0)

    def time_case(self):
        if self.batch is None:
            reference.feedforward(self.weights, self.biases, self.X, self.activations)
        else:
            order = self.rng.permutation(self.X.shape[0])
            reference.sgd_epoch(self.weights, self.biases, self.X, self.Y, order, self.batch,
                                ETA[self.optimizer.name], activations=self.activations,
                                cost=self.cost, optimizer=self.optimizer)


# One class per case and side: asv names them, ratios.py pairs ``X`` with ``XNumPy``.
for _case in CASES:
    globals()[_case] = type(_case, (_Loopbp,), {"case": _case, "__doc__": _Loopbp.__doc__})
    globals()[_case + "NumPy"] = type(_case + "NumPy", (_NumPy,),
                                      {"case": _case, "__doc__": _NumPy.__doc__})
