"""The networks people train today: ReLU hidden layers, softmax output, log-likelihood, Adam.

The same sizes, mini-batches and dtypes as the derivations' network in
:mod:`.training` and :mod:`.inference` (``common.PARAMS``), with
``activation="relu", output="softmax", cost="log_likelihood", init="he"`` and
the Adam optimizer at η = 0.001.  The peers do the same work from the same
initial parameters:

* ``*NumPy``: :mod:`loopbp.reference` with the same activations, cost and
  :class:`loopbp.reference.Optimizer` (BLAS products);
* ``*Sklearn``: ``MLPClassifier(activation="relu", solver="adam")`` on integer
  labels (softmax output and log-loss, as loopbp), through ``partial_fit``;
* ``*Torch``: ``nn.Linear`` + ``nn.ReLU`` layers, ``cross_entropy`` on the last
  layer's weighted inputs and ``torch.optim.Adam``.
"""

from __future__ import annotations

import numpy as np

import loopbp
from loopbp import reference

from .common import (
    EPOCH_EXAMPLES,
    INFERENCE_ROWS,
    PARAM_NAMES,
    PARAMS,
    SIZES,
    data,
    import_mlp,
    import_torch,
)

#: The network's activations, cost and initializer.
MODEL = {"activation": "relu", "output": "softmax", "cost": "log_likelihood", "init": "he"}
#: Adam's learning rate (its usual default).
ADAM_ETA = 1e-3

INFERENCE_PARAMS = [PARAMS[0], PARAMS[2]]
INFERENCE_PARAM_NAMES = ["sizes", "dtype"]


def network(sizes_name: str, dtype: str) -> loopbp.Network:
    """The ReLU/softmax network every implementation starts from."""
    return loopbp.Network(SIZES[sizes_name], seed=0, dtype=np.dtype(dtype), **MODEL)


def torch_model(torch, net: loopbp.Network):
    """``nn.Linear`` + ``nn.ReLU`` layers holding ``net``'s parameters; the last layer's
    weighted inputs go to ``cross_entropy`` (softmax and log-likelihood in one)."""
    layers = []
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        linear = torch.nn.Linear(w.shape[1], w.shape[0], dtype=torch.from_numpy(w).dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
        if i < len(net.weights) - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def mlp(MLPClassifier, net: loopbp.Network, batch: int, X: np.ndarray, labels: np.ndarray):
    """An ``MLPClassifier`` with ReLU, Adam and no penalty, holding ``net``'s parameters."""
    clf = MLPClassifier(
        hidden_layer_sizes=tuple(net.sizes[1:-1]), activation="relu", solver="adam",
        batch_size=batch, learning_rate_init=ADAM_ETA, alpha=0.0, shuffle=True,
        random_state=0, early_stopping=False)
    clf.partial_fit(X[:batch], labels[:batch], classes=np.arange(net.sizes[-1]))
    clf.coefs_ = [w.T.copy() for w in net.weights]  # scikit-learn stores (n_in, n_out)
    clf.intercepts_ = [b.copy() for b in net.biases]
    return clf


# --- one epoch ------------------------------------------------------------------


class EpochReluAdam:
    """loopbp: ``Network.sgd`` for one epoch with Adam."""

    params = PARAMS
    param_names = PARAM_NAMES
    timeout = 300

    def setup(self, sizes, batch, dtype):
        self.net = network(sizes, dtype)
        self.X, self.Y = data(sizes, EPOCH_EXAMPLES[sizes], dtype)
        self.net.sgd(self.X[:batch], self.Y[:batch], 1, batch, ADAM_ETA, optimizer="adam",
                     progress=False)  # compile

    def time_epoch(self, sizes, batch, dtype):
        self.net.sgd(self.X, self.Y, 1, batch, ADAM_ETA, optimizer="adam", progress=False)


class EpochReluAdamNumPy:
    """NumPy matrix form: ``reference.sgd_epoch`` with ReLU, softmax and Adam."""

    params = PARAMS
    param_names = PARAM_NAMES
    timeout = 300

    def setup(self, sizes, batch, dtype):
        net = network(sizes, dtype)
        self.weights, self.biases, self.names = net.weights, net.biases, list(net.activations)
        self.X, self.Y = data(sizes, EPOCH_EXAMPLES[sizes], dtype)
        self.optimizer = reference.Optimizer("adam")
        self.rng = np.random.default_rng(0)

    def time_epoch(self, sizes, batch, dtype):
        order = self.rng.permutation(self.X.shape[0])
        reference.sgd_epoch(self.weights, self.biases, self.X, self.Y, order, batch, ADAM_ETA,
                            activations=self.names, cost="log_likelihood",
                            optimizer=self.optimizer)


class EpochReluAdamSklearn:
    """scikit-learn: one ``partial_fit`` (relu, adam) over the epoch's examples."""

    params = PARAMS
    param_names = PARAM_NAMES
    timeout = 300

    def setup(self, sizes, batch, dtype):
        MLPClassifier = import_mlp()
        self.X, Y = data(sizes, EPOCH_EXAMPLES[sizes], dtype)
        self.labels = Y.argmax(axis=1)
        self.clf = mlp(MLPClassifier, network(sizes, dtype), batch, self.X, self.labels)

    def time_epoch(self, sizes, batch, dtype):
        self.clf.partial_fit(self.X, self.labels)


class EpochReluAdamTorch:
    """PyTorch: a training loop with ``cross_entropy`` and ``torch.optim.Adam``."""

    params = PARAMS
    param_names = PARAM_NAMES
    timeout = 300

    def setup(self, sizes, batch, dtype):
        self.torch = torch = import_torch()
        self.model = torch_model(torch, network(sizes, dtype))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=ADAM_ETA)
        X, Y = data(sizes, EPOCH_EXAMPLES[sizes], dtype)
        self.X, self.labels = torch.from_numpy(X), torch.from_numpy(Y.argmax(axis=1))
        self.generator = torch.Generator().manual_seed(0)
        self.step(self.X[:batch], self.labels[:batch])

    def step(self, X, labels) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.torch.nn.functional.cross_entropy(self.model(X), labels).backward()
        self.optimizer.step()

    def time_epoch(self, sizes, batch, dtype):
        n = self.X.shape[0]
        order = self.torch.randperm(n, generator=self.generator)
        for start in range(0, n, batch):
            rows = order[start:start + batch]
            self.step(self.X[rows], self.labels[rows])


# --- inference --------------------------------------------------------------------


class FeedforwardReluSoftmax:
    """loopbp: ``Network.feedforward`` of the ReLU/softmax network."""

    params = INFERENCE_PARAMS
    param_names = INFERENCE_PARAM_NAMES

    def setup(self, sizes, dtype):
        self.net = network(sizes, dtype)
        self.X, _ = data(sizes, INFERENCE_ROWS[sizes], dtype)
        self.net.feedforward(self.X[:10])  # compile

    def time_feedforward(self, sizes, dtype):
        self.net.feedforward(self.X)


class FeedforwardReluSoftmaxNumPy:
    """NumPy matrix form: ``reference.feedforward`` with ReLU and softmax."""

    params = INFERENCE_PARAMS
    param_names = INFERENCE_PARAM_NAMES

    def setup(self, sizes, dtype):
        net = network(sizes, dtype)
        self.weights, self.biases, self.names = net.weights, net.biases, list(net.activations)
        self.X, _ = data(sizes, INFERENCE_ROWS[sizes], dtype)

    def time_feedforward(self, sizes, dtype):
        reference.feedforward(self.weights, self.biases, self.X, self.names)


class FeedforwardReluSoftmaxSklearn:
    """scikit-learn: ``predict_proba`` of the ReLU network (softmax output)."""

    params = INFERENCE_PARAMS
    param_names = INFERENCE_PARAM_NAMES

    def setup(self, sizes, dtype):
        MLPClassifier = import_mlp()
        self.X, Y = data(sizes, INFERENCE_ROWS[sizes], dtype)
        self.clf = mlp(MLPClassifier, network(sizes, dtype), 10, self.X, Y.argmax(axis=1))

    def time_feedforward(self, sizes, dtype):
        self.clf.predict_proba(self.X)


class FeedforwardReluSoftmaxTorch:
    """PyTorch: forward pass and softmax under ``torch.inference_mode()``."""

    params = INFERENCE_PARAMS
    param_names = INFERENCE_PARAM_NAMES

    def setup(self, sizes, dtype):
        self.torch = torch = import_torch()
        self.model = torch_model(torch, network(sizes, dtype))
        X, _ = data(sizes, INFERENCE_ROWS[sizes], dtype)
        self.X = torch.from_numpy(X)

    def time_feedforward(self, sizes, dtype):
        with self.torch.inference_mode():
            self.torch.softmax(self.model(self.X), dim=1)
