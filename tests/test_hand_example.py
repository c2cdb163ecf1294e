"""The network worked by hand in the docs ("A network by hand"), checked against loopbp.

The numbers live in ``docs/hand_example.json``: the page prints them from that
file and this test checks that loopbp computes them, so the two cannot drift.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import loopbp
from loopbp import kernels

DATA = Path(__file__).resolve().parents[1] / "docs" / "hand_example.json"
TOL = {"rtol": 1e-12, "atol": 1e-15}


@pytest.fixture(scope="module")
def example() -> dict:
    return json.loads(DATA.read_text(encoding="utf-8"))


def network(given: dict) -> loopbp.Network:
    net = loopbp.Network([2, 2, 1], seed=0)
    net.weights = [np.array(given["w2"], dtype=np.float64), np.array(given["w3"], dtype=np.float64)]
    net.biases = [np.array(given["b2"], dtype=np.float64), np.array(given["b3"], dtype=np.float64)]
    return net


def test_the_numbers_follow_from_the_equations(example):
    """Redo the page's arithmetic in plain Python, equation by equation."""
    g, e = example["given"], example["expected"]
    x, y, w2, b2, w3, b3 = g["x"], g["y"], g["w2"], g["b2"], g["w3"], g["b3"]

    def sigma(z):
        return 1 / (1 + math.exp(-z))

    z2 = [w2[j][0] * x[0] + w2[j][1] * x[1] + b2[j] for j in range(2)]  # (1)
    a2 = [sigma(z) for z in z2]  # (2)
    z3 = [w3[0][0] * a2[0] + w3[0][1] * a2[1] + b3[0]]
    a3 = [sigma(z3[0])]
    cost = 0.5 * (y[0] - a3[0]) ** 2  # (3)
    delta3 = [(a3[0] - y[0]) * a3[0] * (1 - a3[0])]  # (4), (2')
    dC_da2 = [w3[0][k] * delta3[0] for k in range(2)]  # (5), (1')
    delta2 = [dC_da2[k] * a2[k] * (1 - a2[k]) for k in range(2)]
    computed = {
        "z2": z2, "a2": a2, "z3": z3, "a3": a3, "cost": cost, "delta3": delta3,
        "dC_da2": dC_da2, "delta2": delta2,
        "dC_dw3": [[a2[k] * delta3[0] for k in range(2)]],  # (6), (1'')
        "dC_db3": delta3,  # (7), (1''')
        "dC_dw2": [[x[k] * delta2[j] for k in range(2)] for j in range(2)],
        "dC_db2": delta2,
    }
    computed["w3_new"] = [[w3[0][k] - g["eta"] * computed["dC_dw3"][0][k] for k in range(2)]]
    computed["b2_new"] = [b2[j] - g["eta"] * delta2[j] for j in range(2)]
    for name, value in computed.items():
        np.testing.assert_allclose(value, e[name], **TOL, err_msg=name)


def test_forward_pass(example):
    g, e = example["given"], example["expected"]
    net = network(g)
    X = np.array([g["x"]])
    np.testing.assert_allclose(net.feedforward(X), [e["a3"]], **TOL)
    # The hidden layer alone, through the same kernel the network uses.
    hidden = np.empty((1, 2))
    w = net.weights[0]
    kernels.forward_layer(w, np.ascontiguousarray(w.T), net.biases[0], X, hidden,
                          net.f_codes[0])
    np.testing.assert_allclose(hidden, [e["a2"]], **TOL)
    np.testing.assert_allclose(np.array(g["w2"]) @ g["x"] + g["b2"], e["z2"], **TOL)
    np.testing.assert_allclose(np.array(g["w3"]) @ e["a2"] + g["b3"], e["z3"], **TOL)


def test_cost_errors_and_gradients(example):
    g, e = example["given"], example["expected"]
    net = network(g)
    X, Y = np.array([g["x"]]), np.array([g["y"]])
    assert net.mean_cost(X, Y) == pytest.approx(e["cost"], rel=1e-12)
    nabla_w, nabla_b = net.backprop(X, Y)
    np.testing.assert_allclose(nabla_w[1], e["dC_dw3"], **TOL)
    np.testing.assert_allclose(nabla_b[1], e["dC_db3"], **TOL)
    np.testing.assert_allclose(nabla_w[0], e["dC_dw2"], **TOL)
    np.testing.assert_allclose(nabla_b[0], e["dC_db2"], **TOL)
    # With one example the bias gradients are the errors δ themselves (I7 with I1‴).
    np.testing.assert_allclose(nabla_b[1], e["delta3"], **TOL)
    np.testing.assert_allclose(nabla_b[0], e["delta2"], **TOL)


def test_one_sgd_step(example):
    g, e = example["given"], example["expected"]
    net = network(g)
    X, Y = np.array([g["x"]]), np.array([g["y"]])
    history = net.sgd(X, Y, epochs=1, mini_batch_size=1, eta=g["eta"], progress=False)
    assert history[0].cost == pytest.approx(e["cost"], rel=1e-12)  # measured before the step
    np.testing.assert_allclose(net.weights[1], e["w3_new"], **TOL)
    np.testing.assert_allclose(net.biases[1], e["b3_new"], **TOL)
    np.testing.assert_allclose(net.weights[0], e["w2_new"], **TOL)
    np.testing.assert_allclose(net.biases[0], e["b2_new"], **TOL)
