"""Costs C and the output error δ^L they give, as compiled scalar formulas.

A registry maps each name to a small integer code that the kernels branch on.
For one example with target ``y`` and output activations ``a = a^L``:

=================  =======================================  ============  ====================
name               C of one example                         output layer  δ^L_j = ∂C/∂z^L_j
=================  =======================================  ============  ====================
quadratic          ½ Σ_j (y_j − a_j)²  (eq I3)              any           (a_j − y_j) f′(z_j)
cross_entropy      −Σ_j [y_j ln a_j + (1−y_j) ln(1−a_j)]    sigmoid       a_j − y_j
log_likelihood     −Σ_j y_j ln a_j                          softmax       a_j − y_j
=================  =======================================  ============  ====================

The last column is where the derivations meet: with a sigmoid output the
cross-entropy's ∂C/∂a_j = (a_j − y_j) / (a_j (1 − a_j)) is multiplied by
σ′ = a_j (1 − a_j), and with a softmax output the log-likelihood's
∂C/∂a_i = −y_i / a_i meets the softmax Jacobian ∂a_i/∂z_j = a_i (1[i=j] − a_j);
both leave ``a_j − y_j`` (derived step by step in the documentation).  With a
softmax output the quadratic cost goes through the Jacobian in full
(:func:`loopbp.kernels.softmax_quadratic_error`).

Over a mini-batch of ``n`` examples loopbp minimizes the mean,
``C = (1/n) Σ_x C_x``.  The logarithms take ``a`` clipped to ``[ε, 1 − ε]``,
ε the dtype's machine epsilon (as scikit-learn's log-loss does), so an output
that saturates at exactly 0 or 1 gives a large but finite cost instead of an
infinite one that would look like divergence.
"""

from __future__ import annotations

import math

from ._jit import inline

QUADRATIC, CROSS_ENTROPY, LOG_LIKELIHOOD = range(3)

#: Name → code.
COSTS: dict[str, int] = {
    "quadratic": QUADRATIC, "cross_entropy": CROSS_ENTROPY, "log_likelihood": LOG_LIKELIHOOD,
}
#: Code → name.
NAMES: dict[int, str] = {code: name for name, code in COSTS.items()}
#: The output activation each cost needs (None: any).
REQUIRED_OUTPUT: dict[str, str | None] = {
    "quadratic": None, "cross_entropy": "sigmoid", "log_likelihood": "softmax",
}


@inline
def _clip(a, eps):
    """``a`` moved into ``[eps, 1 − eps]``, so that ln a and ln(1 − a) stay finite."""
    return min(max(a, eps), 1 - eps)


@inline
def cost_term(code, a, y, eps):
    """One output's share of one example's cost C (``eps``: the clip for the logarithms)."""
    if code == QUADRATIC:
        diff = y - a
        return 0.5 * diff * diff  # eq I3: C = ½ Σ_j (y_j − a_j)²
    a = _clip(a, eps)
    if code == CROSS_ENTROPY:
        return -(y * math.log(a) + (1 - y) * math.log(1 - a))  # eq xent: −[y ln a + (1−y) ln(1−a)]
    return -y * math.log(a)  # eq loglik: C = −Σ_j y_j ln a_j


@inline
def output_error_term(code, a, y):
    """δ^L_j for a cost whose derivation cancels the activation's derivative: ``a_j − y_j``.

    Valid for ``cross_entropy`` with a sigmoid output and ``log_likelihood``
    with a softmax output (the pairings :class:`loopbp.Network` allows).
    """
    if code == CROSS_ENTROPY:
        return a - y  # eq xent': δ_j = a_j − y_j (sigmoid output)
    return a - y  # eq loglik': δ_j = a_j − y_j (softmax output)


@inline
def quadratic_cost_derivative(a, y):
    """∂C/∂a^L_j = a^L_j − y_j (I3 differentiated)."""
    return a - y
