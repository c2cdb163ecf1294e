"""Each compiled kernel of :mod:`loopbp.kernels` alone, and the same step in NumPy.

A kernel that acts on a layer's weights (``forward_layer``, ``transpose``,
``gradients``, ``update`` with plain SGD and with Adam) runs on the network's first layer, the
biggest of ``small`` and ``nielsen``; ``output_error`` and ``hidden_error``
run on the output layer (the error of the output layer, and that error sent
back to the last hidden layer).  ``batch`` is the number of examples ``n``.

Each kernel has its own class (so that ``setup`` loads only that kernel's
machine code), and a ``...NumPy`` twin times the same operation in the NumPy
matrix form of :mod:`loopbp.reference` under the same method and parameter
names.
"""

from __future__ import annotations

import numpy as np

from loopbp import kernels, reference
from loopbp.activations import SIGMOID
from loopbp.costs import QUADRATIC
from loopbp.optimizers import ADAM, SGD

from .common import ETA, PARAM_NAMES, PARAMS, SIZES


class _Arrays:
    """Arrays of one layer and one mini-batch, with the shapes the kernels document."""

    params = PARAMS
    param_names = PARAM_NAMES

    def setup(self, sizes, batch, dtype):
        rng = np.random.default_rng(0)
        sizes = SIZES[sizes]
        n, n_in, n_out = batch, sizes[0], sizes[1]

        def normal(*shape):
            return rng.standard_normal(shape).astype(dtype)

        def uniform(*shape):
            return rng.random(shape).astype(dtype)

        # first layer: n_in -> n_out
        self.w, self.b = normal(n_out, n_in), normal(n_out)
        self.w_T = np.ascontiguousarray(self.w.T)
        self.a_prev, self.a = uniform(n, n_in), np.zeros((n, n_out), dtype)
        self.delta = normal(n, n_out)
        self.dC_dw, self.dC_db = normal(n_out, n_in), normal(n_out)
        self.delta_T, self.a_prev_T = np.zeros((n_out, n), dtype), np.zeros((n_in, n), dtype)
        # output layer: sizes[-2] -> sizes[-1]
        self.w_out = normal(sizes[-1], sizes[-2])
        self.w_out_T = np.ascontiguousarray(self.w_out.T)
        self.a_out, self.y = uniform(n, sizes[-1]), uniform(n, sizes[-1])
        self.delta_out = np.zeros((n, sizes[-1]), dtype)
        self.a_hidden, self.delta_hidden = uniform(n, sizes[-2]), np.zeros((n, sizes[-2]), dtype)
        # the updates move their own copy, so repeated calls leave the others alone
        self.w_sgd, self.b_sgd = self.w.copy(), self.b.copy()
        self.eta = np.dtype(dtype).type(ETA)
        # Adam's moments, for loopbp's update and for the NumPy optimizer's
        self.m_w, self.v_w = np.zeros_like(self.w), np.zeros_like(self.w)
        self.m_b, self.v_b = np.zeros_like(self.b), np.zeros_like(self.b)
        self.adam = reference.Optimizer("adam")
        self.warm_up()

    def warm_up(self):
        """Run the timed method once (for loopbp: the JIT compilation or cache load)."""
        for name in dir(self):
            if name.startswith("time_"):
                getattr(self, name)(None, None, None)


class ForwardLayer(_Arrays):
    def time_forward_layer(self, sizes, batch, dtype):
        kernels.forward_layer(self.w, self.w_T, self.b, self.a_prev, self.a, SIGMOID)


class ForwardLayerNumPy(_Arrays):
    def time_forward_layer(self, sizes, batch, dtype):
        self.a[...] = reference.sigmoid(self.a_prev @ self.w.T + self.b)  # M1, M2


class OutputError(_Arrays):
    def time_output_error(self, sizes, batch, dtype):
        kernels.output_error(self.a_out, self.y, self.delta_out, SIGMOID, QUADRATIC)


class OutputErrorNumPy(_Arrays):
    def time_output_error(self, sizes, batch, dtype):
        a = self.a_out
        self.delta_out[...] = (a - self.y) * a * (1 - a)  # M3


class HiddenError(_Arrays):
    def time_hidden_error(self, sizes, batch, dtype):
        kernels.hidden_error(self.w_out, self.w_out_T, self.delta_out, self.a_hidden,
                             self.delta_hidden, SIGMOID)


class HiddenErrorNumPy(_Arrays):
    def time_hidden_error(self, sizes, batch, dtype):
        a = self.a_hidden
        self.delta_hidden[...] = (self.delta_out @ self.w_out_T.T) * a * (1 - a)  # M4


class Transpose(_Arrays):
    def time_transpose(self, sizes, batch, dtype):
        kernels.transpose(self.w, self.w_T)


class TransposeNumPy(_Arrays):
    def time_transpose(self, sizes, batch, dtype):
        self.w_T[...] = self.w.T


class Gradients(_Arrays):
    def time_gradients(self, sizes, batch, dtype):
        kernels.gradients(self.delta, self.a_prev, self.dC_dw, self.dC_db,
                          self.delta_T, self.a_prev_T)


class GradientsNumPy(_Arrays):
    def time_gradients(self, sizes, batch, dtype):
        np.matmul(self.delta.T, self.a_prev, out=self.dC_dw)  # M5
        self.dC_dw /= self.delta.shape[0]
        np.mean(self.delta, axis=0, out=self.dC_db)  # M6


#: ``update``'s hyperparameters: η, no L2, μ, β1, β2, ε, and Adam's bias corrections at step 10.
HYPER = (ETA, 0.0, 0.9, 0.9, 0.999, 1e-8, 1 - 0.9 ** 10, 1 - 0.999 ** 10)


class SgdUpdate(_Arrays):
    def time_sgd_update(self, sizes, batch, dtype):
        # plain SGD reads no optimizer state: the gradients stand in for it
        kernels.update(self.w_sgd, self.b_sgd, self.dC_dw, self.dC_db, SGD, HYPER,
                       self.dC_dw, self.dC_db, self.dC_dw, self.dC_db)


class SgdUpdateNumPy(_Arrays):
    def time_sgd_update(self, sizes, batch, dtype):
        self.w_sgd -= self.eta * self.dC_dw
        self.b_sgd -= self.eta * self.dC_db


class AdamUpdate(_Arrays):
    """Adam's update: the moments and the parameters, one pass."""

    def time_adam_update(self, sizes, batch, dtype):
        kernels.update(self.w_sgd, self.b_sgd, self.dC_dw, self.dC_db, ADAM, HYPER,
                       self.v_w, self.v_b, self.m_w, self.m_b)


class AdamUpdateNumPy(_Arrays):
    """NumPy: ``reference.Optimizer("adam").step`` on the same arrays."""

    def time_adam_update(self, sizes, batch, dtype):
        self.adam.step([self.w_sgd, self.b_sgd], [self.dC_dw, self.dC_db], ETA)
