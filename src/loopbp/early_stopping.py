"""Early stopping: keep the best parameters seen on the validation data, stop when they age.

After every epoch the monitored quantity — the validation cost (lower is
better) or the validation accuracy (higher is better) — is compared with the
best so far.  An epoch *improves* when it beats the best by more than
``min_delta``; its parameters are then copied aside.  After ``patience``
epochs in a row without improvement training stops, and at the end of the run
the network gets the kept parameters back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _validation as check

MONITORS = ("cost", "accuracy")


@dataclass
class EarlyStopping:
    """The rule's settings and what it has seen so far."""

    patience: int
    monitor: str = "cost"
    min_delta: float = 0.0
    best: float | None = None  #: the best monitored value (in its own units)
    best_epoch: int | None = None  #: 1-based epoch that reached it
    bad_epochs: int = 0  #: epochs since then without improvement
    best_weights: list[np.ndarray] = field(default_factory=list)
    best_biases: list[np.ndarray] = field(default_factory=list)

    def improves(self, value: float) -> bool:
        """Whether ``value`` beats the best so far by more than ``min_delta``."""
        if self.best is None:
            return True
        if self.monitor == "accuracy":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def observe(self, epoch: int, value: float, weights: list[np.ndarray],
                biases: list[np.ndarray]) -> bool:
        """Record the epoch's value; return True when training should stop."""
        if math.isfinite(value) and self.improves(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            self.best_weights = [w.copy() for w in weights]
            self.best_biases = [b.copy() for b in biases]
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def restore(self, weights: list[np.ndarray], biases: list[np.ndarray]) -> None:
        """Copy the kept parameters back into ``weights`` and ``biases`` (in place)."""
        for dest, src in zip(weights + biases, self.best_weights + self.best_biases):
            dest[...] = src

    def to_dict(self) -> dict[str, Any]:
        """Settings and progress, JSON-ready (the kept parameters go in :meth:`arrays`)."""
        return {"patience": self.patience, "monitor": self.monitor, "min_delta": self.min_delta,
                "best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def arrays(self) -> dict[str, np.ndarray]:
        """The kept parameters, as checkpoint members ``best.w0, …, best.b0, …``."""
        arrays = {f"best.w{i}": w for i, w in enumerate(self.best_weights)}
        arrays.update({f"best.b{i}": b for i, b in enumerate(self.best_biases)})
        return arrays

    @classmethod
    def from_dict(cls, data: dict[str, Any], arrays: dict[str, np.ndarray],
                  weights: list[np.ndarray], biases: list[np.ndarray]) -> EarlyStopping:
        """Rebuild from :meth:`to_dict` and :meth:`arrays`, checking them against the network.

        Everything comes from a file, so every field is checked (``TypeError`` or
        ``ValueError`` naming it): the kept parameters go back into the network
        when training ends, so they must be finite like the network's own.
        """
        keys = {"patience", "monitor", "min_delta", "best", "best_epoch", "bad_epochs"}
        if not isinstance(data, dict) or set(data) != keys:
            raise TypeError(f"early_stopping must be a mapping with the keys {sorted(keys)}, "
                            f"got {data!r}")
        if data["monitor"] not in MONITORS:
            raise ValueError(f"early_stopping.monitor must be one of {MONITORS}, "
                             f"got {data['monitor']!r}")
        best, best_epoch = data["best"], data["best_epoch"]
        if (best is None) != (best_epoch is None):
            raise ValueError("early_stopping.best and best_epoch must both be set or both null")
        rule = cls(check.check_int(data["patience"], "early_stopping.patience", minimum=1),
                   data["monitor"],
                   check.check_non_negative_float(data["min_delta"], "early_stopping.min_delta"),
                   None if best is None else check.check_finite_float(
                       best, "early_stopping.best"),
                   None if best_epoch is None else check.check_int(
                       best_epoch, "early_stopping.best_epoch", minimum=1),
                   check.check_int(data["bad_epochs"], "early_stopping.bad_epochs", minimum=0))
        if rule.best is not None:
            for name, like, dest in (("w", weights, rule.best_weights),
                                     ("b", biases, rule.best_biases)):
                for i, p in enumerate(like):
                    key = f"best.{name}{i}"
                    kept = arrays.get(key)
                    if kept is None or kept.shape != p.shape or kept.dtype != p.dtype:
                        got = None if kept is None else (kept.shape, kept.dtype.name)
                        raise ValueError(f"{key} must be {p.shape} {p.dtype.name} to fit the "
                                         f"network, got {got}")
                    if not np.isfinite(kept).all():
                        raise ValueError(f"{key} (kept by early stopping) holds NaN or "
                                         "infinity; it must be finite")
                    dest.append(np.ascontiguousarray(kept))
        return rule
