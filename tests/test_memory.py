"""No memory growth over many calls: nothing per call is kept alive or leaked."""

from __future__ import annotations

import gc
import mmap

import numpy as np
import psutil
import pytest

import loopbp

CALLS = 1000
#: Allowed growth of the resident set over CALLS calls after warm-up.  One leaked
#: buffer per call of the sizes below would add at least 1000 × 8 KiB ≈ 8 MiB.
TOLERANCE = 4 * 2**20


def _rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def _growth(call, warm_up: int = 100) -> int:
    for _ in range(warm_up):
        call()
    before = _rss()
    for _ in range(CALLS):
        call()
    return _rss() - before


@pytest.mark.slow
def test_repeated_sgd_does_not_grow_memory():
    rng = np.random.default_rng(0)
    X = rng.random((32, 32))  # one call's buffers: > 8 KiB
    y = rng.integers(0, 8, 32)
    net = loopbp.Network([32, 16, 8], seed=0)
    growth = _growth(lambda: net.sgd(X, y, 1, 8, 0.5, progress=False))
    assert growth < TOLERANCE, f"RSS grew by {growth / 2**20:.1f} MiB over {CALLS} sgd calls"


def test_repeated_feedforward_does_not_grow_memory():
    rng = np.random.default_rng(0)
    X = rng.random((64, 32))
    net = loopbp.Network([32, 16, 8], seed=0)
    growth = _growth(lambda: net.feedforward(X))
    assert growth < TOLERANCE, f"RSS grew by {growth / 2**20:.1f} MiB over {CALLS} calls"


def test_the_measurement_sees_a_leak():
    """The check can fail: keeping 64 KiB alive per call is caught.

    The leak is an anonymous memory map written page by page, so it always
    adds resident memory: free memory that earlier tests left in the
    allocator's pools cannot hide it.
    """
    rng = np.random.default_rng(0)
    X = rng.random((64, 32))
    net = loopbp.Network([32, 16, 8], seed=0)
    kept = []

    def leaky_call() -> None:
        block = mmap.mmap(-1, 16 * mmap.PAGESIZE)
        for offset in range(0, len(block), mmap.PAGESIZE):
            block[offset] = 1
        kept.append((net.feedforward(X), block))

    growth = _growth(leaky_call, warm_up=10)
    assert growth >= TOLERANCE
