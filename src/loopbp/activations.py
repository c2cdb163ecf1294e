"""Activation functions f and their derivatives f′, as compiled scalar formulas.

A registry maps each name to a small integer *code*; the kernels receive the
code and branch on it (:func:`activation`, :func:`activation_prime`), so one
compiled kernel serves every activation and numba's on-disk cache keeps
working.  Each f is written beside its f′, and every f′ is expressed through
the activation ``a = f(z)`` rather than ``z``: the backward pass reads the
stored activations only and never keeps ``z``.

============  =============================  ===============================
name          a = f(z)                       f′(z), through a
============  =============================  ===============================
sigmoid       1 / (1 + e^(−z))               a (1 − a)
tanh          tanh z                         1 − a²
relu          max(z, 0)                      1 if a > 0 else 0
leaky_relu    z if z > 0 else 0.01 z         1 if a > 0 else 0.01
identity      z                              1
softmax       e^(z_j) / Σ_i e^(z_i)          (a Jacobian; output layer only)
============  =============================  ===============================

ReLU's derivative at exactly ``z = 0`` is taken as 0 (as scikit-learn does).
The softmax couples a layer's neurons, so it is not a scalar formula: the
kernels apply :func:`softmax_row` to a whole row of weighted inputs, and its
derivative enters only through the output error (:mod:`loopbp.costs`).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numba.extending
import numpy as np

from ._jit import float32_from_bits, float64_from_bits, inline, strict

SIGMOID, TANH, RELU, LEAKY_RELU, IDENTITY, SOFTMAX = range(6)

#: Name → code, in the order of the codes.
ACTIVATIONS: dict[str, int] = {
    "sigmoid": SIGMOID, "tanh": TANH, "relu": RELU, "leaky_relu": LEAKY_RELU,
    "identity": IDENTITY, "softmax": SOFTMAX,
}
#: Code → name.
NAMES: dict[int, str] = {code: name for name, code in ACTIVATIONS.items()}
#: The activations a hidden layer may use (the softmax is for the output layer only).
HIDDEN: tuple[str, ...] = tuple(name for name in ACTIVATIONS if name != "softmax")
#: Slope of the leaky ReLU for z < 0.
LEAKY_SLOPE = 0.01


#: ln 2 split in two (Cody and Waite): k·LN2_HI is exact for the k that :func:`exp` meets.
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
LOG2_E = 1.44269504088896338700e+00
#: Beyond these, e^x overflows to infinity or is below the smallest normal float64.
EXP_MAX = 709.782712893384
EXP_MIN = -708.3964185322641

# The same for float32 (np.float32 constants keep the arithmetic in float32): LN2_HI32 has
# 9 significant bits, so k·LN2_HI32 is exact for |k| < 2^15.
LN2_HI32 = np.float32(0.693359375)
LN2_LO32 = np.float32(-2.12194440e-4)
LOG2_E32 = np.float32(LOG2_E)
EXP_MAX32 = np.float32(88.72283)
EXP_MIN32 = np.float32(-87.33654)
#: Taylor coefficients 1/n! of e^r in float32, n = 0 … 7 (the next term is below 6e-9).
TAYLOR32 = tuple(np.float32(1 / math.factorial(n)) for n in range(8))
#: Below these, e^x − 1 is taken from its series rather than from e^x: ln 2 / 2
#: (float64), ln 2 (float32).
HALF_LN2 = 0.34657359027997264
LN2_32 = np.float32(2 * HALF_LN2)
#: Taylor coefficients 1/n! of e^x − 1 in float32, n = 1 … 10.
EXPM1_TAYLOR32 = tuple(np.float32(1 / math.factorial(n)) for n in range(1, 11))


def in_precision_of(x: float, value: float) -> float:
    """``value`` as a float of the precision of ``x``: float32 for a float32 ``x``, float64
    otherwise.  Compiled (an overload), it lets a formula's constants keep a float32
    network's arithmetic in float32: numba computes ``1 − a`` in float64 for a float32 ``a``.
    """
    return np.float32(value) if isinstance(x, np.float32) else float(value)


@numba.extending.overload(in_precision_of, inline="always")
def _in_precision_of(x, value):  # numba compares the names and annotations with the lambdas
    if x == numba.types.float32:
        return lambda x, value: np.float32(value)
    return lambda x, value: np.float64(value)


def _by_precision(for_float32: Any, for_float64: Any) -> Any:
    """Make the decorated function ``for_float32(x)`` on a float32 ``x`` and
    ``for_float64(x)`` otherwise.

    In compiled code the choice is made when the caller is compiled (a numba
    overload), so a float32 network's loops run in float32 vectors, twice as
    many lanes as float64, with polynomials half as long.  The decorated
    function gives only its name and docstring.
    """
    def make(named: Any) -> Any:
        def function(x: float) -> float:
            return for_float32(x) if isinstance(x, np.float32) else for_float64(x)

        for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
            setattr(function, attribute, getattr(named, attribute))

        @numba.extending.overload(function, inline="always")
        def _compiled(x):  # numba compares the argument names with the lambdas'
            if x == numba.types.float32:
                return lambda x: for_float32(x)
            return lambda x: for_float64(x)

        return function

    return make


@strict
def exp64(x):
    """e^x in float64, as arithmetic the compiler can vectorize (no library call).

    x = k ln 2 + r with integer k and ``|r| ≤ ln 2 / 2``, so e^x = 2^k e^r: e^r
    from its Taylor series to r¹³ (the next term is below 1e-17 relative),
    2^k written straight into a float's exponent bits.  Within about 1 ulp of
    ``math.exp``; results below the smallest normal float64 are flushed to 0.
    """
    x = float(x)
    k = math.floor(x * LOG2_E + 0.5)
    r = (x - k * LN2_HI) - k * LN2_LO
    p = 1 + r * (1 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (
        1 / 720 + r * (1 / 5040 + r * (1 / 40320 + r * (1 / 362880 + r * (
            1 / 3628800 + r * (1 / 39916800 + r * (1 / 479001600 + r / 6227020800))))))))))))
    # 2^k written into the exponent bits: k is clamped to the normal range, and the one
    # k beyond it below EXP_MAX (1024) is taken as 2 · 2^1023
    k = min(max(k, -1022.0), 1024.0)
    if k > 1023:
        p *= 2
        k = 1023.0
    result = p * float64_from_bits((np.int64(k) + 1023) << 52)
    if x > EXP_MAX:
        result = math.inf
    if x < EXP_MIN:
        result = 0.0
    return result if x == x else x  # NaN stays NaN


@strict
def exp32(x):
    """e^x in float32, the same way as :func:`exp64` (within about 1.2 ulp of float32).

    x = k ln 2 + r as there; e^r from its Taylor series to r⁷, every step
    rounded to float32; 2^k written into a float32's exponent bits.  Results
    below the smallest normal float32 are flushed to 0.
    """
    c0, c1, c2, c3, c4, c5, c6, c7 = TAYLOR32
    k = np.floor(x * LOG2_E32 + c2)  # c2 = 1/2: k is x / ln 2 rounded to an integer
    r = (x - k * LN2_HI32) - k * LN2_LO32
    p = c0 + r * (c1 + r * (c2 + r * (c3 + r * (c4 + r * (c5 + r * (c6 + r * c7))))))
    k = min(max(k, np.float32(-126)), np.float32(128))
    if k > 127:  # the one k beyond the normal range below EXP_MAX32: 2 · 2^127
        p *= np.float32(2)
        k = np.float32(127)
    result = p * float32_from_bits((np.int64(k) + 127) << 23)
    if x > EXP_MAX32:
        result = np.float32(np.inf)
    if x < EXP_MIN32:
        result = np.float32(0)
    return result if x == x else x  # NaN stays NaN


@_by_precision(exp32, exp64)
def exp(x: float) -> float:
    """e^x in the precision of ``x``: :func:`exp32` for float32, :func:`exp64` otherwise."""


@inline
def expm1_64(x):
    """e^x − 1 in float64, accurate also where it is near 0 (vectorizable, as :func:`exp`).

    For ``|x| < ln 2 / 2`` the Taylor series of e^x − 1 (to x¹⁴) keeps the relative
    accuracy that ``exp(x) − 1`` would lose to cancellation; beyond, the
    difference is no smaller than 0.29 in size and ``exp(x) − 1`` is exact to
    an ulp.
    """
    x = float(x)
    series = x * (1 + x * (1 / 2 + x * (1 / 6 + x * (1 / 24 + x * (1 / 120 + x * (
        1 / 720 + x * (1 / 5040 + x * (1 / 40320 + x * (1 / 362880 + x * (
            1 / 3628800 + x * (1 / 39916800 + x * (1 / 479001600 + x * (
                1 / 6227020800 + x / 87178291200)))))))))))))
    return series if abs(x) < HALF_LN2 else exp64(x) - 1


@inline
def expm1_32(x):
    """e^x − 1 in float32: the Taylor series to x¹⁰ (the next term is below 7e-9
    relative) for ``|x| < ln 2``, ``exp32(x) − 1`` beyond.

    The series reaches ln 2 rather than ln 2 / 2 as in float64: just past ln 2 / 2,
    ``exp32(x) − 1`` would magnify exp32's error by e^x / (e^x − 1) ≈ 3.4.
    """
    c1, c2, c3, c4, c5, c6, c7, c8, c9, c10 = EXPM1_TAYLOR32
    series = x * (c1 + x * (c2 + x * (c3 + x * (c4 + x * (c5 + x * (c6 + x * (
        c7 + x * (c8 + x * (c9 + x * c10)))))))))
    return series if abs(x) < LN2_32 else exp32(x) - c1


@_by_precision(expm1_32, expm1_64)
def expm1(x: float) -> float:
    """e^x − 1 in the precision of ``x``: :func:`expm1_32` for float32, :func:`expm1_64`
    otherwise."""


@inline
def tanh(z):
    """``tanh z = (1 − e^(−2|z|)) / (1 + e^(−2|z|))``, with the sign of z (vectorizable).

    Written through ``m = e^(−2|z|) − 1`` ∈ (−1, 0] as −m / (2 + m), so it keeps
    its relative accuracy near 0 and never overflows.
    """
    two = in_precision_of(z, 2)
    m = expm1(-two * abs(z))
    t = -m / (two + m)
    return -t if z < 0 else t


@inline
def sigmoid(z):
    """σ(z) = 1 / (1 + e^(−z)), evaluated without overflow for any finite z.

    With ``e = e^(−|z|) ≤ 1``: σ(z) = 1 / (1 + e) for z ≥ 0 and e / (1 + e) for
    z < 0 (the textbook form would compute ``e^(+|z|)`` there).  Both are
    computed and one is chosen, so a loop of sigmoids has no branch.
    """
    e = exp(-abs(z))
    one = np.float32(1)  # exact in either precision, so the sigmoid keeps the precision of z
    return one / (one + e) if z >= 0 else e / (one + e)


@inline
def sigmoid_prime(a):
    """σ′(z) expressed through a = σ(z): σ′(z) = σ(z)(1 − σ(z)) = a (1 − a)."""
    return a * (in_precision_of(a, 1) - a)


@inline
def activation(code, z):
    """a = f(z) for the activation ``code`` (for the softmax, a = z: see :func:`softmax_row`)."""
    if code == SIGMOID:
        return sigmoid(z)  # eq I2, M2: a = σ(z)
    if code == TANH:
        return tanh(z)  # eq tanh: a = tanh z
    if code == RELU:
        return in_precision_of(z, 0) if z < 0 else z  # eq relu: a = max(z, 0) (NaN stays NaN)
    if code == LEAKY_RELU:
        slope = in_precision_of(z, LEAKY_SLOPE)
        return slope * z if z < 0 else z  # eq leaky: a = z if z > 0 else 0.01 z
    return z  # eq identity: a = z


@inline
def activation_prime(code, a):
    """f′(z) through the activation a = f(z), for the activation ``code`` (not the softmax)."""
    one, zero = in_precision_of(a, 1), in_precision_of(a, 0)  # keep a's precision
    if code == SIGMOID:
        return sigmoid_prime(a)  # eq I2': σ'(z) = a (1 − a)
    if code == TANH:
        return one - a * a  # eq tanh': tanh'(z) = 1 − a²
    if code == RELU:
        return one if a > 0 else zero  # eq relu': 1 if a > 0 else 0
    if code == LEAKY_RELU:
        return one if a > 0 else in_precision_of(a, LEAKY_SLOPE)  # eq leaky': else 0.01
    return one  # eq identity': f'(z) = 1


@strict
def softmax_row(a, x):
    """Replace the weighted inputs ``a[x, :]`` by their softmax, ``a_j = e^(z_j) / Σ_i e^(z_i)``.

    The largest z is subtracted first (it cancels in the ratio), so no
    exponential overflows and the largest one is exactly 1.  Compiled strict
    (no fast-math): the sum over i is added in index order wherever it runs.
    """
    n_out = a.shape[1]
    z_max = a[x, 0]
    for j in range(1, n_out):
        z_max = max(z_max, a[x, j])
    for j in range(n_out):
        a[x, j] = exp(a[x, j] - z_max)
    total = 0.0
    for j in range(n_out):
        total += a[x, j]
    for j in range(n_out):
        a[x, j] /= total  # eq softmax: a_j = e^{z_j} / Σ_i e^{z_i}


@strict
def softmax_columns(z_T, m, z_max, total):
    """:func:`softmax_row` for each of the first ``m`` columns of ``z_T``, a transposed
    block of weighted inputs (one row per neuron, one column per example).

    The loops run along the rows, so they vectorize over the examples; each
    column meets the same operations in the same order as a row does in
    :func:`softmax_row`, so both give the same bits.  ``z_max`` (same dtype)
    and ``total`` (float64) hold at least ``m`` entries of scratch.
    """
    n_out = z_T.shape[0]
    z_max, total = z_max[:m], total[:m]
    z_0 = z_T[0, :m]
    for e in range(m):
        z_max[e] = z_0[e]
    for j in range(1, n_out):
        z_j = z_T[j, :m]  # row views: indices from 0 need no wraparound, so loops vectorize
        for e in range(m):
            z_max[e] = max(z_max[e], z_j[e])
    for e in range(m):
        total[e] = 0.0
    for j in range(n_out):
        z_j = z_T[j, :m]
        for e in range(m):
            z_j[e] = exp(z_j[e] - z_max[e])
            total[e] += z_j[e]
    for j in range(n_out):
        z_j = z_T[j, :m]
        for e in range(m):
            z_j[e] /= total[e]  # eq softmax: a_j = e^{z_j} / Σ_i e^{z_i}
