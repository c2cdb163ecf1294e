"""Every activation with every output/cost pairing: gradients, kernels and saturated costs.

Gradients of small networks (1–3 hidden layers, one activation or a mixed
list) are checked against central finite differences of ``net.mean_cost`` and
against reverse-mode autodiff (``autograd``) of a forward pass and cost written
here; each kernel is checked against :mod:`loopbp.reference`, parallel and
serial twin alike.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import loopbp
from loopbp import kernels, reference
from loopbp.activations import ACTIVATIONS, HIDDEN
from loopbp.costs import COSTS

ag = pytest.importorskip("autograd")
anp = pytest.importorskip("autograd.numpy")

#: (output, cost): the quadratic cost with each output, and the two matched pairings.
PAIRINGS = [*((output, "quadratic") for output in ACTIVATIONS),
            ("sigmoid", "cross_entropy"), ("softmax", "log_likelihood")]
PAIRING_IDS = [f"{output}+{cost}" for output, cost in PAIRINGS]
#: Layer sizes by number of hidden layers.
SIZES = {1: [3, 4, 3], 2: [3, 4, 2, 3], 3: [2, 3, 4, 2, 3]}
#: Hidden activations given as one name per layer.
MIXED = [["relu", "tanh"], ["leaky_relu", "sigmoid", "identity"], ["tanh", "relu", "leaky_relu"]]
#: Activations with a kink at z = 0, and how far every weighted input of theirs
#: stays from it in the gradient checks (the finite-difference steps move z far less).
KINKED = ("relu", "leaky_relu")
MARGIN = 0.1


def _targets(rng: np.random.Generator, cost: str, n: int, n_out: int) -> np.ndarray:
    """Targets the cost accepts: in [0, 1), and rows summing to 1 for the log-likelihood."""
    Y = rng.random((n, n_out))
    return Y / Y.sum(axis=1, keepdims=True) if cost == "log_likelihood" else Y


def _case(hidden: list[str], output: str, cost: str, n: int = 5):
    """A network with these hidden layers and data on which the gradient checks are meaningful.

    The first seed whose network has every weighted input of a ReLU-type layer
    at least :data:`MARGIN` away from the kink (and, for the costs with
    logarithms, every output in (1e-5, 1 − 1e-5)) for ``n`` of its input rows, and
    whose gradient has a nonzero entry in every parameter array (no layer is
    dead, so no check passes trivially).
    """
    for seed in range(100):
        net = loopbp.Network(SIZES[len(hidden)], activation=hidden, output=output, cost=cost,
                             seed=seed)
        rng = np.random.default_rng(seed)
        X = rng.random((100, net.sizes[0]))
        zs, acts = reference.forward(net.weights, net.biases, X, net.activations)
        away = np.ones(len(X), bool)
        for z, name in zip(zs, net.activations):
            if name in KINKED:
                away &= np.all(np.abs(z) > MARGIN, axis=1)
        if cost != "quadratic":  # logarithms far from their clip, even in float32
            away &= np.all((acts[-1] > 1e-5) & (acts[-1] < 1 - 1e-5), axis=1)
        X = X[away][:n]
        if len(X) < n:
            continue
        Y = _targets(rng, cost, n, net.sizes[-1])
        grad_w, grad_b = reference.backprop(net.weights, net.biases, X, Y,
                                            activations=net.activations, cost=cost)
        if all(np.any(g != 0) for g in grad_w + grad_b):
            return net, X, Y
    raise AssertionError(f"no seed gives a usable case for {hidden}, {output}, {cost}")


def _net_case(hidden: str, output: str, cost: str, depth: int):
    """:func:`_case` with ``depth`` hidden layers that all use ``hidden``."""
    return _case([hidden] * depth, output, cost)


def _finite_differences(net: loopbp.Network, X: np.ndarray, Y: np.ndarray,
                        h: float = 1e-3) -> list[np.ndarray]:
    """∂C/∂p for every parameter p by the sixth-order central difference of ``net.mean_cost``.

    ``(45 (C₊₁ − C₋₁) − 9 (C₊₂ − C₋₂) + (C₊₃ − C₋₃)) / 60h``, C₊ₖ the cost at
    p + kh: truncation error O(h⁶), rounding error about ε C / h.
    """
    grads = []
    for param in [*net.weights, *net.biases]:
        grad = np.empty_like(param)
        for index in np.ndindex(param.shape):
            original = param[index]
            total = 0.0
            for k, c in ((1, 45), (2, -9), (3, 1)):
                param[index] = original + k * h
                up = net.mean_cost(X, Y)
                param[index] = original - k * h
                total += c * (up - net.mean_cost(X, Y))
            param[index] = original
            grad[index] = total / (60 * h)
        grads.append(grad)
    return grads


AG_ACTIVATIONS = {
    "sigmoid": lambda z: 1 / (1 + anp.exp(-z)),
    "tanh": anp.tanh,
    "relu": lambda z: anp.where(z > 0, z, 0.0),
    "leaky_relu": lambda z: anp.where(z > 0, z, 0.01 * z),
    "identity": lambda z: z,
    "softmax": lambda z: anp.exp(z) / anp.sum(anp.exp(z), axis=1, keepdims=True),
}
AG_COSTS = {  # C_x summed over the rows; no clipping: the checks stay away from saturation
    "quadratic": lambda a, y: 0.5 * anp.sum((y - a) ** 2),
    "cross_entropy": lambda a, y: -anp.sum(y * anp.log(a) + (1 - y) * anp.log(1 - a)),
    "log_likelihood": lambda a, y: -anp.sum(y * anp.log(a)),
}


def _autograd(net: loopbp.Network, X: np.ndarray, Y: np.ndarray) -> list[np.ndarray]:
    """∂C/∂w, ∂C/∂b by autodiff of the plain mean cost (no backprop code of ours)."""
    def mean_cost(params):
        a = X
        for w, b, name in zip(params[0::2], params[1::2], net.activations):
            a = AG_ACTIVATIONS[name](anp.dot(a, w.T) + b)
        return AG_COSTS[net.cost](a, Y) / X.shape[0]

    grads = ag.grad(mean_cost)([p for pair in zip(net.weights, net.biases) for p in pair])
    return [*grads[0::2], *grads[1::2]]


def _backprop(net: loopbp.Network, X: np.ndarray, Y: np.ndarray) -> list[np.ndarray]:
    nabla_w, nabla_b = net.backprop(X, Y)
    return [*nabla_w, *nabla_b]


def _relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """Largest deviation relative to the array's largest entry."""
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300))


def _check_finite_differences(net, X, Y):
    """Each entry within 1e-10 of max(|C|, largest gradient entry) of the finite difference.

    The bound is relative to the cost because the differences' rounding error
    is about ε|C|/h (1e-13 |C| here), however small the entry itself.
    """
    got = _backprop(net, X, Y)
    scale = max(abs(net.mean_cost(X, Y)), max(np.max(np.abs(g)) for g in got))
    for layer, (g, numeric) in enumerate(zip(got, _finite_differences(net, X, Y))):
        assert np.max(np.abs(g - numeric)) <= 1e-10 * scale, f"parameter array {layer}"


def _check_autograd(net, X, Y):
    """backprop and reference.backprop each within 1e-10 (relative, per array) of autodiff."""
    want = _autograd(net, X, Y)
    ref_w, ref_b = reference.backprop(net.weights, net.biases, X, Y,
                                      activations=net.activations, cost=net.cost)
    for layer, (got, ref, auto) in enumerate(zip(_backprop(net, X, Y), ref_w + ref_b, want)):
        assert _relative_error(got, auto) < 1e-10, f"parameter array {layer}"
        assert _relative_error(ref, auto) < 1e-10, f"reference, parameter array {layer}"


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize(("output", "cost"), PAIRINGS, ids=PAIRING_IDS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradient_matches_finite_differences(hidden, output, cost, depth):
    _check_finite_differences(*_net_case(hidden, output, cost, depth))


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize(("output", "cost"), PAIRINGS, ids=PAIRING_IDS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradient_matches_autograd(hidden, output, cost, depth):
    _check_autograd(*_net_case(hidden, output, cost, depth))


@pytest.mark.parametrize(("output", "cost"), PAIRINGS, ids=PAIRING_IDS)
@pytest.mark.parametrize("hidden", MIXED, ids="-".join)
def test_mixed_hidden_activations_match_finite_differences_and_autograd(hidden, output, cost):
    net, X, Y = _case(hidden, output, cost)
    assert net.activations == [*hidden, output]
    _check_finite_differences(net, X, Y)
    _check_autograd(net, X, Y)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize(("output", "cost"), PAIRINGS, ids=PAIRING_IDS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_float32_gradient_close_to_float64(hidden, output, cost, depth):
    """A float32 network's gradient within 1e-4 (relative, per array) of float64 arithmetic
    on the same float32 parameters and data."""
    net64, X, Y = _net_case(hidden, output, cost, depth)
    net32 = loopbp.Network(net64.sizes, activation=net64.activations[:-1], output=output,
                           cost=cost, dtype=np.float32)
    net32.weights = [w.astype(np.float32) for w in net64.weights]
    net32.biases = [b.astype(np.float32) for b in net64.biases]
    net64.weights = [w.astype(np.float64) for w in net32.weights]
    net64.biases = [b.astype(np.float64) for b in net32.biases]
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    got = _backprop(net32, X32, Y32)
    want = _backprop(net64, X32.astype(np.float64), Y32.astype(np.float64))
    for layer, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == np.float32
        assert _relative_error(g.astype(np.float64), w) < 1e-4, f"parameter array {layer}"
    assert net32.mean_cost(X32, Y32) == pytest.approx(
        net64.mean_cost(X32.astype(np.float64), Y32.astype(np.float64)), rel=1e-5)


# --- each kernel against the reference -----------------------------------------------

_shape_rng = np.random.default_rng(2024)
#: (n_in, n_out, batch): 1-neuron layers, a batch of 1, panels of 16 neurons and
#: their remainders, and a few drawn at random.
SHAPES = [(1, 1, 1), (1, 4, 1), (5, 1, 3), (4, 4, 4), (13, 9, 16), (64, 30, 33), (20, 17, 130),
          *(tuple(int(s) for s in _shape_rng.integers(1, 40, 3)) for _ in range(3))]
SHAPE_IDS = [f"{n_in}-{n_out}-n{n}" for n_in, n_out, n in SHAPES]
DTYPES = [np.float64, np.float32]
#: Relative rounding allowed per unit of the sum of magnitudes behind a value.
RTOL = {np.float64: 1e-12, np.float32: 2e-5}


def _assert_close(got, want, bound, dtype):
    """``|got − want| <= rtol (|want| + bound)`` elementwise; ``bound`` the magnitudes summed."""
    excess = np.abs(got - want) - RTOL[dtype] * (np.abs(want) + bound)
    assert np.all(excess <= 0), f"off by {np.max(np.abs(got - want))}"


def _run(kernel_name, args, out):
    """Argument ``out`` after the parallel kernel and after its serial twin, each on copies."""
    results = []
    for chosen in (kernels, kernels.SERIAL):
        copies = [np.array(a) if isinstance(a, np.ndarray) else a for a in args]
        getattr(chosen, kernel_name)(*copies)
        results.append(copies[out])
    return results


def _prime_magnitude(name, z, a):
    """The magnitudes behind f′: ``1 + a²`` for tanh′ = 1 − a² (which cancels near a = ±1)."""
    return 1 + a * a if name == "tanh" else np.abs(reference.derivative(name, z, a))


def _outputs(rng, name, n, n_out, dtype):
    """Weighted inputs z and valid activations a = f(z) of ``name`` (a the dtype's own f)."""
    z = (2 * rng.standard_normal((n, n_out))).astype(dtype)
    return z, reference.activate(name, z).astype(dtype)


def _forward_layer_case(rng, shape, name, dtype):
    """Arguments of forward_layer, index of its output, expected output and error bound."""
    n_in, n_out, n = shape
    w = rng.standard_normal((n_out, n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    a_prev = rng.standard_normal((n, n_in)).astype(dtype)
    w64, b64, a64 = w.astype(np.float64), b.astype(np.float64), a_prev.astype(np.float64)
    want = reference.activate(name, a64 @ w64.T + b64)  # M1, M2
    bound = np.abs(a64) @ np.abs(w64).T + np.abs(b64)  # the sum's magnitudes
    if name == "softmax":  # ∂a_j/∂z_i = a_j (1[i=j] − a_i): |Δa_j| <= 2 a_j max_i |Δz_i|
        bound = 2 * want * bound.max(axis=1, keepdims=True)
    args = (w, np.ascontiguousarray(w.T), b, a_prev, np.full((n, n_out), np.nan, dtype),
            ACTIVATIONS[name])
    return args, 4, want, bound


def _output_error_case(rng, shape, pairing, dtype):
    """Arguments of output_error on outputs a = f(z) the pairing produces, and the expectation."""
    _, n_out, n = shape
    output, cost = pairing
    z, a = _outputs(rng, output, n, n_out, dtype)
    y = _targets(rng, cost, n, n_out).astype(dtype)
    z64, a64, y64 = z.astype(np.float64), a.astype(np.float64), y.astype(np.float64)
    want = reference.output_error(output, cost, z64, a64, y64)  # M3
    g = np.abs(a64 - y64)
    if cost != "quadratic":
        bound = np.abs(a64) + np.abs(y64)
    elif output == "softmax":  # δ_j = a_j (g_j − Σ_i g_i a_i)
        bound = a64 * (g + np.sum(g * a64, axis=1, keepdims=True))
    else:
        bound = (np.abs(a64) + np.abs(y64)) * _prime_magnitude(output, z64, a64)
    args = (a, y, np.full((n, n_out), np.nan, dtype), ACTIVATIONS[output], COSTS[cost])
    return args, 2, want, bound


def _hidden_error_case(rng, shape, name, dtype):
    """Arguments of hidden_error with activations a = f(z) of layer l−1, and the expectation."""
    n_in, n_out, n = shape
    w = rng.standard_normal((n_out, n_in)).astype(dtype)
    delta = rng.standard_normal((n, n_out)).astype(dtype)
    z_prev, a_prev = _outputs(rng, name, n, n_in, dtype)
    w64, d64 = w.astype(np.float64), delta.astype(np.float64)
    z64, a64 = z_prev.astype(np.float64), a_prev.astype(np.float64)
    want = (d64 @ w64) * reference.derivative(name, z64, a64)  # M4, rows as examples
    bound = (np.abs(d64) @ np.abs(w64)) * _prime_magnitude(name, z64, a64)
    args = (w, np.ascontiguousarray(w.T), delta, a_prev, np.full((n, n_in), np.nan, dtype),
            ACTIVATIONS[name])
    return args, 4, want, bound


CASES = {"forward_layer": _forward_layer_case, "output_error": _output_error_case,
         "hidden_error": _hidden_error_case}


def _check_kernel(rng, kernel_name, shape, case, dtype):
    """The parallel kernel and its serial twin each within rounding of the reference."""
    args, out, want, bound = CASES[kernel_name](rng, shape, case, dtype)
    for got in _run(kernel_name, args, out):
        assert got.dtype == dtype
        _assert_close(got, want, bound, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_forward_layer_matches_reference(rng, shape, name, dtype):
    _check_kernel(rng, "forward_layer", shape, name, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pairing", PAIRINGS, ids=PAIRING_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_output_error_matches_reference(rng, shape, pairing, dtype):
    _check_kernel(rng, "output_error", shape, pairing, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", HIDDEN)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_hidden_error_matches_reference(rng, shape, name, dtype):
    _check_kernel(rng, "hidden_error", shape, name, dtype)


TWIN_CASES = [
    *(pytest.param("forward_layer", name, dtype, id=f"forward_layer-{name}-{dtype.__name__}")
      for name in ACTIVATIONS for dtype in DTYPES),
    *(pytest.param("output_error", pairing, dtype,
                   id=f"output_error-{output}+{cost}-{dtype.__name__}")
      for pairing in PAIRINGS for output, cost in [pairing] for dtype in DTYPES),
    *(pytest.param("hidden_error", name, dtype, id=f"hidden_error-{name}-{dtype.__name__}")
      for name in HIDDEN for dtype in DTYPES),
]


@pytest.mark.parametrize(("kernel_name", "case", "dtype"), TWIN_CASES)
def test_serial_twin_agrees_bitwise_with_parallel_kernel(rng, kernel_name, case, dtype):
    """Direct calls on every shape: the serial twin gives exactly the parallel kernel's bits."""
    for shape in [*SHAPES, (36, 32, 36), (50, 40, 64)]:
        args, out, _, _ = CASES[kernel_name](rng, shape, case, dtype)
        parallel, serial = _run(kernel_name, args, out)
        assert np.array_equal(parallel, serial), f"shape {shape}"


def _driver_results(rng, output, cost, dtype):
    """Mean costs and arrays (outputs, gradients, activations, errors) of the parallel drivers
    and of their serial twins, on a network with a 40-neuron output layer."""
    sizes = [9, 33, 7, 40]
    net = loopbp.Network(sizes, activation=["tanh", "relu"], output=output, cost=cost, seed=1,
                         dtype=dtype)
    n = 20
    X = rng.random((n, sizes[0])).astype(dtype)
    Y = _targets(rng, cost, n, sizes[-1]).astype(dtype)
    costs, arrays = [], []
    for chosen in (kernels, kernels.SERIAL):
        weights, biases = net.parameters()
        ws = loopbp.network.workspace(sizes, n, dtype)
        ws[0][0][:] = X
        ws[1][:] = Y
        weights_T = loopbp.network.typed_list([w.T.copy() for w in net.weights])
        nabla_w = loopbp.network.typed_list([np.empty_like(w) for w in net.weights])
        nabla_b = loopbp.network.typed_list([np.empty_like(b) for b in net.biases])
        costs.append(chosen.backprop(weights, biases, weights_T, nabla_w, nabla_b, ws,
                                     net.f_codes, net.cost_code, np.empty(0, dtype)))
        out = np.empty((n, sizes[-1]), dtype)
        acts = loopbp.network.typed_list([np.empty((n, s), dtype) for s in sizes[:-1]])
        weights_T = loopbp.network.typed_list([w.T.copy() for w in net.weights])
        chosen.feedforward(weights, weights_T, biases, X, out, acts, net.f_codes)
        arrays.append([out, *nabla_w, *nabla_b, *ws[0], *ws[2]])
    return costs, arrays


@pytest.mark.parametrize(("output", "cost", "dtype"), [
    pytest.param(output, cost, dtype, id=f"{output}+{cost}-{dtype.__name__}")
    for output, cost in PAIRINGS for dtype in DTYPES])
def test_serial_drivers_agree_bitwise_with_parallel_drivers(rng, output, cost, dtype):
    """Whole forward and backward passes (the path Network takes): the same bits in every
    array; the mean cost the drivers return equal to the last bits (its fast-math sum
    may be vectorized differently in the two drivers)."""
    (cost_parallel, cost_serial), (parallel, serial) = _driver_results(rng, output, cost, dtype)
    for i, (p, s) in enumerate(zip(parallel, serial)):
        assert np.array_equal(p, s), f"array {i}"
    assert cost_parallel == pytest.approx(cost_serial, rel=1e-15)


#: An output each cost accepts, to draw valid outputs a from.
OUTPUT_FOR_COST = {"quadratic": "tanh", "cross_entropy": "sigmoid", "log_likelihood": "softmax"}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cost", list(COSTS))
@pytest.mark.parametrize(("n_out", "n"), sorted({(s[1], s[2]) for s in SHAPES}))
def test_batch_cost_matches_reference(rng, n_out, n, cost, dtype):
    """batch_cost (serial by design, so it has no twin) on outputs the cost accepts."""
    _, a = _outputs(rng, OUTPUT_FOR_COST[cost], n, n_out, dtype)
    y = _targets(rng, cost, n, n_out).astype(dtype)
    got = kernels.batch_cost(a, y, COSTS[cost], np.empty(0, a.dtype))
    want = reference.batch_cost(cost, a, y)  # in the same dtype: the clip is its ε
    assert got == pytest.approx(want, rel=RTOL[dtype], abs=1e-300)


# --- saturated outputs -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cost", list(COSTS))
def test_costs_stay_finite_for_outputs_of_exactly_0_and_1(cost, dtype):
    """a = 0 or 1 exactly, targets at the other end: logarithms of a clipped to [ε, 1 − ε]."""
    a = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype)
    y = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]], dtype)
    got = kernels.batch_cost(a, y, COSTS[cost], np.empty(0, a.dtype))
    want = reference.batch_cost(cost, a, y)
    assert np.isfinite(got) and np.isfinite(want)
    log_eps = -np.log(np.finfo(dtype).eps)  # −ln ε: the cost of a confident wrong output
    expected = {"quadratic": 2 / 3,  # two rows off by ½(1 + 1)
                "cross_entropy": 4 * log_eps / 3,  # four outputs wrong, each −ln ε
                "log_likelihood": 2 * log_eps / 3}[cost]  # two rows' target on an a = 0
    assert got == pytest.approx(expected, rel=1e-6)
    assert want == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("output", "cost"), [("sigmoid", "cross_entropy"),
                                              ("softmax", "log_likelihood"),
                                              ("sigmoid", "quadratic")])
def test_saturated_network_has_finite_cost_and_gradient(output, cost, dtype):
    """Weights so large that the outputs round to exactly 0 and 1: cost and gradient finite."""
    net = loopbp.Network([2, 3, 2], output=output, cost=cost, seed=0, dtype=dtype)
    net.weights = [w * 1e4 for w in net.weights]
    X = np.array([[0.5, 0.25], [0.75, 1.0]], dtype)
    out = net.feedforward(X)
    assert np.all((out == 0) | (out == 1)), out
    Y = 1 - out  # every target at the other end
    if cost == "log_likelihood":
        Y /= Y.sum(axis=1, keepdims=True)
    assert np.isfinite(net.mean_cost(X, Y))
    assert net.mean_cost(X, Y) == pytest.approx(reference.batch_cost(cost, out, Y), rel=1e-6)
    for g in _backprop(net, X, Y):
        assert np.all(np.isfinite(g))


def test_every_pairing_is_covered():
    """The pairings checked here are exactly the ones Network accepts."""
    accepted = []
    for output, cost in itertools.product(ACTIVATIONS, COSTS):
        try:
            loopbp.Network([2, 2], output=output, cost=cost)
        except ValueError:
            continue
        accepted.append((output, cost))
    assert sorted(accepted) == sorted(PAIRINGS)
