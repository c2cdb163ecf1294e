"""Property-based fuzzing of every public function (hypothesis).

Each call either succeeds with finite results that match the NumPy matrix form
(:mod:`loopbp.reference`) or raises ``ValueError``/``TypeError`` — never a
crash, a hang or silent garbage.  Inputs vary in shape, dtype, memory layout
(C, Fortran, stepped slices, negative strides), NaN/inf placement and
hyperparameters, good and bad.

Every property runs twice: a quick pass in the default run and a larger
budget marked ``slow`` (bounded by ``max_examples``, about a minute on two
cores).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loopbp
from loopbp import datasets, reference

FAST = settings(max_examples=10, deadline=None, print_blob=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
SLOW = settings(FAST, max_examples=300)

ERRORS = (ValueError, TypeError)
TOLERANCE = {np.dtype(np.float64): {"rtol": 1e-9, "atol": 1e-11},
             np.dtype(np.float32): {"rtol": 2e-4, "atol": 2e-5}}
TRAINED_TOLERANCE = {np.dtype(np.float64): {"rtol": 1e-7, "atol": 1e-9},
                     np.dtype(np.float32): {"rtol": 5e-3, "atol": 5e-4}}


def both(strategy_kwargs: dict):
    """Make a quick test and a ``slow`` one with a bigger budget from one property."""
    def decorate(body):
        fast = FAST(given(**strategy_kwargs)(body))
        slow = pytest.mark.slow(SLOW(given(**strategy_kwargs)(body)))
        return fast, slow
    return decorate


# --- strategies -----------------------------------------------------------------------------

sizes_st = st.lists(st.integers(1, 6), min_size=2, max_size=4)
dtype_st = st.sampled_from([np.float64, np.float32])
input_dtype_st = st.sampled_from([np.float64, np.float32, np.int64, np.int32, np.uint8, bool])
layout_st = st.sampled_from(["C", "F", "step", "negative", "list"])


def lay_out(array: np.ndarray, layout: str):
    """The same values in another memory layout (or as nested lists)."""
    if layout == "F":
        return np.asfortranarray(array)
    if layout == "step" and array.ndim == 2:
        big = np.zeros((2 * array.shape[0], 3 * array.shape[1] + 1), array.dtype)
        big[::2, 1::3] = array
        return big[::2, 1::3]
    if layout == "step" and array.ndim == 1:
        big = np.zeros(3 * array.shape[0], array.dtype)
        big[::3] = array
        return big[::3]
    if layout == "negative":
        return array[::-1].copy()[::-1]
    if layout == "list":
        return array.tolist()
    return array


@st.composite
def inputs(draw, width: int, n: int | None = None):
    """(X as given to loopbp, X's values as float64, whether it holds NaN/inf)."""
    n = draw(st.integers(1, 9)) if n is None else n
    kind = draw(input_dtype_st)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind is bool:
        values = rng.random((n, width)) < 0.5
    elif np.dtype(kind).kind in "iu":
        values = rng.integers(0, 3, (n, width)).astype(kind)
    else:
        values = (rng.standard_normal((n, width)) * draw(st.sampled_from([0.5, 3.0, 50.0])))
        values = values.astype(kind)
    bad = False
    if np.dtype(kind).kind == "f" and draw(st.booleans()) and draw(st.booleans()):
        i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, width - 1))
        values[i, j] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        bad = True
    return lay_out(values, draw(layout_st)), values.astype(np.float64), bad


@st.composite
def targets(draw, n: int, n_out: int):
    """(Y as given, one-hot or real targets as float64, whether it is invalid)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    form = draw(st.sampled_from(["labels", "float labels", "targets", "bad labels",
                                 "nan targets", "wrong shape"]))
    if form in ("labels", "float labels"):
        labels = rng.integers(0, n_out, n)
        Y = np.eye(n_out)[labels]
        given_ = labels.astype(np.float64) if form == "float labels" else labels
        return lay_out(given_, draw(layout_st)), Y, False
    if form == "targets":
        Y = rng.random((n, n_out))
        return lay_out(Y, draw(layout_st)), Y, False
    if form == "bad labels":
        labels = rng.integers(0, n_out, n)
        labels[draw(st.integers(0, n - 1))] = draw(st.sampled_from([-1, n_out, 10**6]))
        return labels, None, True
    if form == "nan targets":
        Y = rng.random((n, n_out))
        Y[draw(st.integers(0, n - 1)), draw(st.integers(0, n_out - 1))] = np.nan
        return Y, None, True
    return rng.random((n + 1, n_out)), None, True


def _reference_parameters(net: loopbp.Network):
    return [w.copy() for w in net.weights], [b.copy() for b in net.biases]


def _close(actual, expected, dtype, trained=False) -> None:
    tolerance = (TRAINED_TOLERANCE if trained else TOLERANCE)[np.dtype(dtype)]
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64),
                               **tolerance)


# --- Network(...) ---------------------------------------------------------------------------

weird_st = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True), st.text(max_size=3),
                     st.integers(-3, 6), st.just(np.int64(3)), st.just(np.float64(2.0)),
                     st.just([2, 2]))


@both({"sizes": st.one_of(sizes_st, st.lists(weird_st, max_size=4), weird_st,
                          st.just(np.array([[2, 3]])), st.just(np.array([3, 2]))),
       "dtype": st.sampled_from([np.float64, np.float32, "float32", "f8", float, None,
                                 np.int32, "complex64", "nonsense", object, 3]),
       "seed": st.one_of(st.none(), st.integers(-5, 2**70), st.floats(), st.booleans(),
                         st.text(max_size=2))})
def _construct(sizes, dtype, seed):
    try:
        net = loopbp.Network(sizes, seed=seed, dtype=dtype)
    except ERRORS:
        return
    assert net.dtype in (np.float64, np.float32)
    assert all(isinstance(s, int) and s >= 1 for s in net.sizes) and len(net.sizes) >= 2
    for w, n_in, n_out in zip(net.weights, net.sizes, net.sizes[1:]):
        assert w.shape == (n_out, n_in) and w.dtype == net.dtype and np.isfinite(w).all()


test_network_constructor, test_network_constructor_slow = _construct


# --- feedforward, backprop, cost, evaluate -------------------------------------------------------


@both({"data": st.data(), "sizes": sizes_st, "dtype": dtype_st})
def _feedforward(data, sizes, dtype):
    net = loopbp.Network(sizes, seed=data.draw(st.integers(0, 100)), dtype=dtype)
    X, values, bad = data.draw(inputs(sizes[0]))
    one_row = data.draw(st.booleans()) and values.shape[0] == 1 and not isinstance(X, list)
    if one_row:
        X = X[0]
    if bad:
        with pytest.raises(ValueError, match="NaN or infinity"):
            net.feedforward(X)
        return
    out = net.feedforward(X)
    expected = reference.feedforward(net.weights, net.biases, values.astype(dtype))[-1]
    assert out.dtype == dtype and np.isfinite(out).all()
    _close(out, expected[0] if one_row else expected, dtype)


test_feedforward, test_feedforward_slow = _feedforward


@both({"data": st.data(), "sizes": sizes_st, "dtype": dtype_st})
def _backprop_and_cost(data, sizes, dtype):
    net = loopbp.Network(sizes, seed=data.draw(st.integers(0, 100)), dtype=dtype)
    X, values, bad_x = data.draw(inputs(sizes[0]))
    Y, y_values, bad_y = data.draw(targets(values.shape[0], sizes[-1]))
    if bad_x or bad_y:
        with pytest.raises(ERRORS):
            net.backprop(X, Y)
        with pytest.raises(ERRORS):
            net.mean_cost(X, Y)
        return
    nabla_w, nabla_b = net.backprop(X, Y)
    cost = net.mean_cost(X, Y)
    x, y = values.astype(dtype), y_values.astype(dtype)
    want_w, want_b = reference.backprop(net.weights, net.biases, x, y)
    for got, want in zip(nabla_w + nabla_b, want_w + want_b, strict=True):
        assert got.dtype == dtype and np.isfinite(got).all()
        _close(got, want, dtype)
    assert np.isfinite(cost)
    _close(cost, reference.cost(net.weights, net.biases, x, y), dtype)


test_backprop_and_cost, test_backprop_and_cost_slow = _backprop_and_cost


@both({"data": st.data(), "sizes": sizes_st, "dtype": dtype_st})
def _evaluate(data, sizes, dtype):
    net = loopbp.Network(sizes, seed=data.draw(st.integers(0, 100)), dtype=dtype)
    X, values, bad_x = data.draw(inputs(sizes[0]))
    n = values.shape[0]
    labels = data.draw(st.one_of(
        st.lists(st.integers(-1, sizes[-1]), min_size=n, max_size=n),
        st.lists(st.sampled_from([0.0, 1.0, 0.5, np.nan]), min_size=n, max_size=n),
        st.just(np.zeros((n, 1), int)), st.just(np.zeros(n, bool)), st.just("0" * n)))
    labels_arr = np.asarray(labels)
    valid = (not bad_x and labels_arr.ndim == 1 and labels_arr.dtype.kind in "iuf"
             and labels_arr.shape == (n,) and np.isfinite(labels_arr.astype(float)).all()
             and (labels_arr == np.round(labels_arr)).all()
             and ((labels_arr >= 0) & (labels_arr < sizes[-1])).all())
    if not valid:
        with pytest.raises(ERRORS):
            net.evaluate(X, labels)
        return
    out = reference.feedforward(net.weights, net.biases, values.astype(dtype))[-1]
    correct = net.evaluate(X, labels)
    # ties between outputs within rounding could pick either index: allow that margin
    top2 = np.sort(out, axis=1)[:, -2:] if sizes[-1] > 1 else None
    ambiguous = 0 if top2 is None else int(np.sum(top2[:, 1] - top2[:, 0] < 1e-4))
    expected = int(np.sum(np.argmax(out, axis=1) == labels_arr.astype(int)))
    assert abs(correct - expected) <= ambiguous


test_evaluate, test_evaluate_slow = _evaluate


# --- sgd ----------------------------------------------------------------------------------------

hyper_st = {
    "epochs": st.one_of(st.integers(0, 3), st.sampled_from([-1, 1.5, True, "2", None])),
    "mini_batch_size": st.one_of(st.integers(1, 12), st.sampled_from([0, -2, 2.0, False])),
    "eta": st.one_of(st.floats(0.01, 3.0), st.sampled_from([0.0, -1.0, np.nan, np.inf, "1",
                                                            None, 1e-300])),
}


def _valid_hyperparameters(epochs, mini_batch_size, eta) -> bool:
    def integer(v, minimum):
        return (isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= minimum)

    real = (isinstance(eta, float | int) and not isinstance(eta, bool)
            and np.isfinite(eta) and eta > 0)
    return integer(epochs, 0) and integer(mini_batch_size, 1) and real


@both({"data": st.data(), "sizes": sizes_st, "dtype": dtype_st, **hyper_st})
def _sgd(data, sizes, dtype, epochs, mini_batch_size, eta):
    net = loopbp.Network(sizes, seed=data.draw(st.integers(0, 100)), dtype=dtype)
    X, values, bad_x = data.draw(inputs(sizes[0]))
    Y, y_values, bad_y = data.draw(targets(values.shape[0], sizes[-1]))
    use_test = data.draw(st.booleans())
    test = (X, np.argmax(y_values, axis=1)) if use_test and y_values is not None else None
    weights, biases = _reference_parameters(net)
    rng = copy.deepcopy(net.rng)
    if bad_x or bad_y or not _valid_hyperparameters(epochs, mini_batch_size, eta):
        with pytest.raises(ERRORS):
            net.sgd(X, Y, epochs, mini_batch_size, eta, progress=False, test_data=test)
        for p, q in zip(net.weights + net.biases, weights + biases, strict=True):
            assert np.array_equal(p, q)  # a refused call changes nothing
        return
    history = net.sgd(X, Y, epochs, mini_batch_size, eta, progress=False, test_data=test)
    assert len(history) == epochs and not history.interrupted
    x, y = values.astype(dtype), y_values.astype(dtype)
    n = x.shape[0]
    for record in history:
        order = rng.permutation(n)
        cost = 0.0
        for start in range(0, n, mini_batch_size):  # cost of each batch before its update
            rows = order[start:start + mini_batch_size]
            cost += reference.cost(weights, biases, x[rows], y[rows]) * len(rows)
            nabla_w, nabla_b = reference.backprop(weights, biases, x[rows], y[rows])
            for w, b, nw, nb in zip(weights, biases, nabla_w, nabla_b):
                w -= dtype(eta) * nw
                b -= dtype(eta) * nb
        assert np.isfinite(record.cost)
        _close(record.cost, cost / n, dtype, trained=True)
        if test is not None:
            assert record.test_total == n and 0 <= record.test_correct <= n
    for got, want in zip(net.weights + net.biases, weights + biases, strict=True):
        assert got.dtype == dtype and np.isfinite(got).all()
        _close(got, want, dtype, trained=True)


test_sgd, test_sgd_slow = _sgd


# --- files ------------------------------------------------------------------------------


@both({"sizes": sizes_st, "dtype": dtype_st, "seed": st.integers(0, 2**64),
       "mutations": st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)),
                             max_size=3),
       "cut": st.one_of(st.none(), st.floats(0, 1, exclude_max=True))})
def _save_load_mutated(tmp_path_factory, sizes, dtype, seed, mutations, cut):
    folder = tmp_path_factory.mktemp("files")
    net = loopbp.Network(sizes, seed=seed, dtype=dtype)
    path = folder / "net.npz"
    net.save(path)
    loaded = loopbp.Network.load(path)
    for p, q in zip(net.weights + net.biases, loaded.weights + loaded.biases, strict=True):
        assert np.array_equal(p, q) and p.dtype == q.dtype
    data = bytearray(path.read_bytes())
    for where, xor in mutations:
        data[int(where * len(data))] ^= xor
    if cut is not None:
        data = data[: int(cut * len(data))]
    path.write_bytes(bytes(data))
    try:
        again = loopbp.Network.load(path)
    except loopbp.NetworkFileError:
        return
    assert again.sizes == net.sizes and again.dtype == net.dtype
    for p, q in zip(net.weights + net.biases, again.weights + again.biases, strict=True):
        assert np.array_equal(p, q)
    assert again.rng.bit_generator.state == net.rng.bit_generator.state


test_save_load_mutated, test_save_load_mutated_slow = _save_load_mutated


label_st = st.one_of(
    st.tuples(st.integers(0, 5), st.integers(0, 4)).map(lambda s: np.ones(s) * 0.5),
    st.integers(0, 5).map(lambda n: np.arange(n)),
    st.integers(1, 5).map(lambda n: np.arange(n) + 0.5),
    st.just(np.array([np.nan, 1.0])), st.just(np.array(["a", "b"])),
    st.just(np.array([object(), 1], dtype=object)),
    st.just(np.zeros((2, 2, 2))), st.just(np.array(3.0)), st.just(np.array([-1, 0])),
)
# inf among labels: see test_load_npz_infinite_labels_raise_value_error
array_st = st.one_of(label_st, st.just(np.full((3, 2), np.inf)), st.just(np.array([1 + 2j])))


@both({"arrays": st.fixed_dictionaries({}, optional={
           "X_train": array_st, "X_test": array_st, "y_train": label_st, "y_test": label_st,
           "extra": array_st}),
       "complete": st.booleans()})
def _load_npz(tmp_path_factory, arrays, complete):
    if complete:
        X = np.random.default_rng(0).random((4, 3))
        arrays = {"X_train": X, "y_train": np.array([0, 1, 2, 1]), "X_test": X[:2],
                  "y_test": np.array([1, 0]), **arrays}
    path = tmp_path_factory.mktemp("data") / "data.npz"
    np.savez(path, **arrays)
    try:
        data = datasets.load_npz(path)
    except ERRORS:
        return
    assert set(data) == set(datasets.DATA_KEYS)
    width = data["X_train"].shape[1]
    n_classes = max(data["y_train"].max(), data["y_test"].max()) + 1
    for split in ("train", "test"):
        X, y = data[f"X_{split}"], data[f"y_{split}"]
        assert X.ndim == 2 and X.shape[1] == width and X.shape[0] >= 1
        assert X.dtype == np.float64 and np.isfinite(X).all()
        assert y.shape == (X.shape[0],) and y.dtype == np.int64 and (y >= 0).all()
    # and the CLI's way of using it works on what it returns
    net = loopbp.Network([width, 2, int(n_classes)], seed=0)
    assert 0 <= net.evaluate(data["X_test"], data["y_test"]) <= data["X_test"].shape[0]


test_load_npz, test_load_npz_slow = _load_npz


def test_load_npz_damaged_file_raises_value_error(tmp_path):
    path = tmp_path / "data.npz"
    X = np.ones((4, 3))
    np.savez(path, X_train=X, y_train=[0, 1, 0, 1], X_test=X, y_test=[0, 1, 0, 1])
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ValueError):
        datasets.load_npz(path)


def test_load_npz_infinite_labels_raise_value_error(tmp_path):
    path = tmp_path / "data.npz"
    X = np.ones((2, 3))
    np.savez(path, X_train=X, y_train=[0.0, np.inf], X_test=X, y_test=[0, 1])
    with pytest.raises(ValueError):
        datasets.load_npz(path)
