"""Compile loopbp's kernels ahead of their first use, into numba's on-disk cache.

numba compiles a kernel the first time it runs and keeps the machine code on
disk (see :mod:`loopbp._jit`), so only a process that meets an empty cache
waits for the compiler: about 15 seconds before the first mini-batch.  Where that first
process should not pay, as in a container image, a cluster's shared software
or a CI cache, :func:`precompile` (or ``loopbp compile``) pays it once, ahead of time.

One compiled kernel serves every network of a dtype: the layer sizes, the
activations, the cost and the optimizer reach the kernels as values, not as
types.  What does change the compiled code is the dtype and whether the work
is large enough for the parallel kernels or small enough for their serial
twins (:func:`loopbp.network.kernels_for`), so each dtype is run both ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

import numpy as np

from . import _validation as check
from . import kernels
from ._jit import get_num_threads, set_num_threads
from .network import Network
from .optimizers import OPTIMIZERS

#: The dtypes :func:`precompile` compiles for when none are named.
DTYPES = ("float64", "float32")
#: A network whose batches of :data:`_SERIAL_ROWS` rows take the serial twins
#: and of :data:`_PARALLEL_ROWS` the parallel kernels, in training and in
#: feedforward alike (the tests check it against the thresholds).
_SIZES = [256, 256, 10]
_SERIAL_ROWS = 2
_PARALLEL_ROWS = 512


def precompile(dtypes: Sequence[str] = DTYPES) -> list[str]:
    """Compile, or load from numba's cache, every kernel loopbp runs for ``dtypes``.

    For each dtype, with the serial twins and with the parallel kernels: one
    epoch of :meth:`~loopbp.Network.sgd`, :meth:`~loopbp.Network.feedforward`,
    :meth:`~loopbp.Network.mean_cost` and :meth:`~loopbp.Network.backprop` on
    zeros; then the steps of a Dask worker and of the client's update
    (:mod:`loopbp.distributed`, which needs no cluster for it, but Dask
    installed).  Later processes with the same cache load the kernels instead
    of compiling them.  ``dtypes`` is a dtype or a sequence of them;
    ``ValueError`` for one that is not float64 or float32.

    Returns what was left out and why (the Dask steps, where Dask is not
    installed); an empty list when nothing was.
    """
    if isinstance(dtypes, str) or not isinstance(dtypes, Sequence):
        dtypes = [dtypes]  # type: ignore[list-item]
    names = [_dtype_name(dtype) for dtype in dtypes]
    try:
        from . import distributed  # here: importing it imports Dask (slow), or fails without
    except ImportError:
        distributed = None
    for name in dict.fromkeys(names):
        for rows in (_SERIAL_ROWS, _PARALLEL_ROWS):
            _run_network(name, rows)
        if distributed is not None:
            _run_distributed(distributed, name)
    return [] if distributed is not None else [
        "the Dask steps (loopbp.distributed): Dask is not installed"]


def _dtype_name(dtype: object) -> str:
    """``"float64"`` or ``"float32"`` for a dtype-like ``dtype``; ValueError otherwise."""
    try:
        if dtype is None:  # NumPy reads None as float64; here it names nothing
            raise ValueError
        return check.check_dtype(dtype).name
    except (TypeError, ValueError):
        raise ValueError(f"dtypes must name float64 or float32, got {dtype!r}") from None


def _run_network(dtype: str, rows: int) -> None:
    """Each compiled entry point of a :class:`~loopbp.Network`, on ``rows`` rows of zeros."""
    net = Network(_SIZES, seed=0, dtype=dtype)
    X = np.zeros((rows, _SIZES[0]), dtype)
    y = np.zeros(rows, np.int64)
    net.sgd(X, y, 1, rows, 1e-3, progress=False)
    net.feedforward(X)
    net.mean_cost(X, y)
    net.backprop(X, y)


def _run_distributed(distributed: ModuleType, dtype: str) -> None:
    """A Dask worker's gradient and local steps, and the client's update of the network
    (as ``distributed``'s trainer calls it), with both kernel sets."""
    net = Network(_SIZES, seed=0, dtype=dtype)
    threads = get_num_threads()  # the worker's warm-up sets the count; give it back after
    try:
        for local in (False, True):
            distributed._warm_up(_SIZES, net.f_codes, net.cost_code, dtype, 2, local)
    finally:
        set_num_threads(threads)
    c1, c2 = distributed._bias_corrections(0.9, 0.999, np.int64(1))
    hyper = (1e-3, 0.0, 0.0, 0.9, 0.999, 1e-8, float(c1), float(c2))
    for kernel_set in (kernels.SERIAL, kernels):
        for w, b in zip(net.weights, net.biases):
            g_w, g_b = np.zeros_like(w), np.zeros_like(b)
            kernel_set.update(w, b, g_w, g_b, OPTIMIZERS["sgd"], hyper, g_w, g_b, g_w, g_b)
