"""Each kernel and each whole pass against the NumPy matrix-form reference."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_data

import loopbp
from loopbp import kernels, reference
from loopbp.activations import RELU, SIGMOID, SOFTMAX
from loopbp.costs import QUADRATIC
from loopbp.optimizers import SGD

# (n_in, n_out, batch): 1-neuron layers, batch of 1, sizes around the 4x4 tile
# and the tiled-gradient threshold, and sizes that leave remainders.
# (n_in, n_out, n): tiles and row forms, with rows, sums and blocks left over at the edges
LAYER_SHAPES = [(1, 1, 1), (1, 3, 2), (3, 1, 5), (4, 4, 4), (5, 7, 3), (8, 4, 17),
                (13, 9, 16), (30, 10, 10), (64, 30, 33), (40, 100, 13), (7, 300, 37),
                (130, 20, 7), (300, 10, 9), (127, 16, 6), (128, 16, 6),
                (64, 30, 300), (30, 10, 257), (100, 63, 130), (100, 64, 129),
                # the gradients' row form with 1-3 examples, 4, and 4k + 1…3
                (20, 6, 1), (20, 6, 2), (33, 7, 3), (17, 5, 4), (24, 9, 10), (40, 30, 11)]
TOL = {np.float64: dict(rtol=1e-12, atol=1e-13), np.float32: dict(rtol=2e-5, atol=2e-6)}


def _layer(rng, n_in, n_out, n, dtype):
    w = rng.standard_normal((n_out, n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    a_prev = rng.random((n, n_in)).astype(dtype)
    return w, b, a_prev


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("n_in", "n_out", "n"), LAYER_SHAPES)
def test_forward_layer_matches_matrix_form(rng, n_in, n_out, n, dtype):
    w, b, a_prev = _layer(rng, n_in, n_out, n, dtype)
    a = np.full((n, n_out), np.nan, dtype)
    kernels.forward_layer(w, np.ascontiguousarray(w.T), b, a_prev, a, SIGMOID)
    expected = reference.sigmoid(a_prev.astype(np.float64) @ w.T.astype(np.float64) + b)
    np.testing.assert_allclose(a, expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("n_in", "n_out", "n"), [(64, 30, 300), (30, 10, 129), (5, 1, 3),
                                                  (30, 10, 10)])
def test_column_form_gives_the_row_forms_bits(rng, n_in, n_out, n, dtype):
    """A narrow layer (column form) gives exactly the outputs of the same neurons in a
    layer wide enough for the row form: the same products, added in the same order."""
    # and so a 30-neuron layer's outputs do not depend on the number of examples,
    # though it takes the row form for a few and the column form for many
    assert not kernels.forward_by_columns(64, 30, kernels.COLUMN_FORM_MIN_ROWS - 1)
    width = kernels.COLUMN_FORM_MAX_WIDTH
    assert kernels.forward_by_columns(n_in, n_out, n)
    assert not kernels.forward_by_columns(n_in, width, n) and kernels.forward_by_rows(n_in, width)
    w, b, a_prev = _layer(rng, n_in, n_out, n, dtype)
    w_wide = np.vstack([w, rng.standard_normal((width - n_out, n_in)).astype(dtype)])
    b_wide = np.concatenate([b, np.zeros(width - n_out, dtype)])
    a, a_wide = np.empty((n, n_out), dtype), np.empty((n, width), dtype)
    kernels.forward_layer(w, np.empty((0, 0), dtype), b, a_prev, a, SIGMOID)
    kernels.forward_layer(w_wide, np.ascontiguousarray(w_wide.T), b_wide, a_prev, a_wide,
                          SIGMOID)
    np.testing.assert_array_equal(a, a_wide[:, :n_out])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("f", [SIGMOID, RELU, SOFTMAX])
def test_outputs_do_not_depend_on_the_number_of_examples(rng, f, dtype):
    """A 20-neuron layer takes the row form for 10 examples and the column form for 300
    (its softmax too): the first 10 outputs are the same bits either way."""
    n_in, n_out = 30, 20
    assert not kernels.forward_by_columns(n_in, n_out, 10)
    assert kernels.forward_by_columns(n_in, n_out, 300)
    w, b, a_prev = _layer(rng, n_in, n_out, 300, dtype)
    w_T = np.ascontiguousarray(w.T)
    few, many = np.empty((10, n_out), dtype), np.empty((300, n_out), dtype)
    kernels.forward_layer(w, w_T, b, a_prev[:10], few, f)
    kernels.forward_layer(w, w_T, b, a_prev, many, f)
    np.testing.assert_array_equal(few, many[:10])
    if f == SOFTMAX:
        z = a_prev.astype(np.float64) @ w.T.astype(np.float64) + b
        np.testing.assert_allclose(many, reference.softmax(z), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("n_in", "n_out", "n"), LAYER_SHAPES)
def test_hidden_error_matches_matrix_form(rng, n_in, n_out, n, dtype):
    w, _, a_prev = _layer(rng, n_in, n_out, n, dtype)
    delta = rng.standard_normal((n, n_out)).astype(dtype)
    w_T = np.empty((n_in, n_out), dtype)
    kernels.transpose(w, w_T)
    np.testing.assert_array_equal(w_T, w.T)
    delta_prev = np.full((n, n_in), np.nan, dtype)
    kernels.hidden_error(w, w_T, delta, a_prev, delta_prev, SIGMOID)
    expected = (delta.astype(np.float64) @ w) * a_prev * (1 - a_prev)  # M4, rows as examples
    np.testing.assert_allclose(delta_prev, expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("n_in", "n_out", "n"), LAYER_SHAPES)
def test_gradients_match_matrix_form(rng, n_in, n_out, n, dtype):
    _, _, a_prev = _layer(rng, n_in, n_out, n, dtype)
    delta = rng.standard_normal((n, n_out)).astype(dtype)
    dC_dw = np.full((n_out, n_in), np.nan, dtype)
    dC_db = np.full(n_out, np.nan, dtype)
    kernels.gradients(delta, a_prev, dC_dw, dC_db, np.empty((n_out, n), dtype),
                      np.empty((n_in, n), dtype))
    np.testing.assert_allclose(dC_dw, delta.T.astype(np.float64) @ a_prev / n, **TOL[dtype])
    np.testing.assert_allclose(dC_db, delta.astype(np.float64).mean(axis=0), **TOL[dtype])


def test_output_error_and_cost_match_matrix_form(rng):
    a = rng.random((6, 3))
    y = rng.random((6, 3))
    delta = np.empty_like(a)
    kernels.output_error(a, y, delta, SIGMOID, QUADRATIC)
    np.testing.assert_allclose(delta, (a - y) * a * (1 - a), rtol=1e-15)  # M3
    want = 0.5 * np.sum((y - a) ** 2) / 6
    assert kernels.batch_cost(a, y, QUADRATIC, np.empty(0)) == pytest.approx(want)


def test_sgd_update_moves_against_the_gradient(rng):
    w, b = rng.standard_normal((3, 4)), rng.standard_normal(3)
    dC_dw, dC_db = rng.standard_normal((3, 4)), rng.standard_normal(3)
    w0, b0 = w.copy(), b.copy()
    empty_w, empty_b = np.zeros((0, 0)), np.zeros(0)  # plain SGD keeps no state
    kernels.update(w, b, dC_dw, dC_db, SGD, (0.5, 0.0, 0.9, 0.9, 0.999, 1e-8, 0.1, 0.001),
                   empty_w, empty_b, empty_w, empty_b)
    np.testing.assert_allclose(w, w0 - 0.5 * dC_dw, rtol=1e-15)
    np.testing.assert_allclose(b, b0 - 0.5 * dC_db, rtol=1e-15)


NETWORKS = [[1, 1, 1], [2, 2, 1], [3, 5, 2], [64, 30, 10], [7, 5, 6, 4, 3], [10, 20, 1, 20, 3]]


@pytest.mark.parametrize("sizes", NETWORKS)
@pytest.mark.parametrize("n", [1, 3, 20])
def test_network_passes_match_reference(rng, sizes, n):
    net = loopbp.Network(sizes, seed=3)
    X, Y = random_data(rng, n, sizes)
    np.testing.assert_allclose(net.feedforward(X),
                               reference.feedforward(net.weights, net.biases, X)[-1],
                               rtol=1e-12, atol=1e-14)
    nabla_w, nabla_b = net.backprop(X, Y)
    ref_w, ref_b = reference.backprop(net.weights, net.biases, X, Y)
    for got, want in zip(nabla_w + nabla_b, ref_w + ref_b):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
    assert net.mean_cost(X, Y) == pytest.approx(reference.cost(net.weights, net.biases, X, Y),
                                           rel=1e-12)


@pytest.mark.parametrize(("sizes", "batch", "n"), [([5, 4, 3], 4, 10), ([3, 6, 2], 7, 7),
                                                   ([4, 3, 2, 2], 20, 41), ([2, 2, 1], 50, 9)])
def test_sgd_epoch_matches_reference_epoch(rng, sizes, batch, n):
    """Same shuffle, same mini-batches (incl. a short last one): same parameters after."""
    net = loopbp.Network(sizes, seed=7)
    X, Y = random_data(rng, n, sizes)
    weights = [w.copy() for w in net.weights]
    biases = [b.copy() for b in net.biases]
    net.rng = np.random.default_rng(7)  # sgd shuffles with the network's generator
    order = np.random.default_rng(7).permutation(n)
    net.sgd(X, Y, 1, batch, 0.7, progress=False)
    reference.sgd_epoch(weights, biases, X, Y, order, min(batch, n), 0.7)
    for got, want in zip(net.weights + net.biases, weights + biases):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)


def test_feedforward_chunk_gives_narrow_networks_enough_work_to_share():
    """A narrow network's chunks carry enough work for the parallel kernels, within the
    buffer bound; a wide one's are the smallest chunk."""
    from loopbp.network import (
        FEEDFORWARD_BUFFER,
        FEEDFORWARD_CHUNK,
        PARALLEL_MIN_FLOPS,
        feedforward_chunk,
        flops_per_batch,
    )

    narrow = [64, 30, 10]
    chunk = feedforward_chunk(narrow, 10 ** 6)
    assert chunk > FEEDFORWARD_CHUNK
    assert flops_per_batch(narrow, chunk, backward=False) >= PARALLEL_MIN_FLOPS
    assert feedforward_chunk(narrow, 500) == 500  # never more rows than there are
    assert feedforward_chunk([1024] * 4, 10 ** 6) == FEEDFORWARD_CHUNK
    # [1, 3000, 1] would need 1667 rows for the flops, but 1667 * 3000 entries of buffer
    # exceed the bound, so it keeps the smallest chunk
    assert flops_per_batch([1, 3000, 1], 1667, backward=False) >= PARALLEL_MIN_FLOPS
    assert 1667 * 3000 > FEEDFORWARD_BUFFER
    assert feedforward_chunk([1, 3000, 1], 10 ** 6) == FEEDFORWARD_CHUNK


def test_large_feedforward_uses_chunks(rng):
    """More rows than one feed-forward chunk: every chunk lands in its place."""
    net = loopbp.Network([300, 40, 2], seed=0)
    chunk = loopbp.network.feedforward_chunk(net.sizes, 10 ** 9)
    assert chunk == loopbp.network.FEEDFORWARD_CHUNK  # several chunks below
    X = rng.random((chunk * 2 + 37, 300))
    np.testing.assert_allclose(net.feedforward(X),
                               reference.feedforward(net.weights, net.biases, X)[-1],
                               rtol=1e-12)


@pytest.mark.parametrize("n", [3, 10, 20])
def test_serial_twins_agree_bitwise_with_parallel_kernels(rng, n):
    """Small work runs the serial twins: they must give exactly the parallel results."""
    sizes = [9, 7, 5]
    X, Y = random_data(rng, n, sizes)
    results = []
    for chosen in (kernels, kernels.SERIAL):
        net = loopbp.Network(sizes, seed=1)
        weights, biases = net.parameters()
        ws = loopbp.network.workspace(sizes, n, np.float64)
        ws[0][0][:] = X
        ws[1][:] = Y
        weights_T = loopbp.network.typed_list([w.T.copy() for w in net.weights])
        nabla_w = loopbp.network.typed_list([np.empty_like(w) for w in net.weights])
        nabla_b = loopbp.network.typed_list([np.empty_like(b) for b in net.biases])
        cost = chosen.backprop(weights, biases, weights_T, nabla_w, nabla_b, ws, net.f_codes,
                               net.cost_code, np.empty(0))
        results.append([cost, *nabla_w, *nabla_b, *ws[0]])
    for a, b in zip(*results):
        assert np.array_equal(a, b)


def test_small_work_picks_serial_twins_and_large_work_parallel():
    assert loopbp.network.kernels_for([2, 2, 1], 1) is kernels.SERIAL
    assert loopbp.network.kernels_for([1024, 1024, 1024], 256) is kernels
