"""The activation σ and its derivative σ′, as compiled scalar formulas.

loopbp's networks use the logistic sigmoid in every layer, as both derivations
do.  Two details matter for the kernels:

* σ is evaluated in a form that never overflows: for ``z < 0`` the textbook
  ``1 / (1 + exp(-z))`` would compute ``exp(+|z|)``, so that branch is
  rewritten as ``exp(z) / (1 + exp(z))``.  Both branches agree where they meet.
* σ′ is written in terms of the activation ``a = σ(z)`` — equation I2′ becomes
  ``σ′(z) = a (1 − a)`` — so the backward pass needs the stored activations
  only, never ``z`` itself.
"""

from __future__ import annotations

import math

from ._jit import inline


@inline
def sigmoid(z):
    """σ(z) = 1 / (1 + e^(−z)), evaluated without overflow for any finite z."""
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


@inline
def sigmoid_prime(a):
    """σ′(z) expressed through a = σ(z): σ′(z) = σ(z)(1 − σ(z)) = a (1 − a)."""
    return a * (1 - a)
