"""The public API: its contract, bad inputs refused up front, unusual inputs accepted."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_data

import loopbp
from loopbp import reference


def _flat(pair):
    """(nabla_w, nabla_b) as one list of arrays."""
    return [*pair[0], *pair[1]]


def test_default_network_is_the_derivations_network():
    net = loopbp.Network([4, 3, 2], seed=0)
    assert net.sizes == [4, 3, 2]
    assert [w.shape for w in net.weights] == [(3, 4), (2, 3)]
    assert [b.shape for b in net.biases] == [(3,), (2,)]
    assert all(p.dtype == np.float64 for p in net.weights + net.biases)
    # N(0, 1) draws: a large network's parameters have mean ~0 and std ~1
    big = loopbp.Network([300, 200, 10], seed=1)
    w = big.weights[0]
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1) < 0.01


def test_seed_reproduces_parameters_and_training(rng):
    X, Y = random_data(rng, 30, [5, 4, 3])
    nets = [loopbp.Network([5, 4, 3], seed=42) for _ in range(2)]
    for net in nets:
        net.sgd(X, Y, 2, 4, 1.0, progress=False)
    for a, b in zip(nets[0].weights, nets[1].weights):
        np.testing.assert_array_equal(a, b)
    other = loopbp.Network([5, 4, 3], seed=43)
    assert not np.array_equal(other.weights[0], loopbp.Network([5, 4, 3], seed=42).weights[0])


def test_feedforward_shapes_and_single_row(rng):
    net = loopbp.Network([3, 2, 4], seed=0)
    X = rng.random((5, 3))
    out = net.feedforward(X)
    assert out.shape == (5, 4)
    np.testing.assert_allclose(net.feedforward(X[2]), out[2])
    assert net.feedforward(X[2]).shape == (4,)
    assert np.all((out > 0) & (out < 1))


def test_backprop_returns_gradients_shaped_like_parameters(rng):
    net = loopbp.Network([3, 5, 2], seed=0)
    X, Y = random_data(rng, 4, [3, 5, 2])
    nabla_w, nabla_b = net.backprop(X, Y)
    assert [g.shape for g in nabla_w] == [w.shape for w in net.weights]
    assert [g.shape for g in nabla_b] == [b.shape for b in net.biases]


def test_labels_are_one_hot_encoded(rng):
    net = loopbp.Network([3, 4, 3], seed=0)
    X = rng.random((6, 3))
    labels = np.array([0, 2, 1, 1, 0, 2])
    from_labels = net.backprop(X, labels)
    from_one_hot = net.backprop(X, np.eye(3)[labels])
    for a, b in zip(_flat(from_labels), _flat(from_one_hot)):
        np.testing.assert_array_equal(a, b)


def test_evaluate_counts_argmax_hits(rng):
    net = loopbp.Network([3, 4, 3], seed=0)
    X = rng.random((20, 3))
    predicted = np.argmax(reference.feedforward(net.weights, net.biases, X)[-1], axis=1)
    assert net.evaluate(X, predicted) == 20
    assert net.evaluate(X, (predicted + 1) % 3) == 0


def test_sgd_reduces_cost_and_records_history(rng):
    data = loopbp.datasets.load_digits()
    net = loopbp.Network([64, 20, 10], seed=0)
    X, y = data["X_train"][:300], data["y_train"][:300]
    before = net.mean_cost(X, y)
    history = net.sgd(X, y, 3, 10, 3.0, test_data=(data["X_test"], data["y_test"]),
                      progress=False)
    assert len(history) == 3 and not history.interrupted
    assert net.mean_cost(X, y) < before
    assert history.cost[-1] < history.cost[0]
    assert [r.epoch for r in history.records] == [1, 2, 3]
    assert all(r.test_total == 450 and 0 <= r.test_correct <= 450 for r in history.records)
    assert all(s > 0 for s in history.seconds)


def test_zero_epochs_changes_nothing(rng):
    net = loopbp.Network([3, 2, 2], seed=0)
    before = [w.copy() for w in net.weights]
    X, Y = random_data(rng, 5, [3, 2, 2])
    assert len(net.sgd(X, Y, 0, 2, 1.0, progress=False)) == 0
    for a, b in zip(before, net.weights):
        np.testing.assert_array_equal(a, b)


def test_training_is_bitwise_identical_for_one_and_two_threads(rng):
    sizes = [400, 200, 100, 10]
    X, Y = random_data(rng, 300, sizes)
    batches = (40, 130)  # the row-form and the tiled weight gradient
    for batch in batches:  # both sizes run the parallel kernels, not the serial twins
        assert loopbp.network.kernels_for(sizes, batch) is loopbp.kernels
    results = []
    for threads in (1, 2):
        for batch in batches:
            net = loopbp.Network(sizes, seed=5)
            net.sgd(X, Y, 2, batch, 0.5, progress=False, n_threads=threads)
            results.append((batch, [*net.weights, *net.biases, net.feedforward(X)]))
    for (batch, one), (_, two) in zip(results[:2], results[2:]):
        for a, b in zip(one, two):
            assert np.array_equal(a, b), f"batch {batch}: 1 and 2 threads differ"


def test_thread_count_is_restored_after_sgd(rng):
    X, Y = random_data(rng, 10, [2, 2, 1])
    before = loopbp.get_num_threads()
    loopbp.Network([2, 2, 1], seed=0).sgd(X, Y, 1, 5, 1.0, progress=False, n_threads=1)
    assert loopbp.get_num_threads() == before


def test_set_num_threads_validates():
    with pytest.raises(ValueError, match="n_threads"):
        loopbp.set_num_threads(0)
    with pytest.raises(TypeError, match="n_threads"):
        loopbp.set_num_threads(1.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_end_to_end(rng, dtype):
    net = loopbp.Network([3, 4, 2], seed=0, dtype=dtype)
    X, Y = random_data(rng, 8, [3, 4, 2])
    net.sgd(X, Y, 1, 3, 1.0, progress=False)
    assert all(p.dtype == dtype for p in net.weights + net.biases)
    assert net.feedforward(X).dtype == dtype
    assert all(g.dtype == dtype for g in _flat(net.backprop(X, Y)))


# --- unusual but valid input gives the same result as the plain call ---------------


def _plain_and_variants(rng):
    X = rng.random((7, 4))
    Y = rng.random((7, 3))
    variants = {
        "list": (X.tolist(), Y.tolist()),
        "fortran": (np.asfortranarray(X), np.asfortranarray(Y)),
        "strided": (np.repeat(X, 2, axis=0)[::2], np.repeat(Y, 2, axis=1)[:, ::2]),
        "float32 into float64": (X.astype(np.float32), Y.astype(np.float32)),
        "read-only": (np.require(X, requirements="C").copy(), Y),
    }
    variants["read-only"][0].flags.writeable = False
    return X, Y, variants


def test_unusual_valid_inputs_give_plain_results(rng):
    net = loopbp.Network([4, 5, 3], seed=0)
    X, Y, variants = _plain_and_variants(rng)
    plain_out = net.feedforward(X)
    plain_grad = _flat(net.backprop(X, Y))
    for name, (Xv, Yv) in variants.items():
        Xc = np.asarray(Xv, dtype=np.float64)
        np.testing.assert_array_equal(net.feedforward(Xv), net.feedforward(Xc), err_msg=name)
        if name != "float32 into float64":
            np.testing.assert_array_equal(net.feedforward(Xv), plain_out, err_msg=name)
            for a, b in zip(_flat(net.backprop(Xv, Yv)), plain_grad):
                np.testing.assert_array_equal(a, b, err_msg=name)


def test_integer_inputs_and_labels_work(rng):
    net = loopbp.Network([3, 4, 2], seed=0)
    X = rng.integers(0, 2, size=(6, 3))
    y = np.array([0, 1, 1, 0, 1, 0], dtype=np.int32)
    np.testing.assert_array_equal(net.feedforward(X), net.feedforward(X.astype(float)))
    net.sgd(X, y, 1, 2, 1.0, progress=False)
    assert 0 <= net.evaluate(X, y.tolist()) <= 6


def test_mini_batch_larger_than_data_is_one_batch(rng):
    X, Y = random_data(rng, 5, [3, 2, 2])
    a = loopbp.Network([3, 2, 2], seed=1)
    b = loopbp.Network([3, 2, 2], seed=1)
    a.sgd(X, Y, 2, 100, 1.0, progress=False)
    b.sgd(X, Y, 2, 5, 1.0, progress=False)
    for p, q in zip(a.weights, b.weights):
        np.testing.assert_array_equal(p, q)


def test_replaced_parameters_are_checked_or_converted():
    net = loopbp.Network([3, 2, 2], seed=0)
    net.weights[0] = net.weights[0].astype(np.float32).T.copy().T  # right shape, other dtype
    net.feedforward(np.ones(3))
    assert net.weights[0].dtype == np.float64 and net.weights[0].flags.c_contiguous
    net.weights[1] = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"weights\[1\] must have shape \(2, 2\)"):
        net.feedforward(np.ones(3))


def test_replaced_parameters_that_are_not_arrays_become_arrays():
    """A list (or masked array) put in place of a parameter is replaced by a plain array of
    the network's dtype, so that the kernels never receive the list itself; the outputs
    are those of the same values given as an array."""
    X = np.random.default_rng(0).random((5, 3))
    want = loopbp.Network([3, 4, 2], seed=0).feedforward(X)
    net = loopbp.Network([3, 4, 2], seed=0)
    net.weights[0] = net.weights[0].tolist()
    net.biases[1] = np.ma.masked_array(net.biases[1])
    np.testing.assert_array_equal(net.feedforward(X), want)
    assert type(net.weights[0]) is np.ndarray and type(net.biases[1]) is np.ndarray
    net = loopbp.Network([3, 4, 2], seed=0)
    net.biases[0] = net.biases[0].tolist()
    net.sgd(X, [0, 1, 0, 1, 1], 1, 5, 1.0, progress=False)  # was a numba typing error
    assert type(net.biases[0]) is np.ndarray


@pytest.mark.parametrize("value", [1j, "text"])
def test_replaced_parameters_of_complex_or_text_entries_are_refused(value):
    net = loopbp.Network([3, 2, 2], seed=0)
    net.weights[0] = np.full((2, 3), value)
    with pytest.raises(TypeError, match=r"network.weights\[0\] must hold real numbers"):
        net.feedforward(np.ones(3))


@pytest.mark.parametrize(("attribute", "value", "message"), [
    ("activations", ["sigmoid"], "must be a list of 2 names"),  # kernels would read past it
    ("activations", "sigmoid", "must be a list of 2 names"),
    ("activations", ["bogus", "sigmoid"], "activation\\[0\\] must be one of"),
    ("activations", ["softmax", "softmax"], "softmax couples"),
    ("cost", "bogus", "cost must be one of"),
    ("cost", "log_likelihood", "needs output='softmax'"),
    ("dtype", np.dtype(np.int64), "dtype must be float32 or float64"),
])
@pytest.mark.parametrize("call", ["feedforward", "backprop", "mean_cost", "sgd"])
def test_attributes_changed_to_what_no_network_can_have_are_refused(attribute, value, message,
                                                                  call):
    net = loopbp.Network([3, 2, 2], seed=0)
    setattr(net, attribute, value)
    X, y = np.ones((4, 3)), [0, 1, 0, 1]
    run = {"feedforward": lambda: net.feedforward(X), "backprop": lambda: net.backprop(X, y),
           "mean_cost": lambda: net.mean_cost(X, y),
           "sgd": lambda: net.sgd(X, y, 1, 2, 1.0, progress=False)}[call]
    with pytest.raises(ValueError, match=message):
        run()


def _out_of_memory(*args, **kwargs):
    raise MemoryError  # as NumPy raises it; nothing is allocated (a host may overcommit)


def test_a_network_too_large_for_memory_says_how_large(monkeypatch):
    from loopbp import network

    monkeypatch.setattr(network, "initial_parameters", _out_of_memory)
    with pytest.raises(MemoryError, match=r"sizes \[4, 10000000000, 3\] need 80,000,000,003 "):
        loopbp.Network([4, 10**10, 3])


def _spare(net, kind):
    """The scratch buffers ``net`` keeps for its next call of ``kind`` (None if none)."""
    from loopbp import network

    kept = network._SPARE.get(net, {}).get(kind)
    return None if kept is None else kept[1]


def test_calls_in_a_row_reuse_their_buffers_with_the_same_results(rng):
    """A call reuses the last call's typed lists and scratch buffers (shapes allowing):
    the same bits as a network that builds everything afresh for every call."""
    from loopbp import network

    X, Y = random_data(rng, 40, [6, 5, 3])
    calls = [(X, Y, 10), (X, Y, 10), (X[:37], Y[:37], 7), (X[:37], Y[:37], 7), (X, Y, 10)]
    reusing = loopbp.Network([6, 5, 3], seed=4)
    fresh = loopbp.Network([6, 5, 3], seed=4)
    kept = []
    for X_c, Y_c, batch in calls:
        reusing.sgd(X_c, Y_c, 2, batch, 0.5, progress=False)
        kept.append(_spare(reusing, "sgd"))
        network._LISTS.pop(fresh, None)
        network._SPARE.pop(fresh, None)
        fresh.sgd(X_c, Y_c, 2, batch, 0.5, progress=False)
        for a, b in zip(reusing.weights + reusing.biases, fresh.weights + fresh.biases):
            np.testing.assert_array_equal(a, b)
    assert kept[1] is kept[0] and kept[3] is kept[2]  # same shapes: the same buffers
    assert kept[2] is not kept[1] and kept[4] is not kept[3]  # other shapes: new ones
    assert reusing.parameters()[0] is reusing.parameters()[0]  # the list is reused


def test_large_scratch_is_not_kept():
    """Buffers above the limit (a full-batch workspace, say) are freed with their call."""
    from loopbp import network

    net = loopbp.Network([784, 30, 10], seed=0)
    rows = network.SPARE_LIMIT_BYTES // network.workspace_bytes(net.sizes, 1, net.dtype) + 1
    net.backprop(np.zeros((rows, 784)), np.zeros(rows, int))
    assert _spare(net, "backprop") is None
    net.backprop(np.zeros((10, 784)), np.zeros(10, int))
    assert _spare(net, "backprop") is not None


def test_lent_buffers_do_not_keep_a_network_alive(rng):
    import gc
    import weakref

    net = loopbp.Network([6, 5, 3], seed=0)
    X, Y = random_data(rng, 12, [6, 5, 3])
    net.sgd(X, Y, 1, 4, 1.0, progress=False)
    net.feedforward(X)
    net.backprop(X, Y)
    assert _spare(net, "sgd") is not None
    alive = weakref.ref(net)
    del net
    gc.collect()
    assert alive() is None


def test_feedforward_reuses_its_buffers_but_reads_the_current_weights(rng):
    """Weights changed in place between calls are seen, also by layers that read them
    transposed (short sums: the transposes live in buffers lent from call to call)."""
    from loopbp import kernels

    net = loopbp.Network([20, 40, 30, 3], seed=1)
    assert kernels.needs_transpose(net.weights[0], False)  # the case under test
    X = rng.random((9, 20))
    net.feedforward(X)
    kept = _spare(net, "feedforward")
    for scale in (1.0, 0.5, -2.0):
        net.weights[0] *= scale
        net.biases[1] += scale
        want = reference.feedforward(net.weights, net.biases, X)[-1]
        np.testing.assert_allclose(net.feedforward(X), want, rtol=1e-12, atol=1e-14)
        assert all(a is b for a, b in zip(_spare(net, "feedforward"), kept))  # refilled
    np.testing.assert_allclose(net.feedforward(X[:4]), want[:4], rtol=1e-12, atol=1e-14)


def test_backprop_reuses_its_buffers_but_reads_the_current_weights(rng):
    """The same for backprop, whose hidden errors read a transpose when the sums are short."""
    from loopbp import kernels

    net = loopbp.Network([20, 8, 5], seed=3)
    assert kernels.needs_transpose(net.weights[1], True)  # the case under test
    X, Y = random_data(rng, 6, [20, 8, 5])
    net.backprop(X, Y)
    kept = _spare(net, "backprop")
    for scale in (0.5, -3.0):
        net.weights[1] *= scale
        got, want = net.backprop(X, Y), reference.backprop(net.weights, net.biases, X, Y)
        for a, b in zip(_flat(got), _flat(want)):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14)
        assert all(a is b for a, b in zip(_spare(net, "backprop"), kept))


def test_one_network_in_two_threads_at_once(rng):
    """feedforward and backprop on one network from two threads: each call finds the
    lent buffers taken and makes its own, so the results are those of calls one by one."""
    import threading

    net = loopbp.Network([100, 300, 10], seed=5)  # calls long enough to overlap
    X, Y = random_data(rng, 500, [100, 300, 10])
    want_out, want_grad = net.feedforward(X), _flat(net.backprop(X, Y))
    failures: list[str] = []
    barrier = threading.Barrier(2)

    def work() -> None:
        barrier.wait()
        for _ in range(30):
            out, grad = net.feedforward(X), _flat(net.backprop(X, Y))
            if not (np.array_equal(out, want_out)
                    and all(np.array_equal(a, b) for a, b in zip(grad, want_grad))):
                failures.append("results differ")
                return

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert not failures


def test_a_replaced_parameter_array_is_the_one_trained(rng):
    """A weight array replaced between calls is trained in place, not a stale list's."""
    X, Y = random_data(rng, 20, [4, 3, 2])
    net = loopbp.Network([4, 3, 2], seed=2)
    twin = loopbp.Network([4, 3, 2], seed=2)
    net.sgd(X, Y, 1, 5, 1.0, progress=False)
    twin.sgd(X, Y, 1, 5, 1.0, progress=False)
    replacement = net.weights[1].copy()
    net.weights[1] = replacement
    net.sgd(X, Y, 1, 5, 1.0, progress=False)
    twin.sgd(X, Y, 1, 5, 1.0, progress=False)
    assert net.weights[1] is replacement
    np.testing.assert_array_equal(replacement, twin.weights[1])


# --- bad input: a clear error naming the argument, before any kernel runs -----------

BAD_SIZES = [
    ([3], ValueError, "at least two layers"),
    ([], ValueError, "at least two layers"),
    ([3, 0, 2], ValueError, "positive"),
    ([3, -1, 2], ValueError, "positive"),
    ([3, 2.5, 2], TypeError, "integer"),
    ([3, True, 2], TypeError, "integer"),
    ("3,2", TypeError, "sequence"),
    (5, TypeError, "sequence"),
    ([[3, 2], [2, 1]], ValueError, "one-dimensional"),
]


@pytest.mark.parametrize(("sizes", "error", "message"), BAD_SIZES)
def test_bad_sizes(sizes, error, message):
    with pytest.raises(error, match=message):
        loopbp.Network(sizes)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"dtype": np.int32}, ValueError, "dtype"),
    ({"dtype": "complex128"}, ValueError, "dtype"),
    ({"dtype": "nonsense"}, TypeError, "dtype"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": "x"}, TypeError, "seed"),
])
def test_bad_constructor_options(kwargs, error, message):
    with pytest.raises(error, match=message):
        loopbp.Network([2, 2], **kwargs)


NAN_X = np.ones((3, 4))
NAN_X[1, 2] = np.nan
INF_X = np.ones((3, 4))
INF_X[0, 0] = np.inf
BAD_X = [
    (np.ones((3, 5)), ValueError, "4 columns"),
    (np.ones((3, 4, 1)), ValueError, "2-D"),
    (np.ones((0, 4)), ValueError, "empty"),
    (NAN_X, ValueError, "NaN or infinity"),
    (INF_X, ValueError, "NaN or infinity"),
    (np.array([["a"] * 4] * 3), TypeError, "real numbers"),
    (np.ones((3, 4), dtype=complex), TypeError, "real numbers"),
    ([[1, 2, 3, 4], [1, 2]], ValueError, "rectangular"),
    (np.full((2, 4), 1e300), None, None),  # finite in float64: fine
]


@pytest.mark.parametrize(("X", "error", "message"), BAD_X)
def test_bad_inputs_to_every_method(X, error, message):
    net = loopbp.Network([4, 3, 2], seed=0)
    n = len(X) if hasattr(X, "__len__") else 1
    calls = [
        lambda: net.feedforward(X),
        lambda: net.backprop(X, np.zeros((n, 2))),
        lambda: net.evaluate(X, np.zeros(n, dtype=int)),
        lambda: net.sgd(X, np.zeros((n, 2)), 1, 2, 1.0, progress=False),
    ]
    for call in calls:
        if error is None:
            call()
        else:
            with pytest.raises(error, match=message):
                call()


def test_overflow_to_infinity_in_float32_is_refused():
    net = loopbp.Network([2, 2], seed=0, dtype=np.float32)
    with pytest.raises(ValueError, match="NaN or infinity"):
        net.feedforward(np.full((1, 2), 1e300))


@pytest.mark.parametrize(("Y", "error", "message"), [
    (np.zeros((4, 2)), ValueError, r"shape \(3, 2\)"),
    (np.zeros((3, 3)), ValueError, r"shape \(3, 2\)"),
    (np.zeros(4, dtype=int), ValueError, "3 rows"),
    (np.array([0, 1, 2]), ValueError, r"labels in 0\.\.1"),
    (np.array([0, -1, 1]), ValueError, r"labels in 0\.\.1"),
    # reported as given, not as the int64 it would wrap around to
    (np.array([0, 1e19, 1]), ValueError, r"labels in 0\.\.1 .*got values from 0\.0 to 1e\+19"),
    (np.array([0, 2**63, 1], dtype=np.uint64), ValueError, r"from 0 to 9223372036854775808"),
    (np.array([0, 0.5, 1]), ValueError, "whole-number"),
    (np.array([True, False, True]), TypeError, "integer class labels"),
    (np.array([[0.0, np.nan]] * 3), ValueError, "NaN or infinity"),
    (np.zeros((3, 2, 1)), ValueError, "targets of shape"),
])
def test_bad_targets(Y, error, message):
    net = loopbp.Network([4, 3, 2], seed=0)
    with pytest.raises(error, match=message):
        net.backprop(np.ones((3, 4)), Y)


@pytest.mark.parametrize(("args", "error", "message"), [
    ((-1, 2, 1.0), ValueError, "epochs"),
    ((1.5, 2, 1.0), TypeError, "epochs"),
    ((1, 0, 1.0), ValueError, "mini_batch_size"),
    ((1, -3, 1.0), ValueError, "mini_batch_size"),
    ((1, 2.0, 1.0), TypeError, "mini_batch_size"),
    ((1, 2, float("nan")), ValueError, "eta"),
    ((1, 2, float("inf")), ValueError, "eta"),
    ((1, 2, 0.0), ValueError, "eta"),
    ((1, 2, -1.0), ValueError, "eta"),
    ((1, 2, "fast"), TypeError, "eta"),
])
def test_bad_hyperparameters(args, error, message):
    net = loopbp.Network([4, 3, 2], seed=0)
    before = [w.copy() for w in net.weights]
    with pytest.raises(error, match=message):
        net.sgd(np.ones((3, 4)), np.zeros(3, dtype=int), *args, progress=False)
    for a, b in zip(before, net.weights):
        np.testing.assert_array_equal(a, b)


def test_bad_test_data():
    net = loopbp.Network([4, 3, 2], seed=0)
    X, y = np.ones((3, 4)), np.zeros(3, dtype=int)
    with pytest.raises(TypeError, match="test_data"):
        net.sgd(X, y, 1, 2, 1.0, test_data=X, progress=False)
    with pytest.raises(ValueError, match=r"test_data\[1\]"):
        net.sgd(X, y, 1, 2, 1.0, test_data=(X, np.array([0, 1, 5])), progress=False)


# --- files --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_save_load_round_trip(tmp_path, rng, dtype):
    net = loopbp.Network([5, 4, 3], seed=9, dtype=dtype)
    X, Y = random_data(rng, 12, [5, 4, 3])
    net.sgd(X, Y, 1, 4, 1.0, progress=False)
    path = tmp_path / "net.npz"
    net.save(path)
    loaded = loopbp.Network.load(path)
    assert loaded.sizes == net.sizes and loaded.dtype == net.dtype
    for a, b in zip(net.weights + net.biases, loaded.weights + loaded.biases):
        np.testing.assert_array_equal(a, b)
    # the generator state travels too: training on continues identically
    net.sgd(X, Y, 1, 4, 1.0, progress=False)
    loaded.sgd(X, Y, 1, 4, 1.0, progress=False)
    for a, b in zip(net.weights, loaded.weights):
        np.testing.assert_array_equal(a, b)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_load_refuses_foreign_and_damaged_files(tmp_path):
    net = loopbp.Network([3, 2], seed=0)
    good = tmp_path / "good.npz"
    net.save(good)
    data = good.read_bytes()
    cases = {
        "truncated.npz": data[: len(data) // 2],
        "text.npz": b"hello, world",
        "empty.npz": b"",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    np.savez(tmp_path / "foreign.npz", x=np.ones(3))
    np.save(tmp_path / "array.npy", np.ones(3))
    for name in [*cases, "foreign.npz", "array.npy"]:
        with pytest.raises(loopbp.NetworkFileError):
            loopbp.Network.load(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        loopbp.Network.load(tmp_path / "missing.npz")


# --- activations, costs and initializers by name ------------------------------------


@pytest.mark.parametrize("kwargs, error, match", [
    ({"activation": "swish"}, ValueError, "activation must be one of"),
    ({"activation": "softmax"}, ValueError, "output layer only"),
    ({"activation": ["relu", "softmax"]}, ValueError, "output layer only"),
    ({"activation": ["relu"]}, ValueError, "one name per hidden layer"),
    ({"activation": ["relu", "tanh", "relu"]}, ValueError, "one name per hidden layer"),
    ({"activation": ["relu", 3]}, TypeError, r"activation\[1\]"),
    ({"activation": 3}, TypeError, "activation"),
    ({"output": "gelu"}, ValueError, "output must be one of"),
    ({"output": None}, TypeError, "output"),
    ({"cost": "hinge"}, ValueError, "cost must be one of"),
    ({"init": "xavier"}, ValueError, "init must be one of"),
    ({"cost": "log_likelihood"}, ValueError, "output='softmax'"),
    ({"cost": "log_likelihood", "output": "sigmoid"}, ValueError, "output='softmax'"),
    ({"cost": "cross_entropy", "output": "softmax"}, ValueError, "output='sigmoid'"),
    ({"cost": "cross_entropy", "output": "relu"}, ValueError, "output='sigmoid'"),
])
def test_model_names_and_pairings_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        loopbp.Network([4, 3, 3, 2], **kwargs)


def test_defaults_are_the_derivations_network_exactly():
    default = loopbp.Network([5, 4, 3], seed=7)
    explicit = loopbp.Network([5, 4, 3], activation="sigmoid", output="sigmoid",
                              cost="quadratic", init="normal", seed=7)
    assert default.activations == ["sigmoid", "sigmoid"]
    assert (default.cost, default.init) == ("quadratic", "normal")
    rng = np.random.default_rng(7)  # biases of every layer first, then the weights
    biases = [rng.standard_normal(4), rng.standard_normal(3)]
    weights = [rng.standard_normal((4, 5)), rng.standard_normal((3, 4))]
    for got, other, want in zip(default.weights + default.biases,
                                explicit.weights + explicit.biases, weights + biases):
        assert np.array_equal(got, want) and np.array_equal(other, want)


def test_per_layer_activations_and_repr():
    net = loopbp.Network([4, 3, 3, 2], activation=["relu", "tanh"], output="softmax",
                         cost="log_likelihood")
    assert net.activations == ["relu", "tanh", "softmax"]
    assert "activation=['relu', 'tanh']" in repr(net) and "cost='log_likelihood'" in repr(net)
    assert loopbp.Network([4, 2]).activations == ["sigmoid"]  # no hidden layer


@pytest.mark.parametrize("init", ["normal", "scaled", "glorot", "he"])
def test_initializers_have_their_published_scale(init):
    n_in, n_out = 400, 300
    net = loopbp.Network([n_in, n_out, 2], init=init, seed=0)
    w, b = net.weights[0], net.biases[0]
    variance = {"normal": 1.0, "scaled": 1 / n_in, "glorot": 2 / (n_in + n_out),
                "he": 2 / n_in}[init]  # glorot: U(−r, r) has variance r²/3 = 2/(n_in+n_out)
    assert w.var() == pytest.approx(variance, rel=0.02)
    assert abs(w.mean()) < 0.01 * np.sqrt(variance) * 10
    if init == "glorot":
        assert np.abs(w).max() <= np.sqrt(6 / (n_in + n_out))
    if init in ("glorot", "he"):
        assert not b.any()
    else:
        assert b.var() == pytest.approx(1.0, rel=0.3)
