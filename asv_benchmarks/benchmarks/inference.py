"""Inference throughput: the output layer's activations for a large batch.

``Feedforward`` times ``Network.feedforward``; the peers compute the same
activations from the same parameters (NumPy matrix form, scikit-learn's
``predict_proba``, a PyTorch forward pass under ``inference_mode``).  The
number of rows is ``common.INFERENCE_ROWS[sizes]``; divide it by the time for
examples per second.
"""

from __future__ import annotations

from loopbp import reference

from .common import (
    DTYPES,
    INFERENCE_ROWS,
    SIZE_NAMES,
    data,
    import_mlp,
    import_torch,
    mlp,
    network,
    torch_model,
)

PARAMS = [SIZE_NAMES, DTYPES]
PARAM_NAMES = ["sizes", "dtype"]


class Feedforward:
    """loopbp: ``Network.feedforward`` (compiled, in chunks of 1024 rows)."""

    params = PARAMS
    param_names = PARAM_NAMES

    def setup(self, sizes, dtype):
        self.net = network(sizes, dtype)
        self.X, _ = data(sizes, INFERENCE_ROWS[sizes], dtype)
        self.net.feedforward(self.X[:10])  # compile

    def time_feedforward(self, sizes, dtype):
        self.net.feedforward(self.X)


class FeedforwardNumPy:
    """NumPy matrix form: ``reference.feedforward``."""

    params = PARAMS
    param_names = PARAM_NAMES

    def setup(self, sizes, dtype):
        net = network(sizes, dtype)
        self.weights, self.biases = net.weights, net.biases
        self.X, _ = data(sizes, INFERENCE_ROWS[sizes], dtype)

    def time_feedforward(self, sizes, dtype):
        reference.feedforward(self.weights, self.biases, self.X)


class FeedforwardSklearn:
    """scikit-learn: ``MLPClassifier.predict_proba``."""

    params = PARAMS
    param_names = PARAM_NAMES

    def setup(self, sizes, dtype):
        MLPClassifier = import_mlp()
        self.X, Y = data(sizes, INFERENCE_ROWS[sizes], dtype)
        self.clf = mlp(MLPClassifier, network(sizes, dtype), 10, self.X, Y)

    def time_feedforward(self, sizes, dtype):
        self.clf.predict_proba(self.X)


class FeedforwardTorch:
    """PyTorch: the model's forward pass under ``torch.inference_mode()``."""

    params = PARAMS
    param_names = PARAM_NAMES

    def setup(self, sizes, dtype):
        self.torch = torch = import_torch()
        self.model = torch_model(torch, network(sizes, dtype))
        X, _ = data(sizes, INFERENCE_ROWS[sizes], dtype)
        self.X = torch.from_numpy(X)

    def time_feedforward(self, sizes, dtype):
        with self.torch.inference_mode():
            self.model(self.X)
