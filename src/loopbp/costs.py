"""The quadratic cost C and its derivative ∂C/∂a^L, as compiled scalar formulas.

For one example with target ``y`` and output activations ``a = a^L`` the cost is
index-form equation I3, ``C = ½ Σ_j (y_j − a_j)²``; its derivative with respect
to one output is ``∂C/∂a_j = a_j − y_j``.  Over a mini-batch of ``n`` examples
loopbp minimizes the mean, ``C = (1/n) Σ_x C_x``.
"""

from __future__ import annotations

from ._jit import inline


@inline
def quadratic_cost_term(a, y):
    """One output's share of I3: ½ (y_j − a_j)²."""
    diff = y - a
    return 0.5 * diff * diff


@inline
def quadratic_cost_derivative(a, y):
    """∂C/∂a^L_j = a^L_j − y_j (I3 differentiated)."""
    return a - y
