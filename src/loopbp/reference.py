"""The same network in NumPy matrix form: the oracle for tests, a peer in benchmarks.

This is the matrix-form derivation written with whole-array operations, so
that every product goes to BLAS.  It stacks a mini-batch as rows, so the
matrix form's column equations appear transposed (``f`` a layer's activation):

* M1, M2: ``Z^l = A^{l-1} W^T + b``, ``A^l = f(Z^l)``
* M3:     ``Δ^L = ∂C/∂Z^L`` (``(A^L − Y) ⊙ f′(Z^L)`` for the quadratic cost)
* M4:     ``Δ^l = (Δ^{l+1} W^{l+1}) ⊙ f′(Z^l)``
* M5, M6 averaged over the batch: ``∇W = Δ^T A^{l-1} / n``, ``∇b = mean(Δ)``

Activations: sigmoid, tanh, relu, leaky_relu (slope 0.01), identity, and the
softmax (output layer only).  Costs (each the mean over the rows, logarithms
of ``a`` clipped to ``[ε, 1 − ε]``, ε the dtype's machine epsilon):

* quadratic ``½ Σ_j (y_j − a_j)²`` with any output, the softmax through its
  full Jacobian ``∂a_i/∂z_j = a_i (1[i=j] − a_j)``;
* cross_entropy ``−Σ_j [y_j ln a_j + (1 − y_j) ln(1 − a_j)]`` with a sigmoid
  output, ``Δ^L = A^L − Y``;
* log_likelihood ``−Σ_j y_j ln a_j`` with a softmax output, ``Δ^L = A^L − Y``
  (targets summing to 1 per row).

L2 regularization with λ adds ``(λ/2n) Σ w²`` to the cost of a training set of
``n`` rows and ``(λ/n) w`` to the weights' gradient (biases not decayed).
Optimizers: :class:`Optimizer`.  The defaults everywhere give the derivations'
network: sigmoid neurons, quadratic cost, plain SGD, no L2.

It shares no code with the kernels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Slope of the leaky ReLU for z < 0.
LEAKY_SLOPE = 0.01
#: The output each cost needs (absent: any output).
COST_OUTPUT = {"cross_entropy": "sigmoid", "log_likelihood": "softmax"}


def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z), without overflow: exp is only ever taken of −|z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise ``a_j = e^{z_j} / Σ_i e^{z_i}``, the row maximum subtracted first."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def activate(name: str, z: np.ndarray) -> np.ndarray:
    """``a = f(z)`` for the activation ``name``."""
    if name == "sigmoid":
        return sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, LEAKY_SLOPE * z)
    if name == "identity":
        return z.copy()
    if name == "softmax":
        return softmax(z)
    raise ValueError(f"unknown activation {name!r}")


def derivative(name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``f′(z)`` elementwise (``a = f(z)``): σ′ = a(1 − a), tanh′ = 1 − a², ReLU′ = 1[z > 0].

    The leaky ReLU's is 1 for z > 0 and 0.01 otherwise; the identity's is 1.
    The softmax has no elementwise derivative (see :func:`output_error`).
    """
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a * a
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "leaky_relu":
        return np.where(z > 0, 1, LEAKY_SLOPE).astype(z.dtype)
    if name == "identity":
        return np.ones_like(z)
    raise ValueError(f"activation {name!r} has no elementwise derivative")


def _times_derivative(name: str, z: np.ndarray, a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``g ⊙ f′(z)``; for the sigmoid ``g a (1 − a)``, in the derivations' order of operations."""
    if name == "sigmoid":
        return g * a * (1 - a)
    return g * derivative(name, z, a)


def _names(activations: Sequence[str] | None, n_layers: int) -> list[str]:
    """The activation of each layer after the input (None: all sigmoid)."""
    names = ["sigmoid"] * n_layers if activations is None else list(activations)
    if len(names) != n_layers:
        raise ValueError(f"need {n_layers} activations, got {len(names)}")
    return names


def forward(weights: list[np.ndarray], biases: list[np.ndarray], X: np.ndarray,
            activations: Sequence[str] | None = None,
            ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Weighted inputs ``[Z^1, …, Z^L]`` and activations ``[A^0 = X, …, A^L]`` (M1, M2)."""
    names = _names(activations, len(weights))
    zs, acts = [], [X]
    for w, b, name in zip(weights, biases, names):
        zs.append(acts[-1] @ w.T + b)
        acts.append(activate(name, zs[-1]))
    return zs, acts


def feedforward(weights: list[np.ndarray], biases: list[np.ndarray], X: np.ndarray,
                activations: Sequence[str] | None = None) -> list[np.ndarray]:
    """All activations ``[A^0 = X, A^1, …, A^L]`` for the rows of ``X`` (M1, M2)."""
    if activations is None:  # the derivations' network, without keeping Z
        acts = [X]
        for w, b in zip(weights, biases):
            acts.append(sigmoid(acts[-1] @ w.T + b))
        return acts
    return forward(weights, biases, X, activations)[1]


def _check_pairing(output: str, cost: str) -> None:
    if cost not in ("quadratic", *COST_OUTPUT):
        raise ValueError(f"unknown cost {cost!r}")
    needed = COST_OUTPUT.get(cost)
    if needed is not None and output != needed:
        raise ValueError(f"cost {cost!r} needs a {needed} output, got {output!r}")


def batch_cost(cost: str, a: np.ndarray, y: np.ndarray) -> float:
    """Mean cost ``C = (1/n) Σ_x C_x`` of the outputs ``a`` (rows) for the targets ``y``.

    ``C_x`` is ``½‖y − a‖²``, ``−Σ_j [y_j ln a_j + (1 − y_j) ln(1 − a_j)]`` or
    ``−Σ_j y_j ln a_j``, with ``a`` clipped to ``[ε, 1 − ε]`` inside the logarithms.
    """
    n = a.shape[0]
    if cost == "quadratic":
        return float(0.5 * np.sum((y - a) ** 2) / n)
    eps = np.finfo(a.dtype).eps
    a = np.clip(a, eps, 1 - eps)
    if cost == "cross_entropy":
        return float(-np.sum(y * np.log(a) + (1 - y) * np.log(1 - a)) / n)
    if cost == "log_likelihood":
        return float(-np.sum(y * np.log(a)) / n)
    raise ValueError(f"unknown cost {cost!r}")


def output_error(output: str, cost: str, z: np.ndarray, a: np.ndarray,
                 y: np.ndarray) -> np.ndarray:
    """``Δ^L = ∂C_x/∂Z^L`` row by row (M3) for the pairing of ``output`` and ``cost``.

    Quadratic: ``∂C/∂a = a − y`` times ``f′(z)``, or for a softmax output times
    its Jacobian, ``δ_j = Σ_i (a_i − y_i) a_i (1[i=j] − a_j)``.  Cross-entropy
    with a sigmoid and log-likelihood with a softmax: ``δ = a − y``.
    """
    _check_pairing(output, cost)
    if cost != "quadratic":
        return a - y
    dC_da = a - y
    if output != "softmax":
        return _times_derivative(output, z, a, dC_da)
    eye = np.eye(a.shape[1], dtype=a.dtype)
    jacobian = a[:, :, None] * (eye[None, :, :] - a[:, None, :])  # [x, i, j] = ∂a_i/∂z_j
    return np.einsum("xi,xij->xj", dC_da, jacobian)


def _l2_term(weights: list[np.ndarray], l2: float, n: int) -> float:
    """``(λ/2n) Σ w²`` over every weight."""
    return 0.5 * l2 / n * sum(float(np.sum(w * w)) for w in weights)


def cost(weights: list[np.ndarray], biases: list[np.ndarray], X: np.ndarray, Y: np.ndarray,
         *, activations: Sequence[str] | None = None, cost: str = "quadratic",
         l2: float = 0.0) -> float:
    """Mean cost ``(1/n) Σ_x C_x`` over the rows of ``X`` (+ ``(λ/2n) Σ w²`` when l2 = λ > 0).

    The default is the derivations' quadratic cost ``(1/n) Σ_x ½‖y_x − a^L_x‖²``.
    """
    names = _names(activations, len(weights))
    _check_pairing(names[-1], cost)
    a_L = feedforward(weights, biases, X, activations)[-1]
    return batch_cost(cost, a_L, Y) + (_l2_term(weights, l2, X.shape[0]) if l2 else 0.0)


def backprop(weights: list[np.ndarray], biases: list[np.ndarray], X: np.ndarray,
             Y: np.ndarray, *, activations: Sequence[str] | None = None,
             cost: str = "quadratic", l2: float = 0.0,
             ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Mean gradients over the rows (M3–M6, averaged), the gradient of :func:`cost`.

    With ``l2 = λ > 0`` the weights' gradient gains ``(λ/n) w``, n = rows of ``X``.
    """
    names = _names(activations, len(weights))
    zs, acts = forward(weights, biases, X, names)
    n = X.shape[0]
    delta = output_error(names[-1], cost, zs[-1], acts[-1], Y)  # M3
    nabla_w = [np.empty_like(w) for w in weights]
    nabla_b = [np.empty_like(b) for b in biases]
    for i in range(len(weights) - 1, -1, -1):
        nabla_w[i] = delta.T @ acts[i] / n  # M5, averaged
        if l2:
            nabla_w[i] += l2 / n * weights[i]  # L2: (λ/n) w
        nabla_b[i] = delta.sum(axis=0) / n  # M6, averaged
        if i:
            delta = _times_derivative(names[i - 1], zs[i - 1], acts[i], delta @ weights[i])  # M4
    return nabla_w, nabla_b


class Optimizer:
    """An update rule and the state it keeps across calls (velocities, moments, step t).

    With ``g`` a parameter's gradient (L2 term included) and η the learning rate:

    * ``sgd``:      ``w ← w − η g``
    * ``momentum``: ``v ← μ v − η g;  w ← w + v``
    * ``nesterov``: ``v ← μ v − η g;  w ← w + μ v − η g``
    * ``adam`` (Kingma & Ba, Algorithm 1): ``t ← t + 1;  m ← β1 m + (1 − β1) g;
      v ← β2 v + (1 − β2) g²;  m̂ = m / (1 − β1^t);  v̂ = v / (1 − β2^t);
      w ← w − η m̂ / (√v̂ + ε)``
    """

    def __init__(self, name: str = "sgd", *, momentum: float = 0.9,
                 betas: tuple[float, float] = (0.9, 0.999), epsilon: float = 1e-8) -> None:
        if name not in ("sgd", "momentum", "nesterov", "adam"):
            raise ValueError(f"unknown optimizer {name!r}")
        self.name, self.mu, self.betas, self.epsilon = name, momentum, betas, epsilon
        self.t = 0
        self.v: list[np.ndarray] = []  # velocities, or Adam's second moments
        self.m: list[np.ndarray] = []  # Adam's first moments

    def step(self, params: list[np.ndarray], grads: list[np.ndarray], eta: float) -> None:
        """Update every parameter in place (always pass the parameters in the same order)."""
        self.t += 1
        if self.name == "sgd":
            for p, g in zip(params, grads):
                p -= eta * g
            return
        if not self.v:
            self.v = [np.zeros_like(p) for p in params]
            self.m = [np.zeros_like(p) for p in params] if self.name == "adam" else []
        if self.name in ("momentum", "nesterov"):
            for p, g, v in zip(params, grads, self.v):
                v[...] = self.mu * v - eta * g
                p += v if self.name == "momentum" else self.mu * v - eta * g
            return
        beta1, beta2 = self.betas
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m[...] = beta1 * m + (1 - beta1) * g
            v[...] = beta2 * v + (1 - beta2) * g * g
            m_hat = m / (1 - beta1 ** self.t)
            v_hat = v / (1 - beta2 ** self.t)
            p -= eta * m_hat / (np.sqrt(v_hat) + self.epsilon)


def sgd_epoch(weights: list[np.ndarray], biases: list[np.ndarray], X: np.ndarray,
              Y: np.ndarray, order: np.ndarray, mini_batch_size: int, eta: float, *,
              activations: Sequence[str] | None = None, cost: str = "quadratic",
              optimizer: str | Optimizer = "sgd", l2: float = 0.0) -> None:
    """One epoch of mini-batch gradient descent in place, taking rows in ``order``.

    Each mini-batch's mean gradient (:func:`backprop`) plus the L2 term
    ``(λ/n) w``, n = rows of ``X`` (the training set), goes to ``optimizer``;
    pass an :class:`Optimizer` instance to keep its state from one epoch to the next.
    """
    if isinstance(optimizer, str):
        optimizer = Optimizer(optimizer)
    decay = l2 / X.shape[0]
    for start in range(0, len(order), mini_batch_size):
        rows = order[start:start + mini_batch_size]
        nabla_w, nabla_b = backprop(weights, biases, X[rows], Y[rows], activations=activations,
                                    cost=cost)
        if decay:
            nabla_w = [nw + decay * w for w, nw in zip(weights, nabla_w)]  # L2: + (λ/n) w
        optimizer.step([*weights, *biases], [*nabla_w, *nabla_b], eta)
