"""The compiled exponential, e^x − 1, tanh and sigmoid: within a few ulps of NumPy's over
the whole float64 range, with the special values right (they replace library calls so
that the activation loops vectorize)."""

from __future__ import annotations

import numpy as np
import pytest

from loopbp._jit import serial
from loopbp.activations import exp, expm1, sigmoid, tanh

EPS = np.finfo(np.float64).eps


def _map(function):
    @serial
    def apply(x, out):
        for i in range(x.shape[0]):
            out[i] = function(x[i])

    def run(x):
        out = np.empty_like(x)
        apply(x, out)
        return out

    return run


@pytest.fixture(scope="module")
def points():
    rng = np.random.default_rng(0)
    n = 200_000
    return np.concatenate([
        rng.uniform(-745, 710, n),  # the whole range of e^x
        rng.uniform(-1, 1, n),
        10.0 ** rng.uniform(-300, 0, n) * rng.choice([-1, 1], n),  # near 0, both signs
        rng.normal(0, 5, n),
    ])


def _ulps(got, want):
    keep = np.isfinite(want) & (np.abs(want) >= np.finfo(np.float64).tiny)
    return np.max(np.abs(got[keep] - want[keep]) / np.abs(want[keep])) / EPS


@pytest.mark.parametrize("name, ours, numpys, ulps", [
    ("exp", exp, np.exp, 1),
    ("expm1", expm1, np.expm1, 3),
    ("tanh", tanh, np.tanh, 3),
])
def test_within_a_few_ulps_of_numpy(points, name, ours, numpys, ulps):
    with np.errstate(over="ignore"):
        want = numpys(points)
    assert _ulps(_map(ours)(points), want) <= ulps


def test_sigmoid_within_two_ulps_of_its_definition(points):
    with np.errstate(over="ignore"):
        # 1 / (1 + e^(−z)) written as the library would, stable for z < 0
        e = np.exp(-np.abs(points))
        want = np.where(points >= 0, 1 / (1 + e), e / (1 + e))
    assert _ulps(_map(sigmoid)(points), want) <= 2


def test_special_values():
    x = np.array([0.0, np.inf, -np.inf, np.nan, 709.78, 710.0, -708.39, -708.4, -800.0])
    got = _map(exp)(x)
    np.testing.assert_array_equal(got[:4], [1.0, np.inf, 0.0, np.nan])
    assert got[4] == pytest.approx(np.exp(709.78), rel=4 * EPS)
    assert got[5] == np.inf
    assert got[6] == pytest.approx(np.exp(-708.39), rel=4 * EPS)
    assert got[7] == got[8] == 0.0  # below the smallest normal float64: flushed
    t = _map(tanh)(np.array([0.0, 1e-300, -1e-300, 25.0, -25.0, np.inf, -np.inf, np.nan]))
    np.testing.assert_array_equal(t, [0.0, 1e-300, -1e-300, 1.0, -1.0, 1.0, -1.0, np.nan])
    s = _map(sigmoid)(np.array([0.0, np.inf, -np.inf, np.nan, 800.0, -800.0]))
    np.testing.assert_array_equal(s, [0.5, 1.0, 0.0, np.nan, 1.0, 0.0])
