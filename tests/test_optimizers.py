"""The optimizers: kernels.update step by step, and whole training runs, against NumPy.

The NumPy side is :class:`loopbp.reference.Optimizer` (the published formulas,
checked here against closed forms too) and a training loop built on
:mod:`loopbp.reference` that draws the same shuffled orders as the network.
"""

from __future__ import annotations

import numpy as np
import pytest

import loopbp
from loopbp import kernels, reference
from loopbp.optimizers import OPTIMIZERS

NAMES = list(OPTIMIZERS)


def _state(name, w, b):
    """The state arrays kernels.update takes: v for momentum/Nesterov/Adam, m for Adam."""
    empty_w, empty_b = np.zeros((0, 0), w.dtype), np.zeros(0, w.dtype)
    v = (np.zeros_like(w), np.zeros_like(b)) if name != "sgd" else (empty_w, empty_b)
    m = (np.zeros_like(w), np.zeros_like(b)) if name == "adam" else (empty_w, empty_b)
    return [*v, *m]


def _kernel_steps(chosen, name, w, b, grads, eta, decay, momentum=0.9, betas=(0.9, 0.999),
                  epsilon=1e-8):
    """Apply ``chosen.update`` once per gradient pair in ``grads`` (step counts t = 1, 2, …)."""
    w, b = w.copy(), b.copy()
    state = _state(name, w, b)
    beta1, beta2 = betas
    for t, (dC_dw, dC_db) in enumerate(grads, start=1):
        hyper = (eta, decay, momentum, beta1, beta2, epsilon, 1 - beta1 ** t, 1 - beta2 ** t)
        chosen.update(w, b, dC_dw, dC_db, OPTIMIZERS[name], hyper, *state)
    return w, b


def _reference_steps(name, w, b, grads, eta, decay, momentum=0.9, betas=(0.9, 0.999),
                     epsilon=1e-8):
    """The same steps by the published formulas, the L2 term (decay·w) on the weights only."""
    w, b = w.copy(), b.copy()
    optimizer = reference.Optimizer(name, momentum=momentum, betas=betas, epsilon=epsilon)
    for dC_dw, dC_db in grads:
        optimizer.step([w, b], [dC_dw + decay * w, dC_db], eta)
    return w, b


def _gradients(rng, shape, steps, dtype=np.float64):
    return [(rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape[0]).astype(dtype))
            for _ in range(steps)]


def _relative_error(got, want):
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300))


@pytest.mark.parametrize("shape", [(1, 1), (3, 4), (17, 5)])
@pytest.mark.parametrize("decay", [0.0, 0.3])
@pytest.mark.parametrize("name", NAMES)
def test_update_steps_match_published_formula(rng, name, decay, shape):
    """Five consecutive steps of kernels.update, parallel kernel and serial twin alike."""
    w, b = rng.standard_normal(shape), rng.standard_normal(shape[0])
    grads = _gradients(rng, shape, 5)
    eta = 0.05
    want_w, want_b = _reference_steps(name, w, b, grads, eta, decay)
    assert not np.allclose(want_w, w)  # the steps do move the parameters
    for chosen in (kernels, kernels.SERIAL):
        got_w, got_b = _kernel_steps(chosen, name, w, b, grads, eta, decay)
        np.testing.assert_allclose(got_w, want_w, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(got_b, want_b, rtol=1e-13, atol=1e-15)




@pytest.mark.parametrize("decay", [0.0, 0.3])
@pytest.mark.parametrize("name", NAMES)
def test_update_serial_twin_agrees_bitwise(rng, name, decay):
    """Five steps on a few shapes: the serial twin gives exactly the parallel kernel's bits."""
    for shape in [(1, 1), (3, 4), (17, 5), (40, 33)]:
        w, b = rng.standard_normal(shape), rng.standard_normal(shape[0])
        grads = _gradients(rng, shape, 5)
        parallel = _kernel_steps(kernels, name, w, b, grads, 0.05, decay)
        serial = _kernel_steps(kernels.SERIAL, name, w, b, grads, 0.05, decay)
        assert np.array_equal(parallel[0], serial[0]), f"weights, shape {shape}"
        assert np.array_equal(parallel[1], serial[1]), f"biases, shape {shape}"


@pytest.mark.parametrize("name", NAMES)
def test_update_with_other_hyperparameters(rng, name):
    """μ, β1, β2, ε reach the update: non-default values, float32 as well."""
    hyper = dict(momentum=0.5, betas=(0.7, 0.9), epsilon=1e-3)
    for dtype, rtol in ((np.float64, 1e-13), (np.float32, 2e-5)):
        w = rng.standard_normal((4, 3)).astype(dtype)
        b = rng.standard_normal(4).astype(dtype)
        grads = _gradients(rng, (4, 3), 4, dtype)
        got_w, got_b = _kernel_steps(kernels, name, w, b, grads, 0.1, 0.2, **hyper)
        w64, b64 = w.astype(np.float64), b.astype(np.float64)
        grads64 = [(g.astype(np.float64), h.astype(np.float64)) for g, h in grads]
        want_w, want_b = _reference_steps(name, w64, b64, grads64, 0.1, 0.2, **hyper)
        assert got_w.dtype == dtype
        np.testing.assert_allclose(got_w, want_w, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(got_b, want_b, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", NAMES)
def test_biases_are_not_decayed(rng, name):
    """The L2 decay changes the weights' steps and leaves the biases' steps bitwise alone."""
    w, b = rng.standard_normal((3, 4)), rng.standard_normal(3)
    grads = _gradients(rng, (3, 4), 3)
    plain_w, plain_b = _kernel_steps(kernels, name, w, b, grads, 0.1, 0.0)
    decayed_w, decayed_b = _kernel_steps(kernels, name, w, b, grads, 0.1, 0.5)
    assert np.array_equal(plain_b, decayed_b)
    assert not np.allclose(plain_w, decayed_w)


# --- the reference against closed forms ----------------------------------------------------


def test_momentum_and_nesterov_with_a_constant_gradient_follow_the_geometric_series():
    """g constant: v_t = −ηg (1 − μ^t)/(1 − μ); w_t − w_0 = Σ_s v_s, or Σ_s (μ v_s − ηg)."""
    eta, mu, g = 0.1, 0.9, np.array([[2.0, -1.0]])
    velocity = [-eta * g * (1 - mu ** t) / (1 - mu) for t in range(1, 6)]
    expected = {"momentum": sum(velocity), "nesterov": sum(mu * v - eta * g for v in velocity)}
    grads = [(g, np.zeros(1))] * 5
    for name, moved in expected.items():
        for got, _ in (_kernel_steps(kernels, name, np.zeros((1, 2)), np.zeros(1), grads, eta,
                                     0.0, momentum=mu),
                       _reference_steps(name, np.zeros((1, 2)), np.zeros(1), grads, eta, 0.0,
                                        momentum=mu)):
            np.testing.assert_allclose(got, moved, rtol=1e-14)


def test_adam_moves_each_parameter_by_about_eta_at_first_and_for_a_constant_gradient():
    """Bias correction makes m̂ = g and v̂ = g² while g is constant: each step is η g/(|g| + ε)."""
    eta, g = 0.01, np.array([[3.0, -0.5, 1e-3]])
    grads = [(g, np.array([0.25]))] * 4
    step = eta * g / (np.abs(g) + 1e-8)
    for got_w, got_b in (_kernel_steps(kernels, "adam", np.zeros((1, 3)), np.zeros(1), grads,
                                       eta, 0.0),
                         _reference_steps("adam", np.zeros((1, 3)), np.zeros(1), grads, eta,
                                          0.0)):
        np.testing.assert_allclose(got_w, -4 * step, rtol=1e-12)
        np.testing.assert_allclose(got_b, [-4 * eta * 0.25 / (0.25 + 1e-8)], rtol=1e-12)


def test_sgd_with_decay_shrinks_weights_by_one_minus_eta_decay():
    """With a zero data gradient, w ← (1 − η λ/n) w each step (weight decay)."""
    w, zero = np.array([[1.0, -2.0]]), [(np.zeros((1, 2)), np.zeros(1))] * 3
    for got, _ in (_kernel_steps(kernels, "sgd", w, np.ones(1), zero, 0.5, 0.2),
                   _reference_steps("sgd", w, np.ones(1), zero, 0.5, 0.2)):
        np.testing.assert_allclose(got, w * (1 - 0.5 * 0.2) ** 3, rtol=1e-15)


# --- whole training runs ---------------------------------------------------------------------

#: (hidden activation, output, cost) of the networks trained.
MODELS = [("sigmoid", "sigmoid", "quadratic"), ("tanh", "softmax", "log_likelihood"),
          ("relu", "sigmoid", "cross_entropy")]
ETA = {"sgd": 0.5, "momentum": 0.1, "nesterov": 0.1, "adam": 0.01}


def _reference_run(net, X, Y, epochs, batch, eta, name, l2, **hyper):
    """Train copies of ``net``'s parameters with reference.py in the network's shuffled orders.

    The orders come from a copy of the network's generator taken before
    training: ``sgd`` draws ``order = rng.permutation(n)`` once per epoch.
    Returns the parameters and each epoch's cost as ``History`` reports it:
    the mean over the rows of the cost before each mini-batch's update, plus
    ``(λ/2n) Σ w²`` at the end of the epoch.
    """
    rng = np.random.default_rng()
    rng.bit_generator.state = net.rng.bit_generator.state
    weights = [w.copy() for w in net.weights]
    biases = [b.copy() for b in net.biases]
    optimizer = reference.Optimizer(name, **hyper)
    n = X.shape[0]
    costs = []
    for _ in range(epochs):
        order = rng.permutation(n)
        total = 0.0
        for start in range(0, n, batch):
            rows = order[start:start + batch]
            total += len(rows) * reference.cost(weights, biases, X[rows], Y[rows],
                                                activations=net.activations, cost=net.cost)
            # one mini-batch per call, so the cost above is taken before each update;
            # l2 is divided by the rows of X, the whole training set
            reference.sgd_epoch(weights, biases, X, Y, rows, batch, eta,
                                activations=net.activations, cost=net.cost,
                                optimizer=optimizer, l2=l2)
        costs.append(total / n + 0.5 * l2 / n * sum(float(np.sum(w * w)) for w in weights))
    return weights, biases, costs


def _training_data(rng, cost, n, sizes):
    X = rng.random((n, sizes[0]))
    Y = rng.random((n, sizes[-1]))
    if cost == "log_likelihood":
        Y /= Y.sum(axis=1, keepdims=True)
    return X, Y


@pytest.mark.parametrize("l2", [0.0, 0.8])
@pytest.mark.parametrize("model", MODELS, ids="-".join)
@pytest.mark.parametrize("name", NAMES)
def test_training_run_matches_reference_loop(rng, name, model, l2):
    """net.sgd over 3 epochs (mini-batches of 5 and a short last one of 2) against reference.py."""
    hidden, output, cost = model
    sizes = [4, 6, 5, 3]
    net = loopbp.Network(sizes, activation=hidden, output=output, cost=cost, seed=11)
    X, Y = _training_data(rng, cost, 22, sizes)
    hyper = dict(momentum=0.8, betas=(0.85, 0.99), epsilon=1e-7)
    want_w, want_b, want_costs = _reference_run(net, X, Y, 3, 5, ETA[name], name, l2, **hyper)
    history = net.sgd(X, Y, 3, 5, ETA[name], optimizer=name, l2=l2, progress=False, **hyper)
    for layer, (got, want) in enumerate(zip(net.weights + net.biases, want_w + want_b)):
        assert _relative_error(got, want) < 1e-9, f"parameter array {layer}"
    assert not np.allclose(want_w[0], loopbp.Network(sizes, seed=11).weights[0])  # it trained
    np.testing.assert_allclose([record.cost for record in history.records], want_costs,
                               rtol=1e-9)


def test_l2_shrinks_the_weights_of_a_training_run(rng):
    """The same run with λ > 0 ends with smaller weights (and the biases are left to the data)."""
    sizes = [4, 6, 3]
    X, Y = _training_data(rng, "quadratic", 30, sizes)
    norms = []
    for l2 in (0.0, 5.0):
        net = loopbp.Network(sizes, seed=3)
        net.sgd(X, Y, 5, 10, 0.5, l2=l2, progress=False)
        norms.append(sum(float(np.sum(w * w)) for w in net.weights))
    assert norms[1] < 0.8 * norms[0]


@pytest.mark.parametrize("name", NAMES)
def test_optimizer_state_carries_over_epochs(rng, name):
    """Three epochs in one call equal the reference with one Optimizer kept across epochs,
    not three fresh ones (which would differ for every optimizer with state)."""
    sizes = [3, 4, 2]
    net = loopbp.Network(sizes, seed=5)
    X, Y = _training_data(rng, "quadratic", 12, sizes)
    gen = np.random.default_rng()
    gen.bit_generator.state = net.rng.bit_generator.state
    orders = [gen.permutation(12) for _ in range(3)]
    runs = {}
    for keep in (True, False):
        weights = [w.copy() for w in net.weights]
        biases = [b.copy() for b in net.biases]
        optimizer = reference.Optimizer(name)
        for order in orders:
            reference.sgd_epoch(weights, biases, X, Y, order, 4, ETA[name],
                                optimizer=optimizer if keep else name)
        runs[keep] = weights
    net.sgd(X, Y, 3, 4, ETA[name], optimizer=name, progress=False)
    for got, want in zip(net.weights, runs[True]):
        assert _relative_error(got, want) < 1e-9
    if name != "sgd":
        assert not np.allclose(runs[True][0], runs[False][0])


@pytest.mark.parametrize("name", NAMES)
def test_training_with_parallel_and_serial_kernels_agrees_bitwise(rng, monkeypatch, name):
    """The same run through the parallel train_mini_batches and its serial twin: the same
    parameters bit for bit, and epoch costs equal to the last bits (the drivers' fast-math
    batch-cost sums may be vectorized differently)."""
    from loopbp import training

    sizes = [5, 4, 3]
    X, Y = _training_data(rng, "quadratic", 40, sizes)
    params, costs = [], []
    for chosen in (kernels, kernels.SERIAL):
        monkeypatch.setattr(training, "kernels_for", lambda sizes, rows, chosen=chosen: chosen)
        net = loopbp.Network(sizes, seed=0)
        history = net.sgd(X, Y, 3, 7, ETA[name], optimizer=name, l2=0.3, progress=False)
        params.append([*net.weights, *net.biases])
        costs.append([record.cost for record in history.records])
    for i, (parallel, serial) in enumerate(zip(*params)):
        assert np.array_equal(parallel, serial), f"parameter array {i}"
    np.testing.assert_allclose(costs[0], costs[1], rtol=1e-15)
