"""scikit-learn drop-in estimators: :class:`MLPClassifier` and :class:`MLPRegressor`.

``from loopbp.sklearn import MLPClassifier`` in place of
``from sklearn.neural_network import MLPClassifier``: the same parameters with
the same names, meanings and defaults, the same fitted attributes, the same
warnings and stopping rules, and the same errors for bad input — trained by
loopbp's compiled kernels (:func:`loopbp.kernels.train_mini_batches`) instead
of NumPy products driven from Python once per mini-batch.  Nothing of the math
is written twice: each estimator builds a :class:`~loopbp.Network` (``net_``)
and trains it with loopbp's epoch loop; this module translates parameters,
targets and the stopping rules.

What differs from scikit-learn's estimators (the docs page "Using loopbp from
scikit-learn" has the details):

* ``solver="lbfgs"`` is refused: loopbp trains by mini-batch gradient descent.
* Adam's ε is added to √v̂ (Kingma & Ba's Algorithm 1, loopbp's
  :func:`~loopbp.kernels.adam_step`) rather than to √v with a bias-corrected
  step size; the two agree up to the size of ε.
* The random numbers differ (loopbp draws with NumPy's ``Generator``), so a
  ``random_state`` gives a network as good as scikit-learn's, not the same one.
* ``dtype`` and ``n_threads`` are loopbp's own parameters.

scikit-learn (1.7 or later) is an optional dependency: ``pip install
loopbp[sklearn]``.  ``import loopbp`` does not import this module.
"""

from __future__ import annotations

import itertools
import math
import warnings
from abc import ABCMeta, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state
    from sklearn.utils._param_validation import Interval, Options, StrOptions
    from sklearn.utils.multiclass import type_of_target, unique_labels
    from sklearn.utils.validation import (
        _check_sample_weight,
        check_is_fitted,
        column_or_1d,
        validate_data,
    )
except ImportError as error:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "loopbp.sklearn needs scikit-learn 1.7 or later: pip install 'loopbp[sklearn]'"
    ) from error

from tqdm.auto import tqdm

from ._jit import get_num_threads, set_num_threads
from .network import Network
from .optimizers import Optimizer, initial_state
from .training import _StopRequest, _Trainer, sum_of_squares

__all__ = ["MLPClassifier", "MLPRegressor"]

#: scikit-learn's activation names → loopbp's.
ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}

#: The output layer's activation (scikit-learn's name) → loopbp's activation and cost.
OUTPUTS = {
    "softmax": ("softmax", "log_likelihood"),
    "logistic": ("sigmoid", "cross_entropy"),
    "identity": ("identity", "quadratic"),
}

#: Below this learning rate, ``learning_rate="adaptive"`` stops instead of dividing by 5.
MIN_ADAPTIVE_RATE = 1e-6

#: The parameters scikit-learn's optimizer object takes when ``fit`` (or a first
#: ``partial_fit``) makes it, and keeps through later ``partial_fit`` calls: set_params
#: changes them for the next ``fit`` only.
SOLVER_PARAMS = ("solver", "learning_rate", "learning_rate_init", "power_t", "momentum",
                 "nesterovs_momentum", "beta_1", "beta_2", "epsilon")


def _in_dtype(array: np.ndarray, dtype: np.dtype, name: str) -> np.ndarray:
    """``array`` (finite: validated) as a C-contiguous array of the network's ``dtype``.

    Raises ValueError where values too large for float32 would become infinities,
    which the kernels would otherwise turn into NaN outputs or a diverged fit.
    """
    with np.errstate(over="ignore"):  # the check below says what overflowed
        converted = np.ascontiguousarray(array, dtype=dtype)
    if converted.dtype != array.dtype and not np.isfinite(converted).all():
        raise ValueError(
            f"{name} has values too large for {dtype.name}, the network's dtype (up to "
            f"{np.max(np.abs(array)):g} in magnitude, {dtype.name} holds at most "
            f"{np.finfo(dtype).max:g}): rescale {name}, or fit with dtype='float64'")
    return converted


@contextmanager
def _threads(n_threads: int | None) -> Iterator[None]:
    """Run the kernels with ``n_threads`` threads inside the block (None: leave as is)."""
    if n_threads is None:
        yield
        return
    previous = get_num_threads()
    set_num_threads(n_threads)
    try:
        yield
    finally:
        set_num_threads(previous)


class _BaseMLP(BaseEstimator, metaclass=ABCMeta):
    """Parameters, training loop and fitted attributes shared by both estimators."""

    _parameter_constraints: ClassVar[dict] = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"),
                             Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dtype": "no_validation",  # checked by _net_dtype
        "n_threads": [None, Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: int | str = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: Any = None, tol: float = 1e-4, verbose: bool = False,
                 warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: int = 10, max_fun: int = 15000,
                 dtype: Any = None, n_threads: int | None = None) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.n_threads = n_threads

    # --- what subclasses say ----------------------------------------------------------

    @abstractmethod
    def _encode(self, y: Any, first_call: bool, incremental: bool, classes: Any) -> np.ndarray:
        """Targets as a float array of shape (n, n_outputs), fitting encoders as needed."""

    @abstractmethod
    def _output(self) -> str:
        """scikit-learn's name of the output activation for the targets seen."""

    @abstractmethod
    def _score(self, X: np.ndarray, y: Any, sample_weight: np.ndarray | None) -> float:
        """The score of :meth:`score` on held-out rows (already validated)."""

    # --- fitted attributes read from the network ------------------------------------

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices in scikit-learn's orientation: ``coefs_[i][k, j] = w_jk``.

        ``coefs_[i]`` has shape ``(n_in, n_out)`` = ``(sizes[i], sizes[i+1])``:
        row k is the sending neuron, column j the receiving one.  They are
        transposed *views* of ``net_.weights[i]`` (shape ``(n_out, n_in)``,
        entry ``[j, k]`` = w_jk as in the derivation), so both always agree.
        """
        check_is_fitted(self, "net_")
        return [w.T for w in self.net_.weights]

    @coefs_.setter
    def coefs_(self, coefs: list[np.ndarray]) -> None:
        check_is_fitted(self, "net_")
        coefs = self._replacement(coefs, "coefs_", [w.T for w in self.net_.weights])
        self.net_.weights = [np.ascontiguousarray(c.T) for c in coefs]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors: ``intercepts_[i]`` is ``net_.biases[i]`` (b_j of layer i+1)."""
        check_is_fitted(self, "net_")
        return list(self.net_.biases)

    @intercepts_.setter
    def intercepts_(self, intercepts: list[np.ndarray]) -> None:
        check_is_fitted(self, "net_")
        self.net_.biases = self._replacement(intercepts, "intercepts_", self.net_.biases)

    def _replacement(self, arrays: Any, name: str, current: list[np.ndarray]) -> list:
        if not isinstance(arrays, list | tuple) or len(arrays) != len(current):
            raise ValueError(f"{name} must be a list of {len(current)} arrays")
        replaced = []
        for i, (new, old) in enumerate(zip(arrays, current)):
            new = np.array(new, dtype=self.net_.dtype)
            if new.shape != old.shape:
                raise ValueError(f"{name}[{i}] must have shape {old.shape}, got {new.shape}")
            if not np.isfinite(new).all():
                raise ValueError(f"{name}[{i}] contains NaN or infinity")
            replaced.append(new)
        return replaced

    # --- fitting ----------------------------------------------------------------------

    def _check_solver(self) -> None:
        if self.solver == "lbfgs":
            raise ValueError(
                "solver='lbfgs' is not available in loopbp, which trains by mini-batch "
                "gradient descent: use solver='adam' (the default) or solver='sgd', or "
                "sklearn.neural_network's estimators for L-BFGS")

    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        if any(isinstance(s, bool) or not isinstance(s, Integral | np.integer) for s in sizes):
            raise ValueError(f"hidden_layer_sizes must hold integers, got {sizes}.")
        if np.any(np.array(sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _net_dtype(self, X_dtype: np.dtype) -> np.dtype:
        """The network's precision: ``dtype``, or float32 for float32 inputs and else float64."""
        if self.dtype is None:
            return np.dtype(np.float32) if X_dtype == np.float32 else np.dtype(np.float64)
        try:
            dtype = np.dtype(self.dtype)
        except TypeError as error:
            raise ValueError(f"dtype must be None, float32 or float64, got {self.dtype!r}") \
                from error
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be None, float32 or float64, got {self.dtype!r}")
        return dtype

    def _solver_param(self, name: str) -> Any:
        """A parameter of :data:`SOLVER_PARAMS` as the optimizer in use was made with."""
        return getattr(self, "_solver_params", {}).get(name, getattr(self, name))

    def _optimizer(self) -> Optimizer:
        """loopbp's optimizer for ``solver`` (sgd: with momentum, Nesterov's if asked)."""
        param = self._solver_param
        if param("solver") == "adam":
            name = "adam"
        elif param("momentum") > 0:
            name = "nesterov" if param("nesterovs_momentum") else "momentum"
        else:
            name = "sgd"
        return Optimizer(name, momentum=param("momentum"),
                         betas=(param("beta_1"), param("beta_2")), epsilon=param("epsilon"))

    def _fit(self, X: Any, y: Any, sample_weight: Any, *, incremental: bool,
             classes: Any = None) -> _BaseMLP:
        self._validate_params()
        self._check_solver()
        hidden = self._hidden_sizes()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_call = not hasattr(self, "net_") or not (self.warm_start or incremental)
        if not first_call:
            self._check_network_params(hidden)
        X, y = validate_data(self, X, y, reset=first_call, accept_sparse=False,
                             dtype=(np.float64, np.float32), multi_output=True,
                             y_numeric=not isinstance(self, ClassifierMixin))
        dtype = self.net_.dtype if not first_call else self._net_dtype(X.dtype)
        X = _in_dtype(X, dtype, "X")
        Y = _in_dtype(self._encode(y, first_call, incremental, classes), dtype, "y")
        sample_weight, alpha = self._sample_weight(sample_weight, X, dtype)
        if not first_call and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs, but the estimator was fitted with "
                             f"{self.n_outputs_}")
        self._random_state = check_random_state(self.random_state)
        if first_call:
            self._initialize(X.shape[1], hidden, Y.shape[1], dtype)
        else:
            # the hidden activation as set now, as scikit-learn reads it at each pass
            n_hidden = len(self.net_.weights) - 1
            self.net_.activations = ([ACTIVATIONS[self.activation]] * n_hidden
                                     + [self.net_.activations[-1]])
            if (self.validation_scores_ is None) == self.early_stopping:
                # early_stopping toggled since the last fit: its attributes start afresh
                self._reset_stopping_rule()
        if not incremental or not hasattr(self, "_optimizer_state"):
            # a new optimizer for each fit (warm_start keeps only the parameters), which
            # partial_fit calls go on with, as scikit-learn's do, whatever set_params has
            # changed since: never one optimizer's moments read as another's
            self._solver_params = {name: getattr(self, name) for name in SOLVER_PARAMS}
            self._optimizer_state = initial_state(self._optimizer(), self.learning_rate_init,
                                                  self.net_.weights, self.net_.biases)
            self._eta = float(self.learning_rate_init)
        with _threads(self.n_threads):
            self._fit_stochastic(X, Y, y, sample_weight, incremental, alpha)
        return self

    def _check_network_params(self, hidden: list[int]) -> None:
        """Refuse, before warm_start or partial_fit trains on, a network unlike the one asked.

        scikit-learn would train its old layers on silently (another width) or fail with
        an IndexError (another depth); loopbp says so.
        """
        fitted = self.net_.sizes[1:-1]
        if hidden != fitted:
            raise ValueError(
                f"hidden_layer_sizes={tuple(hidden)} differs from the fitted network's "
                f"{tuple(fitted)}: warm_start and partial_fit train the fitted network on; "
                "fit with warm_start=False (or a clone) for a new one")
        if self.dtype is not None and self._net_dtype(self.net_.dtype) != self.net_.dtype:
            raise ValueError(
                f"dtype={self.dtype!r} differs from the fitted network's "
                f"{self.net_.dtype.name}: warm_start and partial_fit train the fitted "
                "network on; fit with warm_start=False (or a clone) for a new one")

    def _sample_weight(self, sample_weight: Any, X: np.ndarray,
                       dtype: np.dtype) -> tuple[np.ndarray | None, float]:
        """``sample_weight`` in the network's dtype, and the ``alpha`` to train with.

        A mini-batch's gradient is the weighted mean over its rows (only the weights'
        ratios count), its L2 term ``alpha / Σ s`` (equation alpha).  Weights whose
        largest the kernels could not sum or divide by (their sum overflows, or it is
        too small for ``n / Σ s``, or float32 cannot hold it) are multiplied by a power
        of 2, and ``alpha`` with them: exact, so the training is bit for bit what
        unbounded floats would give.  Otherwise the weights are passed on as given,
        tiny ones included (as scikit-learn takes them).
        """
        alpha = float(self.alpha)
        if sample_weight is None:
            return None, alpha
        weights = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                       ensure_non_negative=True)
        positive = weights[weights > 0]
        n = weights.shape[0]
        info = np.finfo(dtype)
        # the largest weight: normal in dtype with n / (its sum) finite, and n of it summable
        low, high = max(float(info.tiny), n / np.finfo(np.float64).max), float(info.max) / n
        if positive.size == 0 or low <= positive.max() <= high:
            if dtype != np.float64:  # converted from the input, as before
                weights = _check_sample_weight(sample_weight, X, dtype=dtype,
                                               ensure_non_negative=True)
            return weights, alpha
        shift = -int(np.frexp(positive.max())[1])  # the largest weight to [0.5, 1)
        try:
            alpha = math.ldexp(alpha, shift)
        except OverflowError:
            raise ValueError(
                f"sample_weight is too small for alpha={self.alpha:g}: the L2 term "
                f"alpha / sum(sample_weight) (sum {weights.sum():g}) overflows; scale "
                "sample_weight up (alpha is per unit of weight)") from None
        return np.ldexp(weights, shift).astype(dtype), alpha

    def _initialize(self, n_features: int, hidden: list[int], n_outputs: int,
                    dtype: np.dtype) -> None:
        """A new network, with scikit-learn's initialization (Glorot's uniform bounds)."""
        self.n_outputs_ = n_outputs
        self.out_activation_ = self._output()
        output, cost = OUTPUTS[self.out_activation_]
        sizes = [n_features, *hidden, n_outputs]
        self.n_layers_ = len(sizes)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        net = Network(sizes, activation=ACTIVATIONS[self.activation], output=output,
                      cost=cost, init="glorot", seed=seed, dtype=dtype)
        # scikit-learn's bound: √(6 / (n_in + n_out)), √(2 / …) for logistic units,
        # for weights and biases alike
        factor = 2.0 if self.activation == "logistic" else 6.0
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            bound = math.sqrt(factor / (n_in + n_out))
            net.weights[i] = net.rng.uniform(-bound, bound, (n_out, n_in)).astype(dtype)
            net.biases[i] = net.rng.uniform(-bound, bound, n_out).astype(dtype)
        self.net_ = net
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self._reset_stopping_rule()

    def _reset_stopping_rule(self) -> None:
        """The attributes ``early_stopping`` watches, as scikit-learn's first fit sets them."""
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf

    def _fit_stochastic(self, X: np.ndarray, Y: np.ndarray, y: Any,
                        sample_weight: np.ndarray | None, incremental: bool,
                        alpha: float) -> None:
        net = self.net_
        X_val = y_val = sw_val = None
        if self.early_stopping:
            labels = self._stratify_by(y)
            parts = [X, Y, y] if sample_weight is None else [X, Y, y, sample_weight]
            split = train_test_split(*parts, random_state=self._random_state,
                                     test_size=self.validation_fraction, stratify=labels)
            X, X_val, Y, _, _, y_val = split[:6]
            if sample_weight is not None:
                sample_weight, sw_val = split[6], split[7]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            X, Y = np.ascontiguousarray(X), np.ascontiguousarray(Y)
            self._best = ([w.copy() for w in net.weights], [b.copy() for b in net.biases])
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                              "going to be clipped", stacklevel=3)
            batch_size = int(np.clip(self.batch_size, 1, n))
        net.parameters()  # refuses parameters set to the wrong shape or NaN
        Y = net.targets(Y, "y", n)  # what the cost needs of the targets (shapes, ranges)
        trainer = _Trainer(net, X, Y, batch_size, self._optimizer(), self._optimizer_state,
                           decay=0.0, alpha=alpha, sample_weight=sample_weight,
                           shuffle=self.shuffle)
        # each mini-batch's L2 term is (α/2) Σ w² over its weight sum (equation alpha)
        weight_total = float(n if sample_weight is None else sample_weight.sum())
        l2_share = trainer.n_batches / weight_total if weight_total > 0 else 0.0
        stop = _StopRequest()
        bar = tqdm(disable=True)
        self.n_iter_ = 0  # epochs of this call (partial_fit: 1), as scikit-learn counts
        try:
            with stop.handling_sigint():
                for _ in range(self.max_iter):
                    record = trainer.epoch(self.n_iter_ + 1, self._eta, bar, stop)
                    self._optimizer_state = trainer.optimizer_state()
                    if record is None:  # Ctrl-C inside the epoch
                        warnings.warn("Training interrupted by user.", stacklevel=3)
                        break
                    self.n_iter_ += 1
                    self.loss_ = self._reported_loss(record.cost, alpha, l2_share)
                    self.t_ += n
                    self.loss_curve_.append(self.loss_)
                    if self.verbose:
                        print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                    self._update_no_improvement_count(X_val, y_val, sw_val)
                    param = self._solver_param
                    if param("solver") == "sgd" and param("learning_rate") == "invscaling":
                        self._eta = (param("learning_rate_init")
                                     / (self.t_ + 1) ** param("power_t"))
                    if self._no_improvement_count > self.n_iter_no_change:
                        if self._stop_or_slow_down():
                            break
                        self._no_improvement_count = 0
                    if incremental:
                        break
                    if self.n_iter_ == self.max_iter:
                        warnings.warn(
                            f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                            "reached and the optimization hasn't converged yet.",
                            ConvergenceWarning, stacklevel=3)
                    if stop.requested:
                        warnings.warn("Training interrupted by user.", stacklevel=3)
                        break
        except KeyboardInterrupt:  # a second Ctrl-C
            warnings.warn("Training interrupted by user.", stacklevel=3)
        finally:
            bar.close()
            trainer.release()
        if self.early_stopping:  # the best epoch's parameters, as scikit-learn keeps them
            for dest, src in zip([*net.weights, *net.biases], [*self._best[0], *self._best[1]]):
                dest[...] = src
            del self._best

    def _reported_loss(self, mean_cost: float, alpha: float, l2_share: float) -> float:
        """The epoch's loss as scikit-learn reports it, from loopbp's mean cost.

        ``l2_share`` is the mini-batches per unit of sample weight, ``alpha`` the one
        trained with (scaled as the weights were: see :meth:`_sample_weight`).
        """
        if self.out_activation_ == "identity":
            # scikit-learn's squared error is also averaged over the outputs
            mean_cost /= self.n_outputs_
        return mean_cost + 0.5 * alpha * sum_of_squares(self.net_.weights) * l2_share

    def _update_no_improvement_count(self, X_val: np.ndarray | None, y_val: Any,
                                     sw_val: np.ndarray | None) -> None:
        """Count epochs without improvement by ``tol``: of the validation score or the loss."""
        if self.early_stopping:
            score = self._score(X_val, y_val, sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best = ([w.copy() for w in self.net_.weights],
                              [b.copy() for b in self.net_.biases])
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _stop_or_slow_down(self) -> bool:
        """After ``n_iter_no_change`` epochs without improvement: stop, or divide η by 5."""
        what = "Validation score" if self.early_stopping else "Training loss"
        message = (f"{what} did not improve more than tol={self.tol:f} for "
                   f"{self.n_iter_no_change} consecutive epochs.")
        if (self._solver_param("solver") == "sgd"
                and self._solver_param("learning_rate") == "adaptive"):
            if self._eta > MIN_ADAPTIVE_RATE:
                self._eta /= 5.0
                if self.verbose:
                    print(f"{message} Setting learning rate to {self._eta:f}")
                return False
            if self.verbose:
                print(f"{message} Learning rate too small. Stopping.")
            return True
        if self.verbose:
            print(f"{message} Stopping.")
        return True

    def _stratify_by(self, y: Any) -> np.ndarray | None:
        return None

    # --- using the fitted network --------------------------------------------------

    def _forward(self, X: Any, check_input: bool = True) -> np.ndarray:
        """Output activations a^L for each row of ``X`` (validated first, unless held out)."""
        check_is_fitted(self, "net_")
        if check_input:
            X = validate_data(self, X, reset=False, accept_sparse=False,
                              dtype=(np.float64, np.float32))
        X = _in_dtype(X, self.net_.dtype, "X")
        if X.ndim != 2 or X.shape[1] != self.net_.sizes[0]:  # as validate_data ensures
            raise ValueError(f"X must have shape (n, {self.net_.sizes[0]}), got {X.shape}")
        with _threads(self.n_threads):
            # validate_data has refused NaN, infinity and the wrong width: skip the
            # network's own pass over the inputs
            return self.net_._feedforward(X)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, trained by loopbp's compiled kernels.

    A drop-in for :class:`sklearn.neural_network.MLPClassifier`: the same
    parameters, defaults, fitted attributes and behaviour (see the module
    docstring for what differs).  The output layer and cost follow the
    targets, as in scikit-learn: a softmax with the log-likelihood cost for
    one label out of several classes, sigmoids with the cross-entropy for two
    classes (one output unit) and for multilabel indicator targets.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(100,)
        Neurons of each hidden layer.
    activation : {"identity", "logistic", "tanh", "relu"}, default="relu"
        The hidden layers' activation (``logistic`` is loopbp's ``sigmoid``).
    solver : {"adam", "sgd"}, default="adam"
        ``"lbfgs"`` is refused with a ValueError.
    alpha : float, default=0.0001
        L2 strength per mini-batch (equation ``alpha``): each step adds
        ``(alpha / m) w`` to the weights' gradient, m the mini-batch's size
        (its weight sum with ``sample_weight``).
    batch_size : int or "auto", default="auto"
        ``min(200, n_samples)`` for "auto"; clipped to ``n_samples``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        The schedule of η for ``solver="sgd"``: constant, η₀ / (t+1)^power_t
        after each epoch (t the samples seen), or divided by 5 after
        ``n_iter_no_change`` epochs without improvement.
    learning_rate_init : float, default=0.001
    power_t : float, default=0.5
    max_iter : int, default=200
        Epochs (``partial_fit``: one per call).
    shuffle : bool, default=True
    random_state : int, RandomState instance or None, default=None
        Seeds the initial parameters, the order of the examples and the
        validation split.
    tol : float, default=1e-4
    verbose : bool, default=False
        Print the loss after each epoch.
    warm_start : bool, default=False
    momentum : float in [0, 1), default=0.9
        For ``solver="sgd"``; 0 gives plain gradient descent.
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows, stop when their accuracy
        does not improve by ``tol`` for ``n_iter_no_change`` epochs, and keep
        the best epoch's parameters.
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's hyperparameters.
    n_iter_no_change : int, default=10
    max_fun : int, default=15000
        Accepted for compatibility; only L-BFGS would use it.
    dtype : {None, "float32", "float64"}, default=None
        The network's precision; None keeps float32 inputs in float32 and
        computes everything else in float64.
    n_threads : int or None, default=None
        Threads for the kernels during ``fit`` and prediction (default: loopbp's
        current setting, :func:`loopbp.set_num_threads`).

    Attributes
    ----------
    net_ : loopbp.Network
        The trained network, to read side by side with the derivation.
    classes_ : ndarray or list of ndarray
    coefs_ : list of ndarray
        ``coefs_[i]`` has shape (n_in, n_out) and ``coefs_[i][k, j] = w_jk``:
        the transpose of ``net_.weights[i]``, whose entry ``[j, k]`` is the
        derivation's w_jk (j receiving, k sending).  A view: it always agrees
        with ``net_``.
    intercepts_ : list of ndarray
        ``intercepts_[i]`` is ``net_.biases[i]``.
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_
        As in scikit-learn: the loss includes the L2 term.
    n_iter_, t_, n_layers_, n_outputs_, out_activation_, n_features_in_,
    feature_names_in_
        As in scikit-learn.
    """

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPClassifier:
        """Fit the model to inputs ``X`` (n_samples, n_features) and labels ``y``."""
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None,
                    classes: Any = None) -> MLPClassifier:
        """One epoch over ``X``, ``y``; ``classes`` (all labels) is needed on the first call."""
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def _encode(self, y: Any, first_call: bool, incremental: bool, classes: Any) -> np.ndarray:
        if np.ndim(y) == 2 and np.shape(y)[1] == 1:
            y = column_or_1d(y, warn=True)
        if incremental:
            if not hasattr(self, "classes_"):
                if classes is None:
                    raise ValueError("classes must be passed on the first call to "
                                     "partial_fit.")
                self._label_binarizer = LabelBinarizer()
                if type_of_target(y).startswith("multilabel"):
                    self._label_binarizer.fit(y)
                else:
                    self._label_binarizer.fit(classes)
            elif classes is not None and not np.array_equal(
                    np.unique(classes), np.asarray(self.classes_)):
                raise ValueError(f"`classes={list(classes)!r}` is not the same as on last "
                                 f"call to partial_fit, was: {self.classes_!r}")
            if not type_of_target(y).startswith("multilabel"):
                unseen = np.setdiff1d(unique_labels(y), self._label_binarizer.classes_)
                if unseen.size:
                    raise ValueError(f"Expected only labels in classes_ = "
                                     f"{self._label_binarizer.classes_}, but got {unseen}")
        elif first_call:
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
        else:  # warm start
            if set(unique_labels(y)) - set(self._label_binarizer.classes_):
                raise ValueError("warm_start can only be used where `y` has the same classes "
                                 "as in the previous call to fit. Previously got "
                                 f"{self.classes_}, `y` has {unique_labels(y)}")
        self.classes_ = self._label_binarizer.classes_
        return np.asarray(self._label_binarizer.transform(y), dtype=np.float64)

    def _output(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _stratify_by(self, y: Any) -> np.ndarray | None:
        # one label per row: keep the classes' shares in both parts
        return y if self._label_binarizer.y_type_ != "multilabel-indicator" else None

    def _score(self, X: np.ndarray, y: Any, sample_weight: np.ndarray | None) -> float:
        return float(accuracy_score(y, self._predict(X, check_input=False),
                                    sample_weight=sample_weight))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), in the order of ``classes_``."""
        out = self._forward(X)
        if self.n_outputs_ == 1:  # two classes, one sigmoid unit: p is the second's
            p = out[:, 0]
            return np.column_stack([1 - p, p])
        return out

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithms of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row (each label above 0.5 when multilabel)."""
        return self._predict(X)

    def _predict(self, X: Any, check_input: bool = True) -> np.ndarray:
        out = self._forward(X, check_input)
        if self.n_outputs_ == 1:
            out = out.ravel()
        return self._label_binarizer.inverse_transform(out)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, trained by loopbp's compiled kernels.

    A drop-in for :class:`sklearn.neural_network.MLPRegressor`: an identity
    output layer and the squared error, with the parameters, defaults and
    attributes of :class:`MLPClassifier` (``early_stopping`` watches R²).
    ``loss`` accepts only ``"squared_error"`` (scikit-learn's ``"poisson"``
    needs an exponential output loopbp does not have).
    """

    _parameter_constraints: ClassVar[dict] = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, loss: str = "squared_error", hidden_layer_sizes: Any = (100,),
                 activation: str = "relu", *, solver: str = "adam", alpha: float = 0.0001,
                 batch_size: int | str = "auto", learning_rate: str = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5, max_iter: int = 200,
                 shuffle: bool = True, random_state: Any = None, tol: float = 1e-4,
                 verbose: bool = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: int = 10, max_fun: int = 15000,
                 dtype: Any = None, n_threads: int | None = None) -> None:
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, dtype=dtype, n_threads=n_threads)
        self.loss = loss

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """Fit the model to inputs ``X`` (n_samples, n_features) and targets ``y``."""
        self._check_loss()
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch over ``X``, ``y``."""
        self._check_loss()
        return self._fit(X, y, sample_weight, incremental=True)

    def _check_loss(self) -> None:
        if self.loss == "poisson":
            raise ValueError("loss='poisson' is not available in loopbp (it needs an "
                             "exponential output layer); use loss='squared_error'")

    def _encode(self, y: Any, first_call: bool, incremental: bool, classes: Any) -> np.ndarray:
        if np.ndim(y) == 2 and np.shape(y)[1] == 1:
            y = column_or_1d(y, warn=True)
        y = np.asarray(y, dtype=np.float64)
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def _output(self) -> str:
        return "identity"

    def _score(self, X: np.ndarray, y: Any, sample_weight: np.ndarray | None) -> float:
        out = self._forward(X, check_input=False)
        return float(r2_score(y, out.ravel() if out.shape[1] == 1 else out,
                              sample_weight=sample_weight))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, shape (n_samples,) or (n_samples, n_outputs)."""
        out = self._forward(X)
        return out.ravel() if out.shape[1] == 1 else out
