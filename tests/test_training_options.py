"""Training options: schedules, validation, early stopping, L2, exact resumes per optimizer.

Small cases worked by hand where the rule is arithmetic (schedules, the
early-stopping counter), and bitwise comparisons where the claim is "the same
run" (resuming from a checkpoint, with every optimizer and option).
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import zipfile
from fractions import Fraction

import numpy as np
import pytest
from conftest import wrap_training_kernel

import loopbp
from loopbp import schedules, training
from loopbp.early_stopping import EarlyStopping

SIZES = [6, 7, 3]


def _data(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, SIZES[0]))
    return X, (X[:, 0] * 3).astype(int) % SIZES[-1]


def _net(seed: int = 3, **model) -> loopbp.Network:
    model = {"activation": "relu", "output": "softmax", "cost": "log_likelihood",
             "init": "he", **model}
    return loopbp.Network(SIZES, seed=seed, **model)


def _same(a: loopbp.Network, b: loopbp.Network) -> bool:
    return all(np.array_equal(p, q) for p, q in
               zip(a.weights + a.biases, b.weights + b.biases, strict=True))


# --- schedules, worked by hand ------------------------------------------------------


def _rates(schedule: schedules.Schedule, eta0: float, epochs: int,
           observed: list[float] | None = None) -> list[float]:
    schedule.start(eta0, epochs)
    rates = []
    for e in range(epochs):
        rates.append(schedule.eta(e))
        if observed is not None:
            schedule.observe(e, observed[e])
    return rates


def test_constant_step_and_cosine_rates_by_hand():
    assert _rates(schedules.Constant(), 0.5, 3) == [0.5, 0.5, 0.5]
    assert _rates(schedules.Step(factor=0.5, interval=2), 1.0, 5) == [1, 1, 0.5, 0.5, 0.25]
    cosine = _rates(schedules.Cosine(eta_min=0.1), 1.1, 4)
    # η_min + ½(η₀ − η_min)(1 + cos(π e / 4)) for e = 0..3
    assert cosine == pytest.approx([1.1, 0.1 + 0.5 * (1 + math.sqrt(0.5)), 0.6,
                                    0.1 + 0.5 * (1 - math.sqrt(0.5))])


def test_plateau_cuts_after_patience_epochs_without_improvement():
    plateau = schedules.Plateau(factor=0.5, patience=2, threshold=0.01)
    costs = [1.0, 0.9, 0.895, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8]
    # epoch:  0    1    2      3    4    5    6    7    8
    # 0.895 is no improvement (threshold 0.01); epochs 2, 3 bad -> cut for epoch 4;
    # epoch 4 improves; 5, 6 bad -> cut for epoch 7; 7, 8 bad -> cut after 8
    assert _rates(plateau, 1.0, 9, costs) == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert plateau.state() == {"current": 0.125, "best": 0.8, "bad_epochs": 0}


def test_plateau_respects_min_eta_and_round_trips_its_state():
    plateau = schedules.Plateau(factor=0.1, patience=1, min_eta=0.05)
    assert _rates(plateau, 1.0, 4, [1.0, 1.0, 1.0, 1.0]) == [1.0, 1.0, 0.1, 0.05]
    again = schedules.from_dict(plateau.to_dict())
    assert again.state() == plateau.state() and again.params() == plateau.params()


def test_schedule_function_is_called_with_the_zero_based_epoch():
    seen = []
    net = _net()
    X, y = _data()
    history = net.sgd(X, y, 3, 16, 0.1, progress=False,
                      schedule=lambda e: seen.append(e) or 0.1 / (e + 1))
    assert seen == [0, 1, 2]
    assert history.eta == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_history_records_the_rate_of_each_epoch():
    net = _net(cost="quadratic", output="sigmoid")
    X, y = _data()
    history = net.sgd(X, y, 4, 16, 2.0, progress=False,
                      schedule=schedules.Step(factor=0.5, interval=1))
    assert history.eta == [2.0, 1.0, 0.5, 0.25]


def test_a_schedule_changes_training_exactly_as_setting_eta_per_epoch():
    """sgd with a step schedule == one sgd call per epoch at that epoch's rate."""
    X, y = _data()
    scheduled = _net()
    scheduled.sgd(X, y, 3, 8, 0.04, progress=False, schedule=schedules.Step(0.5, 1))
    by_hand = _net()
    for eta in (0.04, 0.02, 0.01):
        by_hand.sgd(X, y, 1, 8, eta, progress=False)
    assert _same(scheduled, by_hand)


@pytest.mark.parametrize("bad, error", [
    ("linear", ValueError), (3, TypeError), (schedules.Step, TypeError),
])
def test_bad_schedules_are_refused(bad, error):
    X, y = _data()
    with pytest.raises(error, match="schedule"):
        _net().sgd(X, y, 1, 8, 0.1, progress=False, schedule=bad)


@pytest.mark.parametrize("make, match", [
    (lambda: schedules.Step(factor=0), "factor"), (lambda: schedules.Step(interval=0), "interval"),
    (lambda: schedules.Plateau(factor=1.0), "factor"),
    (lambda: schedules.Plateau(patience=0), "patience"),
    (lambda: schedules.Cosine(eta_min=-1), "eta_min"),
    (lambda: schedules.Step(factor=float("nan")), "factor"),
])
def test_bad_schedule_parameters_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_schedule_function_returning_a_bad_rate_is_refused_before_training():
    X, y = _data()
    net = _net()
    before = [w.copy() for w in net.weights]
    with pytest.raises(ValueError, match="schedule function returned"):
        net.sgd(X, y, 2, 8, 0.1, progress=False, schedule=lambda e: -1.0)
    assert all(np.array_equal(w, v) for w, v in zip(net.weights, before))


# --- validation data and the stratified hold-out ---------------------------------


def test_validation_fraction_is_stratified_seeded_and_disjoint():
    labels = np.repeat(np.arange(3), [40, 20, 10])
    rows = training.holdout_rows(labels, 70, 0.2, np.random.default_rng(0))
    assert np.bincount(labels[rows]).tolist() == [8, 4, 2]  # 20% of each class
    again = training.holdout_rows(labels, 70, 0.2, np.random.default_rng(0))
    assert np.array_equal(rows, again) and np.all(np.diff(rows) > 0)
    with pytest.raises(ValueError, match="holds out 0"):
        training.holdout_rows(labels[:3], 3, 0.1, np.random.default_rng(0))


def test_validation_records_cost_and_accuracy_of_the_held_out_rows():
    X, y = _data(80)
    net = _net()
    history = net.sgd(X, y, 2, 8, 0.05, progress=False, validation_fraction=0.25,
                      optimizer="adam")
    record = history[-1]
    # 25% of each class, rounded per class
    expected = sum(math.floor(0.25 * count + 0.5) for count in np.bincount(y))
    assert record.validation_total == expected
    assert 0 <= record.validation_correct <= expected
    assert record.validation_cost > 0 and math.isfinite(record.validation_cost)


def test_validation_data_measures_exactly_what_the_network_gives():
    X, y = _data(80)
    X_val, y_val = _data(30, seed=7)
    net = _net()
    history = net.sgd(X, y, 2, 8, 0.05, progress=False, validation_data=(X_val, y_val))
    assert history[-1].validation_cost == pytest.approx(net.mean_cost(X_val, y_val), rel=1e-12)
    assert history[-1].validation_correct == net.evaluate(X_val, y_val)


def test_validation_with_regression_targets_has_a_cost_but_no_accuracy():
    rng = np.random.default_rng(1)
    X, Y = rng.random((40, 6)), rng.random((40, 3))
    net = loopbp.Network(SIZES, activation="tanh", output="identity", init="glorot", seed=0)
    history = net.sgd(X, Y, 2, 8, 0.05, progress=False, validation_fraction=0.2)
    assert history[-1].validation_cost is not None
    assert history[-1].validation_accuracy is None


# --- early stopping --------------------------------------------------------------


def test_early_stopping_counter_by_hand():
    rule = EarlyStopping(patience=2, min_delta=0.1)
    w, b = [np.zeros(2)], [np.zeros(1)]
    outcomes = []
    for epoch, value in enumerate([1.0, 0.95, 0.85, 0.9, 0.8], start=1):
        w[0][:] = epoch
        outcomes.append(rule.observe(epoch, value, w, b))
    # 0.95: not better by > 0.1; 0.85: better than 1.0 by 0.15; 0.9, 0.8: two bad epochs
    assert outcomes == [False, False, False, False, True]
    assert rule.best_epoch == 3 and rule.best == 0.85
    rule.restore(w, b)
    assert w[0].tolist() == [3.0, 3.0]


def test_early_stopping_on_accuracy_wants_it_higher():
    rule = EarlyStopping(patience=1, monitor="accuracy")
    w, b = [np.zeros(1)], [np.zeros(1)]
    assert not rule.observe(1, 0.5, w, b)
    assert not rule.observe(2, 0.6, w, b)
    assert rule.observe(3, 0.6, w, b) and rule.best_epoch == 2


def test_early_stopping_stops_and_restores_the_best_epoch(monkeypatch):
    """With a rate too large to improve, training stops after `patience` bad epochs."""
    X, y = _data(90)
    X_val, y_val = _data(40, seed=5)
    kept = {}
    real_observe = EarlyStopping.observe

    def spy(self, epoch, value, weights, biases):
        kept[epoch] = [a.copy() for a in weights + biases]
        return real_observe(self, epoch, value, weights, biases)

    monkeypatch.setattr(EarlyStopping, "observe", spy)
    net = _net()
    history = net.sgd(X, y, 40, 10, 0.05, progress=False, optimizer="adam",
                      validation_data=(X_val, y_val), early_stopping=3)
    costs = history.validation_cost
    best = int(np.argmin(costs)) + 1
    assert history.stopped_early and len(history) == best + 3 < 40
    assert history.best_epoch == best
    assert all(np.array_equal(p, q) for p, q in zip(net.weights + net.biases, kept[best]))
    assert net.mean_cost(X_val, y_val) == pytest.approx(costs[best - 1], rel=1e-12)


def test_early_stopping_needs_validation_and_sane_arguments():
    X, y = _data()
    net = _net()
    with pytest.raises(ValueError, match="early_stopping needs validation"):
        net.sgd(X, y, 2, 8, 0.1, progress=False, early_stopping=2)
    with pytest.raises(ValueError, match="early_stopping"):
        net.sgd(X, y, 2, 8, 0.1, progress=False, early_stopping=0, validation_fraction=0.2)
    with pytest.raises(TypeError, match="early_stopping"):
        net.sgd(X, y, 2, 8, 0.1, progress=False, early_stopping=2.5, validation_fraction=0.2)
    with pytest.raises(ValueError, match="monitor"):
        net.sgd(X, y, 2, 8, 0.1, progress=False, early_stopping=2, validation_fraction=0.2,
                monitor="loss")
    with pytest.raises(ValueError, match="min_delta"):
        net.sgd(X, y, 2, 8, 0.1, progress=False, early_stopping=2, validation_fraction=0.2,
                min_delta=-1)


# --- bad options, refused before any kernel runs -----------------------------------


@pytest.mark.parametrize("options, error, match", [
    ({"optimizer": "rmsprop"}, ValueError, "optimizer"),
    ({"optimizer": 1}, ValueError, "optimizer"),
    ({"momentum": 1.0, "optimizer": "momentum"}, ValueError, "momentum"),
    ({"momentum": -0.1}, ValueError, "momentum"),
    ({"momentum": float("nan")}, ValueError, "momentum"),
    ({"betas": (0.9,)}, TypeError, "betas"),
    ({"betas": (0.9, 1.5)}, ValueError, "betas"),
    ({"betas": "ab"}, TypeError, "betas"),
    ({"epsilon": 0.0}, ValueError, "epsilon"),
    ({"epsilon": "1e-8"}, TypeError, "epsilon"),
    ({"l2": -1.0}, ValueError, "l2"),
    ({"l2": float("nan")}, ValueError, "l2"),
    ({"l2": float("inf")}, ValueError, "l2"),
    ({"l2": "0.1"}, TypeError, "l2"),
    ({"validation_fraction": 0.0}, ValueError, "validation_fraction"),
    ({"validation_fraction": 1.0}, ValueError, "validation_fraction"),
    ({"validation_fraction": float("nan")}, ValueError, "validation_fraction"),
    ({"validation_fraction": "half"}, TypeError, "validation_fraction"),
    ({"validation_fraction": True}, TypeError, "validation_fraction"),
    ({"validation_data": (np.ones((3, 6)),)}, TypeError, "validation_data"),
    ({"validation_data": (np.ones((3, 5)), np.zeros(3, int))}, ValueError,
     r"validation_data\[0\]"),
    ({"validation_data": (np.ones((3, 6)), np.array([0, 1, 7]))}, ValueError,
     r"validation_data\[1\]"),
    ({"validation_data": (np.ones((3, 6)), np.zeros(3, int)), "validation_fraction": 0.2},
     ValueError, "either"),
])
def test_bad_training_options_are_refused_before_any_kernel_runs(monkeypatch, options, error,
                                                                 match):
    def fail(real):
        def never(*args):
            raise AssertionError("a kernel ran")
        return never

    wrap_training_kernel(monkeypatch, fail)
    X, y = _data()
    net = _net()
    before = [p.copy() for p in net.weights + net.biases]
    with pytest.raises(error, match=match):
        net.sgd(X, y, 1, 8, 0.1, progress=False, **options)
    assert all(np.array_equal(p, q) for p, q in zip(net.weights + net.biases, before))


@pytest.mark.parametrize("cost, output, Y, match", [
    ("log_likelihood", "softmax", np.full((4, 3), 0.5), "distribution"),
    ("log_likelihood", "softmax", np.array([[2.0, -1, 0]] * 4), r"\[0, 1\]"),
    ("cross_entropy", "sigmoid", np.full((4, 3), 1.5), r"\[0, 1\]"),
])
def test_targets_that_do_not_fit_the_cost_are_refused(cost, output, Y, match):
    net = loopbp.Network(SIZES, output=output, cost=cost, seed=0)
    X = np.ones((4, 6))
    with pytest.raises(ValueError, match=match):
        net.sgd(X, Y, 1, 2, 0.1, progress=False)
    with pytest.raises(ValueError, match=match):
        net.backprop(X, Y)


def test_l2_adds_its_term_to_the_recorded_cost_and_decays_weights():
    X, y = _data()
    plain, decayed = _net(), _net()
    h0 = plain.sgd(X, y, 1, 64, 0.1, progress=False)
    h1 = decayed.sgd(X, y, 1, 64, 0.1, progress=False, l2=5.0)
    # one full-batch step from the same start: the data cost part is the same
    penalty = 0.5 * 5.0 / 64 * sum(float(np.sum(w * w)) for w in decayed.weights)
    assert h1.cost[0] == pytest.approx(h0.cost[0] + penalty, rel=1e-12)
    start = _net()
    for w0, w_plain, w_decayed in zip(start.weights, plain.weights, decayed.weights):
        np.testing.assert_allclose(w_decayed, w_plain - 0.1 * (5.0 / 64) * w0, rtol=1e-12)
    for b_plain, b_decayed in zip(plain.biases, decayed.biases):  # biases are not decayed
        assert np.array_equal(b_plain, b_decayed)


# --- resuming is exact, with every optimizer and option ---------------------------------


RUNS = {
    "sgd": {"optimizer": "sgd", "eta": 0.5},
    "momentum+l2": {"optimizer": "momentum", "eta": 0.05, "l2": 0.5},
    "nesterov+step": {"optimizer": "nesterov", "eta": 0.05,
                      "schedule": schedules.Step(0.5, 2)},
    "adam+plateau+early": {"optimizer": "adam", "eta": 0.01,
                           "schedule": schedules.Plateau(0.5, 1),
                           "validation_fraction": 0.2, "early_stopping": 3},
    "adam+cosine+float32": {"optimizer": "adam", "eta": 0.01, "schedule": "cosine",
                            "dtype": np.float32},
}


def _options(name: str) -> tuple[dict, dict]:
    options = dict(RUNS[name])
    dtype = options.pop("dtype", np.float64)
    if isinstance(options.get("schedule"), schedules.Schedule):  # a fresh one per run
        schedule = options["schedule"]
        options["schedule"] = schedules.from_dict(schedule.to_dict())
    return options, {"dtype": dtype}


@pytest.mark.parametrize("name", list(RUNS))
def test_resuming_after_epoch_two_of_five_gives_the_same_run(tmp_path, monkeypatch, name):
    X, y = _data(70)
    options, model = _options(name)
    eta = options.pop("eta")
    straight = _net(**model)
    full = straight.sgd(X, y, 5, 8, eta, progress=False, **options)

    # the same run, checkpointed every 2 epochs; keep each checkpoint in its own file
    real_save = training.save_checkpoint
    monkeypatch.setattr(training, "save_checkpoint", lambda path, net, state: real_save(
        tmp_path / f"c{state.epochs_done}.npz", net, state))
    options, model = _options(name)
    options.pop("eta")
    _net(**model).sgd(X, y, 5, 8, eta, progress=False, checkpoint=tmp_path / "c.npz",
                      checkpoint_every=2, **options)
    monkeypatch.undo()
    path = tmp_path / "c2.npz"
    resumed, history = loopbp.resume(path, X, y, progress=False)
    assert _same(resumed, straight)
    assert [r.eta for r in history] == [r.eta for r in full]
    assert history.cost == full.cost and history.stopped_early == full.stopped_early
    assert history.validation_cost == full.validation_cost
    # the optimizer's step count is the number of mini-batches run
    n_train = len(X) - (full[0].validation_total or 0)
    state = loopbp.load_checkpoint(path)[1]
    assert state.optimizer.step == len(full) * math.ceil(n_train / 8)


@pytest.mark.skipif(signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
                    reason="needs Python's default SIGINT handler")
@pytest.mark.parametrize("name", ["momentum+l2", "adam+plateau+early"])
def test_ctrl_c_inside_an_epoch_resumes_exactly_with_optimizer_state(tmp_path, monkeypatch,
                                                                       name):
    X, y = _data(70)
    options, model = _options(name)
    eta = options.pop("eta")
    straight = _net(**model)
    straight.sgd(X, y, 3, 8, eta, progress=False, **options)

    monkeypatch.setattr(training, "ASSUMED_FLOPS", 1.0)  # one mini-batch per compiled call
    monkeypatch.setattr(training._Trainer, "_resize_calls", lambda self, batches, s: None)
    calls = [0]

    def wrap(real):
        def wrapper(*args):
            calls[0] += 1
            if calls[0] == 12:  # inside epoch 2 (7 or 8 mini-batches per epoch)
                os.kill(os.getpid(), signal.SIGINT)
            return real(*args)
        return wrapper

    wrap_training_kernel(monkeypatch, wrap)
    path = tmp_path / "c.npz"
    options, model = _options(name)
    options.pop("eta")
    net = _net(**model)
    history = net.sgd(X, y, 3, 8, eta, progress=False, checkpoint=path, **options)
    assert history.interrupted
    monkeypatch.undo()
    assert loopbp.load_checkpoint(path)[1].progress is not None
    resumed, _ = loopbp.resume(path, X, y, progress=False)
    assert _same(resumed, straight)


def test_sgd_resume_from_refuses_other_settings(tmp_path):
    X, y = _data()
    path = tmp_path / "c.npz"
    _net().sgd(X, y, 1, 8, 0.01, progress=False, optimizer="adam", checkpoint=path)
    with pytest.raises(ValueError, match="optimizer='adam'"):
        _net().sgd(X, y, 2, 8, 0.01, progress=False, resume_from=path)
    with pytest.raises(ValueError, match="schedule"):
        _net().sgd(X, y, 2, 8, 0.01, progress=False, optimizer="adam", schedule="cosine",
                   resume_from=path)
    with pytest.raises(ValueError, match="validation_fraction"):
        _net().sgd(X, y, 2, 8, 0.01, progress=False, optimizer="adam",
                   validation_fraction=0.2, resume_from=path)
    with pytest.raises(ValueError, match="holds"):
        loopbp.Network(SIZES, seed=0).sgd(X, y, 2, 8, 0.01, progress=False, optimizer="adam",
                                          resume_from=path)
    # the same settings continue it
    net = _net()
    assert len(net.sgd(X, y, 2, 8, 0.01, progress=False, optimizer="adam",
                       resume_from=path)) == 2


def test_a_callable_schedule_must_be_given_again_to_resume(tmp_path):
    X, y = _data()
    path = tmp_path / "c.npz"

    def halve(e):
        return 0.01 * 0.5 ** e

    straight = _net()
    straight.sgd(X, y, 3, 8, 0.01, progress=False, optimizer="adam", schedule=halve)
    _net().sgd(X, y, 1, 8, 0.01, progress=False, optimizer="adam", schedule=halve,
               checkpoint=path)
    with pytest.raises(ValueError, match="schedule function"):
        loopbp.resume(path, X, y, epochs=3, progress=False)
    resumed, history = loopbp.resume(path, X, y, epochs=3, progress=False, schedule=halve)
    assert _same(resumed, straight) and history.eta == [0.01, 0.005, 0.0025]


def test_a_run_that_stopped_early_stays_stopped_when_resumed(tmp_path):
    X, y = _data(90)
    path = tmp_path / "c.npz"
    net = _net()
    history = net.sgd(X, y, 40, 10, 0.05, progress=False, optimizer="adam",
                      validation_fraction=0.3, early_stopping=2, checkpoint=path)
    assert history.stopped_early
    resumed, again = loopbp.resume(path, X, y, progress=False)
    assert len(again) == len(history) and again.stopped_early
    assert _same(resumed, net)  # the best epoch's parameters, restored again


def test_version_1_checkpoints_still_resume(tmp_path):
    """A checkpoint from before optimizers existed resumes plain SGD exactly."""
    from loopbp import files

    X, y = _data()
    path = tmp_path / "c.npz"
    straight = loopbp.Network(SIZES, seed=2)
    straight.sgd(X, y, 3, 8, 1.0, progress=False)
    loopbp.Network(SIZES, seed=2).sgd(X, y, 1, 8, 1.0, progress=False, checkpoint=path)
    meta, arrays = files.read(path)
    training_meta = meta["state"]["training"]
    for key in ("l2", "schedule", "validation", "early_stopping"):
        del training_meta[key]
    del training_meta["optimizer"]["step"]
    training_meta["version"] = 1
    meta = {k: v for k, v in meta.items() if k not in ("activations", "cost", "init")}
    files.write_atomic(tmp_path / "v2.npz", meta, arrays)
    # write_atomic stamps the current format version: put version 1 back by hand
    with zipfile.ZipFile(tmp_path / "v2.npz") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    buffer = io.BytesIO()
    raw = dict(meta, version=1, format=files.FORMAT_NAME, arrays=sorted(arrays))
    np.save(buffer, np.frombuffer(json.dumps(raw).encode(), np.uint8))
    members["meta.json.npy"] = buffer.getvalue()
    with zipfile.ZipFile(tmp_path / "old.npz", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    resumed, _ = loopbp.resume(tmp_path / "old.npz", X, y, epochs=3, progress=False)
    assert _same(resumed, straight)


def test_a_checkpoint_path_that_cannot_be_written_is_refused_before_training(tmp_path):
    """Refused at the call, not after the first epochs have already changed the network."""
    net = loopbp.Network([3, 2, 2], seed=0)
    before = [w.copy() for w in net.weights]
    X, y = np.ones((4, 3)), [0, 1, 0, 1]
    with pytest.raises(ValueError, match="there is no folder"):
        net.sgd(X, y, 3, 2, 1.0, progress=False, checkpoint=tmp_path / "none" / "c.npz",
                checkpoint_every=2)
    with pytest.raises(ValueError, match="is a folder, not a file name"):
        net.sgd(X, y, 3, 2, 1.0, progress=False, checkpoint=tmp_path)
    assert all(np.array_equal(w, b) for w, b in zip(net.weights, before))


@pytest.mark.parametrize(("options", "error", "message"), [
    ({"eta": 10**400}, ValueError, "eta must be finite, got a int beyond the range"),
    ({"eta": Fraction(10**400)}, ValueError, "eta must be finite, got a Fraction beyond"),
    ({"optimizer": "adam", "betas": {0.9, 0.99}}, TypeError, "betas must be a pair"),
])
def test_hyperparameters_python_cannot_use_are_refused_by_name(options, error, message):
    net = loopbp.Network([3, 2, 2], seed=0)
    arguments = {"eta": 1.0, **options}
    eta = arguments.pop("eta")
    with pytest.raises(error, match=message):
        net.sgd(np.ones((4, 3)), [0, 1, 0, 1], 1, 2, eta, progress=False, **arguments)
