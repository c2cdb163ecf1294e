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
