"""``Network``: the public face of loopbp.

A ``Network`` owns its parameters and a random generator.  Its methods check
their arguments, convert them to C-contiguous arrays of the network's dtype,
allocate the buffers a pass needs, and hand arrays to the compiled kernels in
:mod:`loopbp.kernels`.  No arithmetic of the derivation happens here.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
from numba.typed import List

from . import _validation as check
from . import files, kernels
from ._jit import parallel_guard
from .activations import ACTIVATIONS, HIDDEN
from .costs import COSTS, REQUIRED_OUTPUT
from .init import INITIALIZERS, initial_parameters

if TYPE_CHECKING:
    from .training import History

#: Fewest rows fed forward at a time by :meth:`Network.feedforward` (see
#: :func:`feedforward_chunk`).
FEEDFORWARD_CHUNK = 1024
#: Most entries of one hidden layer's buffer in :meth:`Network.feedforward`.
FEEDFORWARD_BUFFER = 2 ** 21
#: Floating-point operations per mini-batch (forward and backward) from which
#: the parallel kernels pay for their thread launches; below it the serial
#: twins run.  The choice depends on the work only, never on the thread count,
#: so results are bitwise the same for any number of threads.
PARALLEL_MIN_FLOPS = 20_000_000


def flops_per_batch(sizes: Sequence[int], rows: int, *, backward: bool = True) -> int:
    """Floating-point operations for ``rows`` examples: 2 per weight forward, 4 more backward."""
    per_weight = 6 if backward else 2
    return per_weight * rows * sum(n_in * n_out for n_in, n_out in pairwise(sizes))


def feedforward_chunk(sizes: Sequence[int], n: int) -> int:
    """Rows fed forward at a time for ``n`` rows of input.

    Enough rows for the parallel kernels to pay (:data:`PARALLEL_MIN_FLOPS`):
    a narrow network fed in small chunks would run serially, on one core,
    however large its input.  Never fewer than :data:`FEEDFORWARD_CHUNK` rows
    (unless ``n`` is), and above that no more than keep each hidden layer's
    buffer within :data:`FEEDFORWARD_BUFFER` entries.
    """
    per_row = flops_per_batch(sizes, 1, backward=False)
    rows = max(FEEDFORWARD_CHUNK, -(-PARALLEL_MIN_FLOPS // per_row))
    widest = max(sizes[1:-1], default=1)
    rows = min(rows, max(FEEDFORWARD_CHUNK, FEEDFORWARD_BUFFER // widest))
    return min(n, rows)


def kernels_for(sizes: Sequence[int], rows: int, *, backward: bool = True):
    """The kernel set for ``rows`` examples at a time: :mod:`loopbp.kernels` or its serial twins."""
    work = flops_per_batch(sizes, rows, backward=backward)
    return kernels if work >= PARALLEL_MIN_FLOPS else kernels.SERIAL


def typed_list(arrays: Sequence[np.ndarray]) -> List:
    """A numba typed list of arrays (how kernels receive one array per layer)."""
    return List(arrays)


#: For each network, the typed lists last made for it by :func:`reused_list`, by name,
#: with the arrays they hold.  Weakly keyed: the entry goes with the network, and it is
#: never pickled or copied with it.
_LISTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


#: For each network, its sizes, activations, cost, init and dtype as they last passed
#: :meth:`Network._check_model_attributes` (weakly keyed, as :data:`_LISTS`).
_CHECKED_MODEL: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

#: For each network, the scratch buffers its last call of each kind (``"sgd"``,
#: ``"feedforward"``, ``"backprop"``) gave back, with the shapes they were made for.
_SPARE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

#: Scratch larger than this is freed when its call returns rather than kept for the
#: next one: what reuse saves (building typed lists) only shows on small calls, and
#: a network should not hold on to, say, a full-batch workspace.
SPARE_LIMIT_BYTES = 8 * 2 ** 20


def borrow(owner: Any, kind: str, key: Any, make: Any) -> Any:
    """Scratch buffers for a call of ``kind`` on ``owner``: those the last such call gave
    back (:func:`give_back`) if they were made for the same ``key``, else ``make()``.

    Taken out while in use, so a call running at the same time in another thread
    makes its own.  Only buffers whose contents no call reads before writing them
    may be lent: each call fills them afresh.
    """
    spare = _SPARE.get(owner, {}).pop(kind, None)
    return spare[1] if spare is not None and spare[0] == key else make()


def give_back(owner: Any, kind: str, key: Any, buffers: Any, n_bytes: int) -> None:
    """Keep ``buffers`` (made for ``key``, ``n_bytes`` in all) for the next call of
    ``kind`` on ``owner``, unless they are larger than :data:`SPARE_LIMIT_BYTES`."""
    if n_bytes <= SPARE_LIMIT_BYTES:
        _SPARE.setdefault(owner, {})[kind] = (key, buffers)


def workspace_bytes(sizes: Sequence[int], rows: int, dtype: np.dtype) -> int:
    """Bytes of :func:`workspace` ``(sizes, rows, dtype)``."""
    # acts and Y (as acts_T plus one output layer) span 2·Σ sizes; deltas, deltas_T 2·Σ sizes[1:]
    per_row = 2 * sum(sizes) + 2 * sum(sizes[1:])
    return rows * per_row * np.dtype(dtype).itemsize


def weights_bytes(sizes: Sequence[int], dtype: np.dtype) -> int:
    """Bytes of one array per layer shaped like its weights."""
    return sum(a * b for a, b in pairwise(sizes)) * np.dtype(dtype).itemsize


def reused_list(owner: Any, name: str, arrays: Sequence[np.ndarray]) -> List:
    """``typed_list(arrays)``, reusing the list last made for ``owner`` under ``name`` when
    it holds the very same array objects.

    A typed list costs tens of microseconds to build, and a small ``sgd`` call
    needs a dozen; the kernels only read the lists (they write into the arrays,
    which the list shares), so an unchanged list can serve every call.
    """
    made = _LISTS.setdefault(owner, {})
    held, lst = made.get(name, ((), None))
    if lst is not None and len(held) == len(arrays) and all(
            h is a for h, a in zip(held, arrays)):
        return lst
    lst = typed_list(arrays)
    made[name] = (tuple(arrays), lst)
    return lst


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


def check_model(sizes: list[int], activation: Any, output: Any, cost: Any,
                init: Any) -> tuple[list[str], str, str]:
    """Validate the names of a network's activations, cost and initializer.

    Returns the activation of every layer after the input (hidden layers, then
    the output layer), the cost and the initializer.  Raises ``ValueError``
    (``TypeError`` for a value of the wrong kind) naming the argument.
    """
    n_hidden = len(sizes) - 2
    names = [activation] if isinstance(activation, str) else activation
    if isinstance(names, Sequence) and "softmax" in list(names):
        raise ValueError("activation: softmax couples a layer's neurons and is for the output "
                         "layer only (output='softmax'); hidden layers take "
                         f"{', '.join(map(repr, HIDDEN))}")
    if isinstance(activation, str):
        hidden = [check.check_choice(activation, "activation", HIDDEN)] * n_hidden
    elif isinstance(activation, Sequence):
        if len(activation) != n_hidden:
            raise ValueError(
                f"activation must be one name, or a list of one name per hidden layer "
                f"({n_hidden} for sizes {sizes}), got {len(activation)} names")
        hidden = [check.check_choice(a, f"activation[{i}]", HIDDEN)
                  for i, a in enumerate(activation)]
    else:
        raise TypeError(f"activation must be a name or a list of names, got {activation!r}")
    output = check.check_choice(output, "output", tuple(ACTIVATIONS))
    cost = check.check_choice(cost, "cost", tuple(COSTS))
    init = check.check_choice(init, "init", tuple(INITIALIZERS))
    needed = REQUIRED_OUTPUT[cost]
    if needed is not None and output != needed:
        raise ValueError(f"cost={cost!r} needs output={needed!r} (its output error a − y "
                         f"holds only for that pairing), got output={output!r}")
    return [*hidden, output], cost, init


class Network:
    """A fully connected feedforward network: activations, cost and initial weights by name.

    The defaults are the derivations' network: sigmoid neurons everywhere,
    the quadratic cost, weights and biases drawn from N(0, 1).

    Parameters
    ----------
    sizes : sequence of int
        Neurons per layer, input layer first, e.g. ``[784, 30, 10]``.  At least
        two layers, each of at least one neuron.
    activation : str or sequence of str
        The hidden layers' activation f: one name for all of them, or one name
        per hidden layer (``len(sizes) - 2`` names).  ``"sigmoid"``,
        ``"tanh"``, ``"relu"``, ``"leaky_relu"`` (slope 0.01) or
        ``"identity"`` (:mod:`loopbp.activations`).
    output : str
        The output layer's activation: any of the above or ``"softmax"``.
    cost : str
        ``"quadratic"`` (equation I3), ``"cross_entropy"`` (needs
        ``output="sigmoid"``) or ``"log_likelihood"`` (needs
        ``output="softmax"``); always the mean over the rows (:mod:`loopbp.costs`).
    init : str
        ``"normal"``, ``"scaled"``, ``"glorot"`` or ``"he"`` (:mod:`loopbp.init`).
    seed : int or None
        Seeds the generator that draws the initial parameters and, later, the
        order of the training examples; the same seed gives the same network
        and the same training run.
    dtype : float64 or float32
        Precision of parameters and arithmetic.

    Attributes
    ----------
    sizes : list of int
    activations : list of str
        The activation of every layer after the input (``len(sizes) - 1`` names).
    cost, init : str
    weights : list of ndarray
        ``weights[i]`` has shape ``(sizes[i+1], sizes[i])``; entry ``[j, k]``
        is w_jk, the weight from neuron k of layer i to neuron j of layer i+1.
    biases : list of ndarray
        ``biases[i]`` has shape ``(sizes[i+1],)``.
    dtype : numpy.dtype

    Raises
    ------
    ValueError
        For unknown names, a softmax in a hidden layer, an activation list of
        the wrong length, and costs paired with an output they do not fit.
    """

    def __init__(self, sizes: Sequence[int], *, activation: str | Sequence[str] = "sigmoid",
                 output: str = "sigmoid", cost: str = "quadratic", init: str = "normal",
                 seed: int | None = None, dtype: Any = np.float64) -> None:
        self.sizes = check.check_sizes(sizes)
        self.activations, self.cost, self.init = check_model(self.sizes, activation, output,
                                                             cost, init)
        self.dtype = check.check_dtype(dtype)
        if seed is not None:
            seed = check.check_int(seed, "seed", minimum=0)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        try:
            self.weights, self.biases = initial_parameters(self.init, self.sizes, self.rng,
                                                           self.dtype)
        except MemoryError:
            count = sum((n_in + 1) * n_out for n_in, n_out in pairwise(self.sizes))
            raise MemoryError(f"sizes {self.sizes} need {count:,} parameters "
                              f"({count * self.dtype.itemsize / 2**30:,.1f} GiB), more than "
                              f"this machine can allocate") from None

    @property
    def f_codes(self) -> np.ndarray:
        """The activation codes of the layers after the input, as the kernels take them."""
        return np.array([ACTIVATIONS[name] for name in self.activations], dtype=np.int64)

    @property
    def cost_code(self) -> int:
        """The cost's code, as the kernels take it."""
        return COSTS[self.cost]

    def __repr__(self) -> str:
        hidden = self.activations[:-1]
        activation = hidden[0] if len(set(hidden)) == 1 else hidden
        parts = [f"sizes={self.sizes}"]
        if hidden:
            parts.append(f"activation={activation!r}")
        parts += [f"output={self.activations[-1]!r}", f"cost={self.cost!r}",
                  f"init={self.init!r}", f"dtype={self.dtype.name}"]
        return f"Network({', '.join(parts)})"

    # --- parameters handed to kernels ------------------------------------------

    def parameters(self) -> tuple[List, List]:
        """Weights and biases as typed lists for the kernels, after checking them.

        Users may replace ``weights[i]``/``biases[i]``; a replacement of the
        right shape (an array, or anything NumPy makes one of) is converted to
        the network's dtype and layout, anything else (another shape, complex
        or non-numeric entries, NaN or infinity) is refused before it can
        reach a kernel.  So are ``activations``, ``cost`` and ``dtype`` that
        were changed to something the network cannot be.
        """
        self._check_model_attributes()
        for name, params, shapes in (
            ("weights", self.weights,
             [(o, i) for i, o in zip(self.sizes[:-1], self.sizes[1:])]),
            ("biases", self.biases, [(o,) for o in self.sizes[1:]]),
        ):
            if not isinstance(params, list) or len(params) != len(shapes):
                raise ValueError(f"network.{name} must be a list of {len(shapes)} arrays")
            for i, (given, shape) in enumerate(zip(params, shapes)):
                try:
                    p = np.asarray(given)
                except (ValueError, TypeError) as err:  # ragged nesting, odd objects
                    raise ValueError(f"network.{name}[{i}] must be an array of shape "
                                     f"{shape}: {err}") from err
                if p.shape != shape:
                    raise ValueError(
                        f"network.{name}[{i}] must have shape {shape}, got {p.shape}")
                if p.dtype.kind not in "biuf":
                    raise TypeError(f"network.{name}[{i}] must hold real numbers, got dtype "
                                    f"{p.dtype}")
                # anything but a plain array (a list, a masked array) is replaced by one:
                # the kernels receive the list's entries themselves
                if (type(given) is not np.ndarray or p.dtype != self.dtype
                        or not p.flags.c_contiguous or not p.flags.writeable):
                    with np.errstate(over="ignore"):  # an overflow is reported just below
                        params[i] = p = np.array(p, dtype=self.dtype, order="C")
                if not np.isfinite(p).all():
                    raise ValueError(f"network.{name}[{i}] contains NaN or infinity")
        return reused_list(self, "weights", self.weights), reused_list(self, "biases", self.biases)

    def _check_model_attributes(self) -> None:
        """``activations``, ``cost`` and ``dtype`` as a new network would check them.

        The kernels index one activation code per layer by position, so a list
        of the wrong length would be read past its end.  What passed is
        remembered, so a call with nothing changed pays one comparison.
        """
        n_layers = len(self.sizes) - 1
        if (isinstance(self.activations, str) or not isinstance(self.activations, Sequence)
                or len(self.activations) != n_layers):
            raise ValueError(f"network.activations must be a list of {n_layers} names (one "
                             f"per layer after the input), got {self.activations!r}")
        seen = (tuple(self.sizes), tuple(self.activations), self.cost, self.init, self.dtype)
        if _CHECKED_MODEL.get(self) == seen:
            return
        try:
            check_model(self.sizes, self.activations[:-1], self.activations[-1], self.cost,
                        self.init)
            self.dtype = check.check_dtype(self.dtype)
        except (TypeError, ValueError) as err:
            raise type(err)(f"network.activations, cost, init or dtype changed to one the "
                            f"network cannot have: {err}") from None
        _CHECKED_MODEL[self] = seen

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
        self._check_model_attributes()
        inputs = check.as_inputs(X, "X", self.sizes[0], self.dtype, allow_1d=True)
        single = np.ndim(X) == 1  # safe now: X is known to be rectangular
        out = self._feedforward(inputs)
        return out[0] if single else out

    def _feedforward(self, inputs: np.ndarray) -> np.ndarray:
        """:meth:`feedforward` of inputs already checked: a C-contiguous array of the
        network's dtype, shape ``(n, sizes[0])``, finite (as :func:`check.as_inputs` makes)."""
        weights, biases = self.parameters()
        out = np.empty((inputs.shape[0], self.sizes[-1]), self.dtype)
        chunk = feedforward_chunk(self.sizes, inputs.shape[0])
        key = (tuple(self.sizes), self.dtype, chunk)
        acts, transposes = borrow(self, "feedforward", key, lambda: self._buffers(chunk))
        for w, w_T in zip(self.weights, transposes):
            if w_T.size:
                w_T[...] = w.T
        with parallel_guard():
            kernels_for(self.sizes, chunk, backward=False).feedforward(
                weights, transposes, biases, inputs, out, acts, self.f_codes)
        give_back(self, "feedforward", key, (acts, transposes),
                  chunk * sum(self.sizes[1:-1]) * self.dtype.itemsize
                  + weights_bytes(self.sizes, self.dtype))
        return out

    def _buffers(self, chunk: int) -> tuple[List, List]:
        """Feedforward's buffers for ``chunk`` rows: each hidden layer's activations (the
        inputs' is never written: no columns), and each layer's weights transposed where
        :func:`~loopbp.kernels.forward_layer` reads them
        (:func:`~loopbp.kernels.needs_transpose`), an empty array elsewhere."""
        acts = typed_list([np.empty((chunk, s if i else 0), self.dtype)
                           for i, s in enumerate(self.sizes[:-1])])
        unused = np.empty((0, 0), self.dtype)
        return acts, typed_list([np.empty(w.shape[::-1], self.dtype)
                                 if kernels.needs_transpose(w, False) else unused
                                 for w in self.weights])

    def _prepare(self, X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
        self._check_model_attributes()
        X = check.as_inputs(X, "X", self.sizes[0], self.dtype)
        return X, self.targets(Y, "Y", X.shape[0])

    def targets(self, Y: Any, name: str, n_rows: int) -> np.ndarray:
        """``Y`` as targets for this network: checked, one-hot encoded when given as labels.

        Beyond the shape, the targets must fit the cost: in [0, 1] for the
        cross-entropy, and rows of non-negative numbers summing to 1 (a
        distribution over the classes) for the log-likelihood.
        """
        targets = check.as_targets(Y, name, n_rows, self.sizes[-1], self.dtype)
        if self.cost in ("cross_entropy", "log_likelihood") and (
                targets.min() < 0 or targets.max() > 1):
            raise ValueError(f"{name} must hold targets in [0, 1] for cost={self.cost!r}, got "
                             f"values from {targets.min():g} to {targets.max():g}")
        if self.cost == "log_likelihood":
            sums = targets.sum(axis=1, dtype=np.float64)
            tolerance = 1e-6 if self.dtype == np.float64 else 1e-4
            bad = np.flatnonzero(np.abs(sums - 1) > tolerance)
            if bad.size:
                raise ValueError(
                    f"{name} must hold one distribution per row (a one-hot class or "
                    f"probabilities summing to 1) for a softmax output with "
                    f"cost='log_likelihood'; row {bad[0]} sums to {sums[bad[0]]:g}")
        return targets

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
            Shaped like ``weights`` and ``biases``: ∂C/∂w and ∂C/∂b for the
            mean cost ``C = (1/n) Σ_x C_x`` (no L2 term: that belongs to training).
        """
        X, Y = self._prepare(X, Y)
        nabla_w, nabla_b, _ = self._gradient(X, Y)
        return nabla_w, nabla_b

    def mean_cost(self, X: Any, Y: Any) -> float:
        """Mean cost ``(1/n) Σ_x C_x`` over the rows of ``X`` (the network's cost, no L2 term)."""
        X, Y = self._prepare(X, Y)
        return float(kernels.batch_cost(self.feedforward(X), Y, self.cost_code,
                                        np.empty(0, self.dtype)))

    def _gradient(self, X: np.ndarray, Y: np.ndarray) -> tuple[list, list, float]:
        weights, biases = self.parameters()
        n = X.shape[0]
        key = (tuple(self.sizes), self.dtype, n)
        ws, weights_T = borrow(self, "backprop", key, lambda: (
            workspace(self.sizes, n, self.dtype),
            typed_list([np.empty(w.shape[::-1], self.dtype) for w in self.weights])))
        for w, w_T in zip(self.weights, weights_T):
            w_T[...] = w.T
        nabla_w = [np.empty_like(w) for w in self.weights]  # the caller's: new every call
        nabla_b = [np.empty_like(b) for b in self.biases]
        ws[0][0][:] = X
        ws[1][:] = Y
        with parallel_guard():
            cost = kernels_for(self.sizes, n).backprop(
                weights, biases, weights_T, typed_list(nabla_w), typed_list(nabla_b), ws,
                self.f_codes, self.cost_code, np.empty(0, self.dtype))
        give_back(self, "backprop", key, (ws, weights_T),
                  workspace_bytes(self.sizes, n, self.dtype)
                  + weights_bytes(self.sizes, self.dtype))
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
                "activations": self.activations, "cost": self.cost, "init": self.init,
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
            if meta.get("version", 1) >= 2:
                activations = meta["activations"]
                cost, init = meta["cost"], meta["init"]
            else:  # version 1 predates these keys: it holds the derivations' network
                activations = ["sigmoid"] * (len(sizes) - 1)
                cost, init = "quadratic", "normal"
            if not isinstance(activations, list) or len(activations) != len(sizes) - 1:
                raise ValueError(f"activations must list {len(sizes) - 1} names")
            activations, cost, init = check_model(
                sizes, activations[:-1], activations[-1], cost, init)
        except (KeyError, TypeError, ValueError) as err:
            raise files.NetworkFileError(f"{where} has damaged metadata: {err}") from err
        net = cls.__new__(cls)
        net.sizes, net.dtype = sizes, dtype
        net.activations, net.cost, net.init = activations, cost, init
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
