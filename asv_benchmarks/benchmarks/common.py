"""Shared parameter grid, data and helpers for the benchmark modules.

Every benchmark of the same work takes the same parameters under the same
names (``sizes``, ``batch``, ``dtype``), whether it times loopbp or a peer,
so that a ratio can be read from one run (see ``ratios.py``).

``sizes`` names a network:

* ``small``: ``[64, 30, 10]`` (the derivations' digits network),
* ``nielsen``: ``[784, 30, 10]`` (MNIST-scale, as in Nielsen's book),
* ``wide``: ``[1024, 1024, 1024, 1024]`` (three 1024 × 1024 layers).

The data are random inputs in [0, 1) with random class labels, one-hot
encoded; their values do not change the amount of work.  Epochs hold fewer
examples for bigger networks so that one pass of the whole suite stays short.
"""

from __future__ import annotations

import numpy as np

import loopbp

#: Layer sizes of each named network.
SIZES = {
    "small": [64, 30, 10],
    "nielsen": [784, 30, 10],
    "wide": [1024, 1024, 1024, 1024],
    # used by the thread-scaling benchmark only: two 256-neuron hidden layers
    "hidden256": [784, 256, 256, 10],
}
#: Training examples in one epoch.
EPOCH_EXAMPLES = {"small": 4000, "nielsen": 20_000, "wide": 256, "hidden256": 2048}
#: Rows fed forward by the inference benchmarks.
INFERENCE_ROWS = {"small": 50_000, "nielsen": 10_000, "wide": 2048}

SIZE_NAMES = ["small", "nielsen", "wide"]
BATCHES = [10, 100]
DTYPES = ["float64", "float32"]
#: Learning rate η (Nielsen's value for the digits network).
ETA = 3.0

#: The grid of the training and kernel benchmarks.
PARAMS = [SIZE_NAMES, BATCHES, DTYPES]
PARAM_NAMES = ["sizes", "batch", "dtype"]


def data(sizes_name: str, n: int, dtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random examples for the network ``sizes_name``: inputs ``X`` and one-hot ``Y``."""
    sizes = SIZES[sizes_name]
    rng = np.random.default_rng(seed)
    X = rng.random((n, sizes[0])).astype(dtype)
    labels = rng.integers(0, sizes[-1], n)
    Y = np.zeros((n, sizes[-1]), dtype)
    Y[np.arange(n), labels] = 1
    return X, Y


def network(sizes_name: str, dtype: str) -> loopbp.Network:
    """The network every implementation starts from (same seed, same parameters)."""
    return loopbp.Network(SIZES[sizes_name], seed=0, dtype=np.dtype(dtype))


def skip_unless(condition: bool) -> None:
    """asv's way to skip one parameter combination: raise ``NotImplementedError`` in setup."""
    if not condition:
        raise NotImplementedError


def import_torch():
    """PyTorch, or a skip when it is not installed.

    Imported here, in ``setup``, rather than at module level, so that loopbp's
    own benchmarks (and their peak memory) do not carry PyTorch's import.
    """
    try:
        import torch
    except ImportError:
        raise NotImplementedError("PyTorch is not installed") from None
    torch.set_num_threads(loopbp.get_num_threads())
    return torch


def import_mlp():
    """scikit-learn's ``MLPClassifier``, or a skip when scikit-learn is not installed."""
    try:
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        raise NotImplementedError("scikit-learn is not installed") from None
    return MLPClassifier


def torch_model(torch, net: loopbp.Network):
    """``nn.Linear`` layers with sigmoids, holding the same parameters as ``net``."""
    layers = []
    for w, b in zip(net.weights, net.biases):
        linear = torch.nn.Linear(w.shape[1], w.shape[0], dtype=torch.from_numpy(w).dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))  # same (n_out, n_in) layout as loopbp
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear, torch.nn.Sigmoid()]
    return torch.nn.Sequential(*layers)


def torch_step(torch, model, optimizer, X, Y) -> None:
    """One SGD step on the quadratic cost ``(1/n) Σ_x ½‖y_x − a_x‖²`` (loopbp's cost)."""
    optimizer.zero_grad(set_to_none=True)
    cost = 0.5 * ((model(X) - Y) ** 2).sum(dim=1).mean()
    cost.backward()
    optimizer.step()


def mlp(MLPClassifier, net: loopbp.Network, batch: int, X: np.ndarray, Y: np.ndarray):
    """An ``MLPClassifier`` set up like ``net`` (sigmoid layers, plain SGD, no penalty).

    ``Y`` is one-hot, which scikit-learn reads as a multilabel target and so
    gives the output layer a sigmoid too (its loss is the cross-entropy, not
    the quadratic cost: the same layer sizes and the same kind of work).  A
    first ``partial_fit`` on one mini-batch allocates the model; its
    parameters are then replaced by ``net``'s.
    """
    clf = MLPClassifier(
        hidden_layer_sizes=tuple(net.sizes[1:-1]), activation="logistic", solver="sgd",
        batch_size=batch, learning_rate="constant", learning_rate_init=ETA, momentum=0.0,
        nesterovs_momentum=False, alpha=0.0, shuffle=True, random_state=0,
        early_stopping=False)
    clf.partial_fit(X[:batch], Y[:batch], classes=np.arange(net.sizes[-1]))
    clf.coefs_ = [w.T.copy() for w in net.weights]  # scikit-learn stores (n_in, n_out)
    clf.intercepts_ = [b.copy() for b in net.biases]
    return clf
