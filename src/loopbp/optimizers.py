"""The optimizers: names, codes, hyperparameters and the state each one keeps.

The update rules themselves are compiled loops in :mod:`loopbp.kernels`
(:func:`~loopbp.kernels.update`); this module is the registry the API layer
validates against, and the bookkeeping of their state between calls.  With
``g = ∂C/∂w`` the gradient of the mean cost (L2 term included):

* ``sgd``: w ← w − η g (no state);
* ``momentum``: v ← μ v − η g, then w ← w + v (state: the velocity v);
* ``nesterov``: v ← μ v − η g, then w ← w + μ v − η g (state: v);
* ``adam``: m ← β1 m + (1 − β1) g and v ← β2 v + (1 − β2) g², then
  w ← w − η m̂ / (√v̂ + ε) with m̂ = m / (1 − β1^t) and v̂ = v / (1 − β2^t)
  (state: the moments m, v and the step t).

Momentum is the classical heavy ball (Polyak; Sutskever et al. 2013); the
Nesterov form is the one of Sutskever et al. that evaluates the gradient at
the current parameters (as Keras and scikit-learn do); Adam is Algorithm 1 of
Kingma & Ba (2015).  The step count ``t`` is kept for every optimizer (it is
the number of updates made), though only Adam uses it.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _validation as check

SGD, MOMENTUM, NESTEROV, ADAM = range(4)

#: Name → code.
OPTIMIZERS: dict[str, int] = {"sgd": SGD, "momentum": MOMENTUM, "nesterov": NESTEROV,
                              "adam": ADAM}
#: The per-parameter arrays each optimizer keeps (``v``: velocity or second
#: moment, ``m``: first moment).
STATE_ARRAYS: dict[str, tuple[str, ...]] = {
    "sgd": (), "momentum": ("v",), "nesterov": ("v",), "adam": ("m", "v"),
}


@dataclass
class Optimizer:
    """An optimizer's name and hyperparameters, validated.

    Parameters
    ----------
    name : {"sgd", "momentum", "nesterov", "adam"}
    momentum : float
        μ in [0, 1) for ``momentum`` and ``nesterov``.
    betas : (float, float)
        Adam's β1, β2, each in [0, 1).
    epsilon : float
        Adam's ε > 0.
    """

    name: str = "sgd"
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    epsilon: float = 1e-8

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or self.name not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}, got {self.name!r}")
        self.momentum = check.check_unit_interval(self.momentum, "momentum")
        # any ordered pair (a tuple, a list, an array); a set or mapping has no order
        if (isinstance(self.betas, str | bytes | Set | Mapping)
                or not hasattr(self.betas, "__len__") or len(self.betas) != 2):
            raise TypeError(f"betas must be a pair (beta1, beta2), got {self.betas!r}")
        beta1, beta2 = self.betas
        self.betas = (check.check_unit_interval(beta1, "betas[0]"),
                      check.check_unit_interval(beta2, "betas[1]"))
        self.epsilon = check.check_positive_float(self.epsilon, "epsilon")

    @property
    def code(self) -> int:
        """The code the update kernel branches on."""
        return OPTIMIZERS[self.name]

    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters that matter to this optimizer, JSON-ready."""
        if self.name in ("momentum", "nesterov"):
            return {"momentum": self.momentum}
        if self.name == "adam":
            return {"betas": list(self.betas), "epsilon": self.epsilon}
        return {}


@dataclass
class OptimizerState:
    """An optimizer's name, hyperparameters and state, as training and checkpoints keep them.

    ``arrays`` maps ``"v0", "v1", …`` (weights of layer i) and ``"vb0", …``
    (biases), and likewise ``m``, to the per-parameter state; ``step`` counts
    the updates made so far (Adam's t).
    """

    name: str = "sgd"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    step: int = 0


def initial_state(optimizer: Optimizer, eta: float, weights: list[np.ndarray],
                  biases: list[np.ndarray]) -> OptimizerState:
    """Fresh state for ``optimizer``: zero velocities and moments, step 0."""
    arrays = {}
    for kind in STATE_ARRAYS[optimizer.name]:
        for i, (w, b) in enumerate(zip(weights, biases)):
            arrays[f"{kind}{i}"] = np.zeros_like(w)
            arrays[f"{kind}b{i}"] = np.zeros_like(b)
    return OptimizerState(optimizer.name, dict(optimizer.hyperparameters(), eta=eta), arrays, 0)


def check_state(state: OptimizerState, weights: list[np.ndarray]) -> None:
    """Raise ``ValueError`` unless ``state``'s arrays fit a network with these ``weights``."""
    expected = set()
    for kind in STATE_ARRAYS[state.name]:
        for i, w in enumerate(weights):
            for key, shape in ((f"{kind}{i}", w.shape), (f"{kind}b{i}", w.shape[:1])):
                expected.add(key)
                array = state.arrays.get(key)
                if array is None or array.shape != shape or array.dtype != w.dtype:
                    got = None if array is None else (array.shape, array.dtype.name)
                    raise ValueError(f"optimizer state {key} must be {shape} "
                                     f"{w.dtype.name}, got {got}")
                if not np.isfinite(array).all():
                    raise ValueError(f"optimizer state {key} contains NaN or infinity")
    extra = set(state.arrays) - expected
    if extra:
        raise ValueError(f"optimizer state has unexpected arrays {sorted(extra)}")
    if isinstance(state.step, bool) or not isinstance(state.step, numbers.Integral) \
            or state.step < 0:
        raise ValueError(f"optimizer step count must be an integer >= 0, got {state.step!r}")

