"""Gradients against central finite differences and an independent autodiff library."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_data

import loopbp


def _flat(pair):
    """(nabla_w, nabla_b) as one list of arrays."""
    return [*pair[0], *pair[1]]


def _finite_difference(net, X, Y, param, index, h=1e-6):
    original = param[index]
    param[index] = original + h
    up = net.mean_cost(X, Y)
    param[index] = original - h
    down = net.mean_cost(X, Y)
    param[index] = original
    return (up - down) / (2 * h)


@pytest.mark.parametrize("sizes", [[2, 2, 1], [3, 4, 2], [4, 3, 3, 2], [2, 3, 3, 3, 2]])
def test_every_layer_matches_central_differences(rng, sizes):
    net = loopbp.Network(sizes, seed=1)
    X, Y = random_data(rng, 5, sizes)
    nabla_w, nabla_b = net.backprop(X, Y)
    for layer in range(len(sizes) - 1):
        for param, grad in ((net.weights[layer], nabla_w[layer]),
                            (net.biases[layer], nabla_b[layer])):
            for index in np.ndindex(param.shape):
                numeric = _finite_difference(net, X, Y, param, index)
                assert grad[index] == pytest.approx(numeric, rel=1e-6, abs=1e-9), (
                    f"layer {layer}, entry {index}")


def _autograd_gradients(weights, biases, X, Y):
    """∂C/∂w, ∂C/∂b by reverse-mode autodiff of the plain cost, with no backprop code of ours."""
    ag = pytest.importorskip("autograd")
    anp = pytest.importorskip("autograd.numpy")

    def mean_cost(params):
        a = X
        for w, b in zip(params[0::2], params[1::2]):
            a = 1 / (1 + anp.exp(-(anp.dot(a, w.T) + b)))
        return 0.5 * anp.sum((Y - a) ** 2) / X.shape[0]

    params = [p for pair in zip(weights, biases) for p in pair]
    grads = ag.grad(mean_cost)(params)
    return grads[0::2], grads[1::2]


def _relative_error(got, want):
    return np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300)


@pytest.mark.parametrize("sizes", [[1, 1, 1], [2, 2, 1], [5, 8, 3], [64, 30, 10],
                                   [10, 12, 9, 8, 4], [784, 100, 10]])
def test_gradients_match_independent_autodiff(rng, sizes):
    net = loopbp.Network(sizes, seed=2)
    X, Y = random_data(rng, 12, sizes)
    nabla_w, nabla_b = net.backprop(X, Y)
    auto_w, auto_b = _autograd_gradients(net.weights, net.biases, X, Y)
    for got, want in zip(nabla_w + nabla_b, auto_w + auto_b):
        assert _relative_error(got, want) < 1e-10


def test_float32_gradients_close_to_float64(rng):
    net64 = loopbp.Network([6, 5, 3], seed=4)
    net32 = loopbp.Network([6, 5, 3], seed=4, dtype=np.float32)
    X, Y = random_data(rng, 9, [6, 5, 3])
    for got, want in zip(_flat(net32.backprop(X, Y)), _flat(net64.backprop(X, Y))):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
