"""``Network``: the public face of loopbp.

A ``Network`` owns its parameters and a random generator.  Its methods check
their arguments, convert them to C-contiguous arrays of the network's dtype,
allocate the buffers a pass needs, and hand arrays to the compiled kernels in
:mod:`loopbp.kernels`.  No arithmetic of the derivation happens here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
from numba.typed import List

from . import _validation as check
from . import files, kernels
from ._jit import parallel_guard

if TYPE_CHECKING:
    from .training import History

#: Rows fed forward at a time by :meth:`Network.feedforward` (bounds its buffers).
FEEDFORWARD_CHUNK = 1024
#: Floating-point operations per mini-batch (forward and backward) from which
#: the parallel kernels pay for their thread launches; below it the serial
#: twins run.  The choice depends on the work only, never on the thread count,
#: so results are bitwise the same for any number of threads.
PARALLEL_MIN_FLOPS = 20_000_000


def flops_per_batch(sizes: Sequence[int], rows: int, *, backward: bool = True) -> int:
    """Floating-point operations for ``rows`` examples: 2 per weight forward, 4 more backward."""
    per_weight = 6 if backward else 2
    return per_weight * rows * sum(n_in * n_out for n_in, n_out in pairwise(sizes))


def kernels_for(sizes: Sequence[int], rows: int, *, backward: bool = True):
    """The kernel set for ``rows`` examples at a time: :mod:`loopbp.kernels` or its serial twins."""
    work = flops_per_batch(sizes, rows, backward=backward)
    return kernels if work >= PARALLEL_MIN_FLOPS else kernels.SERIAL


def typed_list(arrays: Sequence[np.ndarray]) -> List:
    """A numba typed list of arrays (how kernels receive one array per layer)."""
    return List(arrays)


def workspace(sizes: Sequence[int], rows: int, dtype: np.dtype) -> tuple:
    """Buffers for one mini-batch of ``rows`` examples: ``(acts, Y, deltas, deltas_T, acts_T)``.

    ``acts[i]`` is ``(rows, sizes[i])`` (``acts[0]`` holds the inputs),
    ``deltas[i]`` is ``(rows, sizes[i+1])``, and the ``_T`` lists hold their
    transposes for the tiled weight gradient.
    """
    acts = [np.zeros((rows, s), dtype) for s in sizes]
    deltas = [np.zeros((rows, s), dtype) for s in sizes[1:]]
    deltas_T = [np.zeros((s, rows), dtype) for s in sizes[1:]]
    acts_T = [np.zeros((s, rows), dtype) for s in sizes[:-1]]
    return (typed_list(acts), np.zeros((rows, sizes[-1]), dtype), typed_list(deltas),
            typed_list(deltas_T), typed_list(acts_T))


class Network:
    """A fully connected feedforward network of sigmoid neurons with quadratic cost.

    Parameters
    ----------
    sizes : sequence of int
        Neurons per layer, input layer first, e.g. ``[784, 30, 10]``.  At least
        two layers, each of at least one neuron.
    seed : int or None
        Seeds the generator that draws the initial parameters and, later, the
        order of the training examples; the same seed gives the same network
        and the same training run.
    dtype : float64 or float32
        Precision of parameters and arithmetic.

    Attributes
    ----------
    sizes : list of int
    weights : list of ndarray
        ``weights[i]`` has shape ``(sizes[i+1], sizes[i])``; entry ``[j, k]``
        is w_jk, the weight from neuron k of layer i to neuron j of layer i+1.
    biases : list of ndarray
        ``biases[i]`` has shape ``(sizes[i+1],)``.
    dtype : numpy.dtype

    Notes
    -----
    Weights and biases start as independent draws from N(0, 1), as in both
    derivations' reference networks.  Every layer uses the sigmoid σ and the
    network minimizes the mean quadratic cost ``C = (1/n) Σ_x ½‖y_x − a^L_x‖²``
    (index-form equation I3 averaged over examples).
    """

    def __init__(self, sizes: Sequence[int], *, seed: int | None = None,
                 dtype: Any = np.float64) -> None:
        self.sizes = check.check_sizes(sizes)
        self.dtype = check.check_dtype(dtype)
        if seed is not None:
            seed = check.check_int(seed, "seed", minimum=0)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.biases = [self.rng.standard_normal(n_out).astype(self.dtype)
                       for n_out in self.sizes[1:]]
        self.weights = [self.rng.standard_normal((n_out, n_in)).astype(self.dtype)
                        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:])]

    def __repr__(self) -> str:
        return f"Network(sizes={self.sizes}, dtype={self.dtype.name})"

    # --- parameters handed to kernels ------------------------------------------

    def parameters(self) -> tuple[List, List]:
        """Weights and biases as typed lists for the kernels, after checking them.

        Users may replace ``weights[i]``/``biases[i]``; a replacement of the
        right shape is converted to the network's dtype and layout, anything
        else (another shape, NaN or infinity) is refused before it can reach a
        kernel.
        """
        for name, params, shapes in (
            ("weights", self.weights,
             [(o, i) for i, o in zip(self.sizes[:-1], self.sizes[1:])]),
            ("biases", self.biases, [(o,) for o in self.sizes[1:]]),
        ):
            if not isinstance(params, list) or len(params) != len(shapes):
                raise ValueError(f"network.{name} must be a list of {len(shapes)} arrays")
            for i, (p, shape) in enumerate(zip(params, shapes)):
                p = np.asarray(p)
                if p.shape != shape:
                    raise ValueError(
                        f"network.{name}[{i}] must have shape {shape}, got {p.shape}")
                if p.dtype != self.dtype or not p.flags.c_contiguous or not p.flags.writeable:
                    params[i] = p = np.array(p, dtype=self.dtype, order="C")
                if not np.isfinite(p).all():
                    raise ValueError(f"network.{name}[{i}] contains NaN or infinity")
        return typed_list(self.weights), typed_list(self.biases)

    # --- the derivation ---------------------------------------------------------

    def feedforward(self, X: Any) -> np.ndarray:
        """Output activations a^L for each row of ``X`` (equations I1, I2 / M1, M2).

        Parameters
        ----------
        X : array_like, shape (n, sizes[0]) or (sizes[0],)
            One example per row; a 1-D array is one example.

        Returns
        -------
        ndarray, shape (n, sizes[-1]) or (sizes[-1],)
        """
        inputs = check.as_inputs(X, "X", self.sizes[0], self.dtype, allow_1d=True)
        single = np.ndim(X) == 1  # safe now: X is known to be rectangular
        weights, biases = self.parameters()
        out = np.empty((inputs.shape[0], self.sizes[-1]), self.dtype)
        chunk = min(inputs.shape[0], FEEDFORWARD_CHUNK)
        acts = typed_list([np.empty((chunk, s), self.dtype) for s in self.sizes[:-1]])
        with parallel_guard():
            kernels_for(self.sizes, chunk, backward=False).feedforward(
                weights, biases, inputs, out, acts)
        return out[0] if single else out

    def _prepare(self, X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
        X = check.as_inputs(X, "X", self.sizes[0], self.dtype)
        Y = check.as_targets(Y, "Y", X.shape[0], self.sizes[-1], self.dtype)
        return X, Y

    def backprop(self, X: Any, Y: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Gradient of the mean cost over the rows of ``X``.

        Forward pass (I1, I2), output error (I3, I4 / M3), hidden errors
        (I5, I4 / M4), gradients (I6, I7 / M5, M6) averaged over the rows.

        Parameters
        ----------
        X : array_like, shape (n, sizes[0])
        Y : array_like, shape (n, sizes[-1]), or integer labels of shape (n,)

        Returns
        -------
        nabla_w, nabla_b : lists of ndarray
            Shaped like ``weights`` and ``biases``: ∂C/∂w and ∂C/∂b for
            ``C = (1/n) Σ_x ½‖y_x − a^L_x‖²``.
        """
        X, Y = self._prepare(X, Y)
        nabla_w, nabla_b, _ = self._gradient(X, Y)
        return nabla_w, nabla_b

    def cost(self, X: Any, Y: Any) -> float:
        """Mean quadratic cost ``(1/n) Σ_x ½‖y_x − a^L_x‖²`` over the rows of ``X``."""
        X, Y = self._prepare(X, Y)
        return self._gradient(X, Y)[2]

    def _gradient(self, X: np.ndarray, Y: np.ndarray) -> tuple[list, list, float]:
        weights, biases = self.parameters()
        weights_T = typed_list([w.T.copy() for w in self.weights])
        nabla_w = [np.empty_like(w) for w in self.weights]
        nabla_b = [np.empty_like(b) for b in self.biases]
        ws = workspace(self.sizes, X.shape[0], self.dtype)
        ws[0][0][:] = X
        ws[1][:] = Y
        with parallel_guard():
            cost = kernels_for(self.sizes, X.shape[0]).backprop(
                weights, biases, weights_T, typed_list(nabla_w), typed_list(nabla_b), ws)
        return nabla_w, nabla_b, float(cost)

    def evaluate(self, X: Any, y: Any) -> int:
        """Number of rows of ``X`` whose largest output is at index ``y`` (the label)."""
        X = check.as_inputs(X, "X", self.sizes[0], self.dtype)
        labels = check.as_labels(y, "y", X.shape[0], self.sizes[-1])
        return int(np.count_nonzero(np.argmax(self.feedforward(X), axis=1) == labels))

    def sgd(self, X: Any, Y: Any, epochs: int, mini_batch_size: int, eta: float,
            **options: Any) -> History:
        """Train with mini-batch stochastic gradient descent.

        See :func:`loopbp.training.sgd` for the parameters; this is
        ``sgd(self, X, Y, epochs, mini_batch_size, eta, ...)``.
        """
        from .training import sgd

        return sgd(self, X, Y, epochs, mini_batch_size, eta, **options)

    # --- files ------------------------------------------------------------------

    def _file_contents(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self.parameters()  # refuse malformed parameters before writing them
        meta = {"kind": "network", "sizes": self.sizes, "dtype": self.dtype.name,
                "state": {"seed": self.seed, "rng": self.rng.bit_generator.state}}
        arrays = {f"w{i}": w for i, w in enumerate(self.weights)}
        arrays.update({f"b{i}": b for i, b in enumerate(self.biases)})
        return meta, arrays

    def save(self, path: str | os.PathLike) -> None:
        """Write the network to ``path`` (format: :mod:`loopbp.files`), atomically."""
        meta, arrays = self._file_contents()
        files.write_atomic(path, meta, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Network:
        """Read a network written by :meth:`save`.

        Raises :class:`loopbp.files.NetworkFileError` (a ``ValueError``) for a
        truncated, corrupted, foreign or newer-version file.
        """
        meta, arrays = files.read(path)
        return cls._from_file_contents(meta, arrays, path)

    @classmethod
    def _from_file_contents(cls, meta: dict, arrays: dict, path: Any) -> Network:
        where = repr(str(path))
        try:
            sizes = check.check_sizes(meta["sizes"])
            dtype = check.check_dtype(meta["dtype"])
            state = meta["state"]
        except (KeyError, TypeError, ValueError) as err:
            raise files.NetworkFileError(f"{where} has damaged metadata: {err}") from err
        net = cls.__new__(cls)
        net.sizes, net.dtype = sizes, dtype
        net.seed = state.get("seed") if isinstance(state, dict) else None
        net.rng = np.random.default_rng()
        try:
            net.rng.bit_generator.state = state["rng"]
        except (KeyError, TypeError, ValueError) as err:
            raise files.NetworkFileError(f"{where} has a damaged generator state") from err
        net.weights, net.biases = [], []
        for i, (n_in, n_out) in enumerate(pairwise(sizes)):
            for name, shape, dest in ((f"w{i}", (n_out, n_in), net.weights),
                                      (f"b{i}", (n_out,), net.biases)):
                array = arrays.get(name)
                if array is None or array.shape != shape or array.dtype != dtype:
                    got = None if array is None else (array.shape, str(array.dtype))
                    raise files.NetworkFileError(
                        f"{where}: {name} must be {shape} {dtype.name}, got {got}")
                if not np.isfinite(array).all():
                    raise files.NetworkFileError(f"{where}: {name} holds NaN or infinity")
                dest.append(np.ascontiguousarray(array))
        return net
