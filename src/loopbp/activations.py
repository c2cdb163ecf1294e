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

from ._jit import inline, strict

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


@inline
def sigmoid(z):
    """σ(z) = 1 / (1 + e^(−z)), evaluated without overflow for any finite z.

    For ``z < 0`` the textbook form would compute ``e^(+|z|)``; that branch is
    rewritten as ``e^z / (1 + e^z)``.  Both branches agree where they meet.
    """
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


@inline
def sigmoid_prime(a):
    """σ′(z) expressed through a = σ(z): σ′(z) = σ(z)(1 − σ(z)) = a (1 − a)."""
    return a * (1 - a)


@inline
def activation(code, z):
    """a = f(z) for the activation ``code`` (for the softmax, a = z: see :func:`softmax_row`)."""
    if code == SIGMOID:
        return sigmoid(z)  # eq I2, M2: a = σ(z)
    if code == TANH:
        return math.tanh(z)  # eq tanh: a = tanh z
    if code == RELU:
        return 0 if z < 0 else z  # eq relu: a = max(z, 0) (NaN stays NaN)
    if code == LEAKY_RELU:
        return LEAKY_SLOPE * z if z < 0 else z  # eq leaky: a = z if z > 0 else 0.01 z
    return z  # eq identity: a = z


@inline
def activation_prime(code, a):
    """f′(z) through the activation a = f(z), for the activation ``code`` (not the softmax)."""
    if code == SIGMOID:
        return sigmoid_prime(a)  # eq I2': σ'(z) = a (1 − a)
    if code == TANH:
        return 1 - a * a  # eq tanh': tanh'(z) = 1 − a²
    if code == RELU:
        return 1 if a > 0 else 0  # eq relu': 1 if a > 0 else 0
    if code == LEAKY_RELU:
        return 1 if a > 0 else LEAKY_SLOPE  # eq leaky': 1 if a > 0 else 0.01
    return 1  # eq identity': f'(z) = 1


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
    total = 0.0
    for j in range(n_out):
        e = math.exp(a[x, j] - z_max)
        a[x, j] = e
        total += e
    for j in range(n_out):
        a[x, j] /= total  # eq softmax: a_j = e^{z_j} / Σ_i e^{z_i}
