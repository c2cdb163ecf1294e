"""The same network in NumPy matrix form: the oracle for tests, a peer in benchmarks.

This is the matrix-form derivation written with whole-array operations, so
that every product goes to BLAS.  It stacks a mini-batch as rows, so the
matrix form's column equations appear transposed:

* M1, M2: ``A^l = σ(A^{l-1} W^T + b)``
* M3:     ``Δ^L = (A^L − Y) ⊙ σ′``
* M4:     ``Δ^l = (Δ^{l+1} W^{l+1}) ⊙ σ′``
* M5, M6 averaged over the batch: ``∇W = Δ^T A^{l-1} / n``, ``∇b = mean(Δ)``

It shares no code with the kernels.
"""

from __future__ import annotations

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z), without overflow: exp is only ever taken of −|z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def feedforward(weights: list[np.ndarray], biases: list[np.ndarray],
                X: np.ndarray) -> list[np.ndarray]:
    """All activations ``[A^0 = X, A^1, …, A^L]`` for the rows of ``X`` (M1, M2)."""
    activations = [X]
    for w, b in zip(weights, biases):
        activations.append(sigmoid(activations[-1] @ w.T + b))
    return activations


def cost(weights: list[np.ndarray], biases: list[np.ndarray], X: np.ndarray,
         Y: np.ndarray) -> float:
    """Mean quadratic cost ``(1/n) Σ_x ½‖y_x − a^L_x‖²``."""
    a_L = feedforward(weights, biases, X)[-1]
    return float(0.5 * np.sum((Y - a_L) ** 2) / X.shape[0])


def backprop(weights: list[np.ndarray], biases: list[np.ndarray], X: np.ndarray,
             Y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Mean gradients over the rows (M3–M6, averaged)."""
    activations = feedforward(weights, biases, X)
    n = X.shape[0]
    a_L = activations[-1]
    delta = (a_L - Y) * a_L * (1 - a_L)  # M3
    nabla_w = [np.empty_like(w) for w in weights]
    nabla_b = [np.empty_like(b) for b in biases]
    for i in range(len(weights) - 1, -1, -1):
        nabla_w[i] = delta.T @ activations[i] / n  # M5, averaged
        nabla_b[i] = delta.sum(axis=0) / n  # M6, averaged
        if i:
            a = activations[i]
            delta = (delta @ weights[i]) * a * (1 - a)  # M4
    return nabla_w, nabla_b


def sgd_epoch(weights: list[np.ndarray], biases: list[np.ndarray], X: np.ndarray,
              Y: np.ndarray, order: np.ndarray, mini_batch_size: int, eta: float) -> None:
    """One epoch of mini-batch SGD in place, taking rows in ``order``."""
    for start in range(0, len(order), mini_batch_size):
        rows = order[start:start + mini_batch_size]
        nabla_w, nabla_b = backprop(weights, biases, X[rows], Y[rows])
        for w, b, nw, nb in zip(weights, biases, nabla_w, nabla_b):
            w -= eta * nw
            b -= eta * nb
