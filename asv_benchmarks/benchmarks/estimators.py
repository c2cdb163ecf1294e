"""scikit-learn drop-ins: :mod:`loopbp.sklearn`'s ``MLPClassifier`` beside scikit-learn's own.

Both estimators get the same parameters (scikit-learn's defaults: ReLU, Adam,
``alpha=1e-4``, ``learning_rate_init=1e-3``, shuffling) and the same data, and
are timed on whole calls a user makes:

* ``EstimatorFit``: ``fit`` for 5 epochs (``max_iter=5``, ``tol=0``, so no
  epoch is skipped by the stopping rule), from a fresh estimator;
* ``EstimatorPredictProba``: ``predict_proba`` on the training rows.

``case`` names data and layers:

* ``mnist1d-100``: MNIST-1D (4000 rows of 40 features, 10 classes), hidden
  layers ``(100,)``, mini-batch 200 (``batch_size="auto"``);
* ``mnist1d-256x256``: MNIST-1D, ``(256, 256)``, mini-batch 100;
* ``wide784-100``: 4000 random rows of 784 features, 10 classes (the shape of
  MNIST), ``(100,)``, mini-batch 200.

The ``*Sklearn`` classes are the peers (``ratios.py`` pairs them by name).
"""

from __future__ import annotations

import warnings

import numpy as np

#: case → (data set, hidden layers, mini-batch size).
CASES = {
    "mnist1d-100": ("mnist1d", (100,), 200),
    "mnist1d-256x256": ("mnist1d", (256, 256), 100),
    "wide784-100": ("wide784", (100,), 200),
}
#: Epochs per timed ``fit``.
EPOCHS = 5
#: asv's parameter grid: one axis, the case.
PARAMS = [list(CASES)]
PARAM_NAMES = ["case"]


def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "mnist1d":
        try:
            from loopbp.datasets import load_mnist1d

            d = load_mnist1d()
        except ImportError:
            raise NotImplementedError("mnist1d is not installed") from None
        return d["X_train"], d["y_train"]
    rng = np.random.default_rng(0)
    return rng.random((4000, 784)), rng.integers(0, 10, 4000)


def _estimator(cls, case: str):
    _, hidden, batch = CASES[case]
    return cls(hidden_layer_sizes=hidden, batch_size=batch, max_iter=EPOCHS, tol=0.0,
               random_state=0)


def _loopbp_classifier():
    try:
        from loopbp.sklearn import MLPClassifier
    except ImportError:
        raise NotImplementedError("scikit-learn is not installed") from None
    return MLPClassifier


def _sklearn_classifier():
    try:
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        raise NotImplementedError("scikit-learn is not installed") from None
    return MLPClassifier


class EstimatorFit:
    """loopbp: ``loopbp.sklearn.MLPClassifier(...).fit`` for 5 epochs."""

    params = PARAMS
    param_names = PARAM_NAMES
    timeout = 300

    def classifier(self):
        return _loopbp_classifier()

    def setup(self, case):
        self.cls = self.classifier()
        self.X, self.y = _data(CASES[case][0])
        self.time_fit(case)  # compile (or load the cache) and warm up

    def time_fit(self, case):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # max_iter reached, as asked
            _estimator(self.cls, case).fit(self.X, self.y)


class EstimatorFitSklearn(EstimatorFit):
    """scikit-learn: ``sklearn.neural_network.MLPClassifier(...).fit``, the same parameters."""

    def classifier(self):
        return _sklearn_classifier()


class EstimatorPredictProba:
    """loopbp: ``predict_proba`` of a fitted estimator on the 4000 training rows."""

    params = PARAMS
    param_names = PARAM_NAMES

    def classifier(self):
        return _loopbp_classifier()

    def setup(self, case):
        self.X, y = _data(CASES[case][0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = _estimator(self.classifier(), case).set_params(max_iter=1)
            self.clf = clf.fit(self.X, y)
        self.clf.predict_proba(self.X[:10])

    def time_predict_proba(self, case):
        self.clf.predict_proba(self.X)


class EstimatorPredictProbaSklearn(EstimatorPredictProba):
    """scikit-learn: ``predict_proba`` of its fitted estimator."""

    def classifier(self):
        return _sklearn_classifier()
