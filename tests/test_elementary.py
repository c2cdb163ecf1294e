"""The compiled exponential, e^x − 1, tanh and sigmoid: within a few ulps of NumPy's over
the whole float64 range (and over the float32 range in float32), with the special values
right (they replace library calls so that the activation loops vectorize); and the
activations and their derivatives keep a float32 argument's precision."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from loopbp._jit import serial
from loopbp.activations import (
    ACTIVATIONS,
    HIDDEN,
    activation,
    activation_prime,
    exp,
    exp32,
    exp64,
    expm1,
    expm1_32,
    sigmoid,
    tanh,
)

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


@pytest.fixture(scope="module")
def points32():
    rng = np.random.default_rng(1)
    n = 200_000
    return np.concatenate([
        rng.uniform(-88, 89, n),  # the whole range of e^x in float32
        rng.uniform(-1, 1, n),
        10.0 ** rng.uniform(-30, 0, n) * rng.choice([-1, 1], n),
        rng.normal(0, 5, n),
    ]).astype(np.float32)


def _ulps32(got, exact):
    """Largest error in float32 ulps of the exact values (given in float64)."""
    keep = np.isfinite(exact) & (np.abs(exact) >= np.finfo(np.float32).tiny) & (
        np.abs(exact) <= np.finfo(np.float32).max)
    spacing = np.spacing(exact[keep].astype(np.float32)).astype(np.float64)
    return np.max(np.abs(got[keep].astype(np.float64) - exact[keep]) / spacing)


def test_float32_exp_within_an_ulp_and_a_quarter(points32):
    with np.errstate(over="ignore"):
        exact = np.exp(points32.astype(np.float64))
    got = _map(exp32)(points32)
    assert got.dtype == np.float32
    assert _ulps32(got, exact) <= 1.25


def test_exp_takes_the_precision_of_its_argument(points32):
    """Compiled, ``exp`` is exp32 on float32 and exp64 on float64, bit for bit."""
    np.testing.assert_array_equal(_map(exp)(points32), _map(exp32)(points32))
    x = points32.astype(np.float64)
    np.testing.assert_array_equal(_map(exp)(x), _map(exp64)(x))
    assert exp(np.float32(1)) == exp32(np.float32(1)) != exp64(1.0)


def test_float32_sigmoid_within_three_ulps(points32):
    z = points32.astype(np.float64)
    e = np.exp(-np.abs(z))
    exact = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
    assert _ulps32(_map(sigmoid)(points32), exact) <= 3


def test_float32_special_values():
    x = np.array([0, np.inf, -np.inf, np.nan, 88.72, 88.73, -87.3, -87.4, -100], np.float32)
    got = _map(exp32)(x)
    np.testing.assert_array_equal(got[:4], np.array([1, np.inf, 0, np.nan], np.float32))
    exact = np.exp(x.astype(np.float64))
    assert got[4] == pytest.approx(exact[4], rel=3e-7)
    assert got[5] == np.inf
    assert got[6] == pytest.approx(exact[6], rel=3e-7)
    assert got[7] == got[8] == 0  # below the smallest normal float32: flushed
    s = _map(sigmoid)(np.array([0, np.inf, -np.inf, np.nan, 100, -100], np.float32))
    np.testing.assert_array_equal(s, np.array([0.5, 1, 0, np.nan, 1, 0], np.float32))


def test_float32_expm1_and_tanh_within_three_ulps(points32):
    x = points32.astype(np.float64)
    with np.errstate(over="ignore"):
        exact = np.expm1(x)
    got = _map(expm1)(points32)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, _map(expm1_32)(points32))  # expm1 is expm1_32 here
    assert _ulps32(got, exact) <= 3
    assert _ulps32(_map(tanh)(points32), np.tanh(x)) <= 3
    t = _map(tanh)(np.array([0, 1e-30, -1e-30, 10, -10, np.inf, -np.inf, np.nan], np.float32))
    np.testing.assert_array_equal(
        t, np.array([0, 1e-30, -1e-30, 1, -1, 1, -1, np.nan], np.float32))


@serial
def _f_and_f_prime(code, z):
    a = activation(code, z)
    return a, activation_prime(code, a)


@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_activations_and_derivatives_keep_the_precision_of_their_argument(name):
    """Compiled for a float32 argument, f and f′ return float32 (their constants follow the
    argument), so a float32 network's loops stay in float32 vectors; float64 stays float64."""
    code = ACTIVATIONS[name]
    for z, kind in ((np.float32(-0.75), numba.float32), (np.float32(0.5), numba.float32),
                    (-0.75, numba.float64)):
        _f_and_f_prime(code, z)
        returned = {sig.return_type for sig in _f_and_f_prime.nopython_signatures
                    if sig.args[1] == kind}
        assert returned == {numba.types.UniTuple(kind, 2)}, name
