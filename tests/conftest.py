"""Shared test helpers."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def random_data(rng: np.random.Generator, n: int, sizes: list[int],
                dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Inputs in [0, 1) and targets in [0, 1) for a network of ``sizes``."""
    X = rng.random((n, sizes[0])).astype(dtype)
    Y = rng.random((n, sizes[-1])).astype(dtype)
    return X, Y


def wrap_training_kernel(monkeypatch: pytest.MonkeyPatch, wrap) -> None:
    """Make ``sgd`` call ``wrap(real)`` instead of the compiled ``train_mini_batches``.

    ``real`` is the kernel ``sgd`` would have used (parallel or serial twin);
    ``wrap`` returns a function with the same arguments.
    """
    from types import SimpleNamespace

    from loopbp import training

    real_for = training.kernels_for
    monkeypatch.setattr(
        training, "kernels_for",
        lambda sizes, rows: SimpleNamespace(
            train_mini_batches=wrap(real_for(sizes, rows).train_mini_batches)))
