"""Initial weights and biases: a registry of schemes by name.

Every scheme draws from the network's generator in the same order, the biases
of every layer first and then the weights, so that ``normal`` gives exactly the
parameters of the derivations' reference network for a given seed.

=========  =============================================  ===================
name       weights w_jk of a layer with n_in inputs        biases b_j
=========  =============================================  ===================
normal     N(0, 1)                                         N(0, 1)
scaled     N(0, 1/n_in)                                    N(0, 1)
glorot     U(−r, r),  r = √(6 / (n_in + n_out))            0
he         N(0, 2/n_in)                                    0
=========  =============================================  ===================

``normal`` is the derivations' choice; ``scaled`` is the one Nielsen's
chapter 3 proposes to keep sigmoid neurons out of saturation; ``glorot``
(Glorot & Bengio 2010) keeps the variance of activations and gradients
balanced for tanh and sigmoid layers; ``he`` (He et al. 2015) does so for ReLU
layers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise

import numpy as np

Layer = tuple[int, int]


def _normal(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    return rng.standard_normal((n_out, n_in))


def _scaled(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    return rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)


def _glorot(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    r = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-r, r, (n_out, n_in))


def _he(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    return rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)


#: Name → (weight drawer, whether the biases are drawn from N(0, 1) or set to 0).
INITIALIZERS: dict[str, tuple[Callable[[np.random.Generator, int, int], np.ndarray], bool]] = {
    "normal": (_normal, True),
    "scaled": (_scaled, True),
    "glorot": (_glorot, False),
    "he": (_he, False),
}


def initial_parameters(name: str, sizes: Sequence[int], rng: np.random.Generator,
                       dtype: np.dtype) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Weights ``(n_out, n_in)`` and biases ``(n_out,)`` of every layer, by the scheme ``name``."""
    draw_weights, normal_biases = INITIALIZERS[name]
    if normal_biases:
        biases = [rng.standard_normal(n_out).astype(dtype) for n_out in sizes[1:]]
    else:
        biases = [np.zeros(n_out, dtype) for n_out in sizes[1:]]
    weights = [draw_weights(rng, n_in, n_out).astype(dtype) for n_in, n_out in pairwise(sizes)]
    return weights, biases
