"""Numerical safety: σ and the cost for huge |z|, and training that diverges."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from conftest import wrap_training_kernel

import loopbp
from loopbp import reference, training
from loopbp.activations import sigmoid
from loopbp.costs import COSTS, cost_term, quadratic_cost_derivative

HUGE = [1e4, -1e4, 745.2, -745.2, 1e308, -1e308, np.inf, -np.inf, 0.0, -0.0, 36.7, -36.7]


@pytest.mark.parametrize("z", HUGE)
def test_compiled_sigmoid_is_finite_and_bounded(z):
    for value in (np.float64(z), np.float32(np.clip(z, -3e38, 3e38))):
        a = sigmoid(value)
        assert 0.0 <= a <= 1.0
    assert sigmoid(1e4) == 1.0 and sigmoid(-1e4) == 0.0 and sigmoid(0.0) == 0.5


def test_reference_sigmoid_raises_no_warning_for_huge_z():
    z = np.array(HUGE)
    z32 = np.clip(z, -3e38, 3e38).astype(np.float32)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        a = reference.sigmoid(z)
        a32 = reference.sigmoid(z32)
    for out in (a, a32):
        assert np.isfinite(out).all() and ((out >= 0) & (out <= 1)).all()
    assert a[0] == 1.0 and a[1] == 0.0 and a[6] == 1.0 and a[7] == 0.0


def test_cost_formulas_for_saturated_outputs():
    eps = np.finfo(np.float64).eps
    for a in (0.0, 1.0):
        for y in (0.0, 1.0):
            for code in COSTS.values():  # the logarithms take a clipped to [ε, 1 − ε]
                assert np.isfinite(cost_term(code, a, y, eps))
            assert np.isfinite(quadratic_cost_derivative(a, y))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", [1e4, 1e30, 1e300])
def test_network_with_huge_weights_stays_finite(dtype, scale):
    """z = ±huge in every layer: outputs saturate to 0/1, cost and gradients stay finite."""
    rng = np.random.default_rng(0)
    net = loopbp.Network([5, 4, 3], seed=0, dtype=dtype)
    for w in net.weights:
        w[...] = np.where(rng.random(w.shape) < 0.5, -1, 1) * min(scale, 1e38)
    X = rng.random((9, 5))
    y = rng.integers(0, 3, 9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = net.feedforward(X)
        cost = net.mean_cost(X, y)
        nabla_w, nabla_b = net.backprop(X, y)
    assert np.isfinite(out).all() and ((out >= 0) & (out <= 1)).all()
    assert np.isfinite(cost) and 0 <= cost <= 1.5
    assert all(np.isfinite(g).all() for g in nabla_w + nabla_b)
    if dtype == np.float64 and scale == 1e4:  # the oracle agrees (up to cancellation)
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            expected = reference.feedforward(net.weights, net.biases, X)[-1]
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-9)


def _diverges(net, X, Y, eta):
    before = [p.copy() for p in net.weights + net.biases]
    with pytest.raises(loopbp.TrainingDiverged) as info:
        net.sgd(X, Y, 3, 10, eta, progress=False)
    message = str(info.value)
    assert re.search(r"\bepoch 1\b", message) and "eta" in message and "too large" in message
    after = net.weights + net.biases
    assert all(np.isfinite(p).all() for p in after)  # never NaN weights
    # one stretch covered the whole epoch here: the parameters are the initial ones
    assert all(np.array_equal(p, q) for p, q in zip(before, after, strict=True))


def test_huge_targets_and_eta_diverge_cleanly_float64():
    X = np.random.default_rng(0).random((200, 4))
    _diverges(loopbp.Network([4, 8, 2], seed=0), X, np.full((200, 2), 1e300), 1e6)


def test_huge_targets_and_eta_diverge_cleanly_float32():
    X = np.random.default_rng(0).random((40, 4))
    net = loopbp.Network([4, 5, 3], seed=0, dtype=np.float32)
    _diverges(net, X, np.full((40, 3), 1e38), 1e6)


def test_cost_overflow_at_a_modest_eta_diverges_cleanly():
    """Targets of 1e200: the cost ½(y − a)² overflows to inf even with eta = 1."""
    X = np.random.default_rng(0).random((200, 4))
    _diverges(loopbp.Network([4, 8, 2], seed=0), X, np.full((200, 2), 1e200), 1.0)


def test_non_finite_parameters_are_refused_before_training():
    net = loopbp.Network([3, 2], seed=0)
    net.weights[0][0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        net.sgd(np.ones((4, 3)), [0, 1, 0, 1], 1, 2, 1.0, progress=False)


def test_divergence_restores_the_parameters_before_the_failing_stretch(monkeypatch):
    """A blow-up in epoch 3: TrainingDiverged names epoch 3; parameters are the last good."""
    monkeypatch.setattr(training, "ASSUMED_FLOPS", 1.0)  # one mini-batch per compiled call
    monkeypatch.setattr(training._Trainer, "_resize_calls", lambda self, batches, s: None)
    before_call: list[list[np.ndarray]] = []
    calls_per_epoch = 5  # 50 rows, batches of 10
    failing_call = 2 * calls_per_epoch + 3

    def wrap(real):
        def wrapper(weights, biases, *rest):
            before_call.append([a.copy() for a in list(weights) + list(biases)])
            cost = real(weights, biases, *rest)
            if len(before_call) == failing_call:
                weights[1][0, 0] = np.inf  # as if this stretch had overflowed
                biases[0][1] = np.nan
            return cost
        return wrapper

    wrap_training_kernel(monkeypatch, wrap)
    rng = np.random.default_rng(1)
    X = rng.random((50, 4))
    net = loopbp.Network([4, 6, 2], seed=0)
    with pytest.raises(loopbp.TrainingDiverged, match=r"epoch 3\b.*eta=2 .*too large"):
        net.sgd(X, X[:, :2], 10, 10, 2.0, progress=False)
    assert len(before_call) == failing_call
    good = before_call[-1]
    for p, q in zip(net.weights + net.biases, good, strict=True):
        assert np.array_equal(p, q)
    assert not np.array_equal(good[0], before_call[0][0])  # training had moved them
    # a divergent cost alone (finite parameters) is caught too
    monkeypatch.undo()

    def wrap_cost(real):
        return lambda *args: (real(*args), np.nan)[1]

    wrap_training_kernel(monkeypatch, wrap_cost)
    kept = [p.copy() for p in net.weights]
    with pytest.raises(loopbp.TrainingDiverged, match=r"epoch 1\b"):
        net.sgd(X, X[:, :2], 2, 10, 2.0, progress=False)
    assert all(np.array_equal(p, q) for p, q in zip(net.weights, kept, strict=True))


def test_cli_reports_divergence_with_exit_status_1(tmp_path, capsys, monkeypatch):
    from loopbp import cli

    def wrap(real):
        def blow_up(weights, biases, *rest):
            real(weights, biases, *rest)
            weights[0][0, 0] = np.nan
            return np.inf
        return blow_up

    wrap_training_kernel(monkeypatch, wrap)
    X = np.random.default_rng(0).random((30, 3))
    data = tmp_path / "data.npz"
    np.savez(data, X_train=X, y_train=np.arange(30) % 2, X_test=X[:4], y_test=[0, 1, 0, 1])
    code = cli.main(["train", "--data", str(data), "--sizes", "3", "4", "2", "--epochs", "3",
                     "--quiet", "--save", str(tmp_path / "net.npz")])
    err = capsys.readouterr().err
    assert code == 1 and "diverged in epoch 1" in err and "eta" in err
    assert not (tmp_path / "net.npz").exists()  # nothing is saved from a diverged run
