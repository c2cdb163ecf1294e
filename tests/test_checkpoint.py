"""Checkpoints: what they hold, and that resuming from one changes nothing.

A run stopped and resumed must end with parameters *bitwise* equal to those of
the same run done in one go; the tests compare with ``np.array_equal``.
"""

from __future__ import annotations

import json
import os
import re
import signal

import numpy as np
import pytest
from conftest import wrap_training_kernel

import loopbp
from loopbp import cli, files, training

SIZES = [6, 5, 3]


def _data(n: int = 57, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, SIZES[0]))
    return X, (X[:, 0] * 3).astype(int) % SIZES[-1]


def _same_parameters(a: loopbp.Network, b: loopbp.Network) -> bool:
    return all(np.array_equal(p, q) for p, q in
               zip(a.weights + a.biases, b.weights + b.biases, strict=True))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_two_plus_two_epochs_equal_four(tmp_path, dtype):
    """4 epochs straight == 2 epochs, checkpoint, resume to 4 (parameters, rng, history)."""
    X, y = _data()
    test = (X[:20], y[:20])
    straight = loopbp.Network(SIZES, seed=3, dtype=dtype)
    full = straight.sgd(X, y, 4, 7, 2.5, test_data=test, progress=False)

    path = tmp_path / "ckpt.npz"
    first = loopbp.Network(SIZES, seed=3, dtype=dtype)
    part = first.sgd(X, y, 2, 7, 2.5, test_data=test, progress=False, checkpoint=path)
    assert len(part) == 2 and not part.interrupted
    assert not _same_parameters(first, straight)  # the comparison below can fail

    resumed, history = loopbp.resume(path, X, y, epochs=4, test_data=test, progress=False)
    assert _same_parameters(resumed, straight)
    assert resumed.rng.bit_generator.state == straight.rng.bit_generator.state
    assert [r.epoch for r in history] == [1, 2, 3, 4]
    np.testing.assert_allclose(history.cost, full.cost, rtol=1e-12)
    assert [r.test_correct for r in history] == [r.test_correct for r in full]


def test_sgd_resume_from_into_a_fresh_network(tmp_path):
    """``net.sgd(..., resume_from=path)`` continues in place, also bitwise."""
    X, y = _data()
    straight = loopbp.Network(SIZES, seed=1)
    straight.sgd(X, y, 3, 4, 3.0, progress=False)
    path = tmp_path / "c.npz"
    loopbp.Network(SIZES, seed=1).sgd(X, y, 1, 4, 3.0, progress=False, checkpoint=path)
    fresh = loopbp.Network(SIZES, seed=99)  # other initial values: all are replaced
    history = fresh.sgd(X, y, 3, 4, 3.0, progress=False, resume_from=path)
    assert len(history) == 3
    assert _same_parameters(fresh, straight)
    # asking for no more epochs than were done trains nothing
    again = loopbp.Network(SIZES, seed=5)
    assert len(again.sgd(X, y, 1, 4, 3.0, progress=False, resume_from=path)) == 1
    assert _same_parameters(again, loopbp.load_checkpoint(path)[0])


def test_checkpoint_contents_and_schedule(tmp_path, monkeypatch):
    """Written every N epochs and after the last; holds all the training state."""
    written = []
    real = training.save_checkpoint

    def spy(path, net, state):
        written.append(state.epochs_done)
        real(path, net, state)

    monkeypatch.setattr(training, "save_checkpoint", spy)
    X, y = _data()
    net = loopbp.Network(SIZES, seed=2, dtype=np.float32)
    history = net.sgd(X, y, 5, 8, 1.5, progress=False, checkpoint=tmp_path / "c.npz",
                      checkpoint_every=2)
    assert written == [2, 4, 5]

    loaded, state = loopbp.load_checkpoint(tmp_path / "c.npz")
    assert _same_parameters(loaded, net) and loaded.dtype == np.float32
    assert loaded.rng.bit_generator.state == net.rng.bit_generator.state
    assert (state.epochs_done, state.epochs, state.mini_batch_size, state.eta,
            state.checkpoint_every) == (5, 5, 8, 1.5, 2)
    assert state.optimizer.name == "sgd" and state.optimizer.hyperparameters == {"eta": 1.5}
    assert state.progress is None
    assert state.history.to_dict() == history.to_dict()
    meta, _ = files.read(tmp_path / "c.npz")
    assert meta["kind"] == "checkpoint"
    # a checkpoint is also a network file
    assert _same_parameters(loopbp.Network.load(tmp_path / "c.npz"), net)
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temporary files


def test_optimizer_arrays_round_trip(tmp_path):
    """Optimizer state arrays and the step count round-trip through a checkpoint."""
    net = loopbp.Network(SIZES, seed=0)
    velocity = {f"v{i}": np.full_like(w, 0.25) for i, w in enumerate(net.weights)}
    velocity.update({f"vb{i}": np.full_like(b, -0.5) for i, b in enumerate(net.biases)})
    state = training.Checkpoint(
        epochs_done=0, epochs=3, mini_batch_size=4, eta=0.5, checkpoint_every=1,
        history=loopbp.History(),
        optimizer=training.OptimizerState("momentum", {"eta": 0.5, "momentum": 0.9}, velocity,
                                          step=17))
    training.save_checkpoint(tmp_path / "c.npz", net, state)
    _, back = loopbp.load_checkpoint(tmp_path / "c.npz")
    assert back.optimizer.hyperparameters == {"eta": 0.5, "momentum": 0.9}
    assert back.optimizer.step == 17
    assert sorted(back.optimizer.arrays) == sorted(velocity)
    for name, array in velocity.items():
        assert np.array_equal(back.optimizer.arrays[name], array)
    # a momentum checkpoint without its velocities is damaged
    state.optimizer.arrays = {}
    training.save_checkpoint(tmp_path / "bad.npz", net, state)
    with pytest.raises(loopbp.NetworkFileError, match="v0"):
        loopbp.load_checkpoint(tmp_path / "bad.npz")


def test_unknown_optimizer_and_newer_checkpoint_are_refused(tmp_path):
    net = loopbp.Network(SIZES, seed=0)
    state = training.Checkpoint(0, 1, 1, 1.0, 1, loopbp.History(),
                                training.OptimizerState("rmsprop", {}))
    training.save_checkpoint(tmp_path / "rmsprop.npz", net, state)
    with pytest.raises(loopbp.NetworkFileError, match="rmsprop"):
        loopbp.load_checkpoint(tmp_path / "rmsprop.npz")

    state.optimizer = training.OptimizerState()
    training.save_checkpoint(tmp_path / "ok.npz", net, state)
    meta, arrays = files.read(tmp_path / "ok.npz")
    meta["state"]["training"]["version"] = training.CHECKPOINT_VERSION + 1
    files.write_atomic(tmp_path / "new.npz", meta, arrays)
    with pytest.raises(loopbp.NetworkFileError, match="version"):
        loopbp.load_checkpoint(tmp_path / "new.npz")
    del meta["state"]["training"]["history"]
    meta["state"]["training"]["version"] = 1
    files.write_atomic(tmp_path / "broken.npz", meta, arrays)
    with pytest.raises(loopbp.NetworkFileError, match="training state"):
        loopbp.load_checkpoint(tmp_path / "broken.npz")


def test_resume_refuses_what_does_not_fit(tmp_path):
    X, y = _data()
    path = tmp_path / "c.npz"
    loopbp.Network(SIZES, seed=0).sgd(X, y, 1, 4, 1.0, progress=False, checkpoint=path)
    with pytest.raises(ValueError, match="other data"):
        loopbp.resume(path, X[:-1], y[:-1], epochs=2, progress=False)
    with pytest.raises(ValueError, match="other data"):
        loopbp.resume(path, X + 1e-9, y, epochs=2, progress=False)
    with pytest.raises(ValueError, match="cannot resume"):
        loopbp.Network([6, 4, 3], seed=0).sgd(X, y, 2, 4, 1.0, progress=False,
                                              resume_from=path)
    with pytest.raises(ValueError, match="cannot resume"):
        loopbp.Network(SIZES, dtype=np.float32).sgd(X, y, 2, 4, 1.0, progress=False,
                                                    resume_from=path)
    plain = tmp_path / "net.npz"
    loopbp.Network(SIZES).save(plain)
    with pytest.raises(loopbp.NetworkFileError, match="not a checkpoint"):
        loopbp.load_checkpoint(plain)
    with pytest.raises(FileNotFoundError):
        loopbp.load_checkpoint(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="checkpoint_every"):
        loopbp.Network(SIZES).sgd(X, y, 1, 4, 1.0, progress=False, checkpoint=path,
                                  checkpoint_every=0)
    with pytest.raises(TypeError, match="checkpoint"):
        loopbp.Network(SIZES).sgd(X, y, 1, 4, 1.0, progress=False, checkpoint=3.5)


def _stretches_of_one_batch(monkeypatch):
    """Make every compiled call run one mini-batch, so a stop can land inside an epoch."""
    monkeypatch.setattr(training, "ASSUMED_FLOPS", 1.0)
    monkeypatch.setattr(training._Trainer, "_resize_calls", lambda self, batches, s: None)


def _sigint_on_call(monkeypatch, calls: set[int]):
    """Send this process a real SIGINT from inside the given compiled calls (1-based)."""
    count = [0]

    def wrap(real):
        def wrapper(*args):
            count[0] += 1
            if count[0] in calls:
                os.kill(os.getpid(), signal.SIGINT)  # handled when the call has returned
            return real(*args)
        return wrapper

    wrap_training_kernel(monkeypatch, wrap)
    return count


@pytest.mark.skipif(signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
                    reason="needs Python's default SIGINT handler")
def test_ctrl_c_inside_an_epoch_checkpoints_and_resumes_exactly(tmp_path, monkeypatch):
    """Ctrl-C in epoch 2, mini-batch 3: the checkpoint records the place; resuming matches."""
    X, y = _data()  # 57 rows, batches of 5: 12 mini-batches per epoch
    straight = loopbp.Network(SIZES, seed=4)
    straight.sgd(X, y, 3, 5, 2.0, progress=False)

    _stretches_of_one_batch(monkeypatch)
    count = _sigint_on_call(monkeypatch, {12 + 3})
    path = tmp_path / "c.npz"
    net = loopbp.Network(SIZES, seed=4)
    history = net.sgd(X, y, 3, 5, 2.0, progress=False, checkpoint=path)
    assert history.interrupted and len(history) == 1 and count[0] == 15
    monkeypatch.undo()

    loaded, state = loopbp.load_checkpoint(path)
    assert _same_parameters(loaded, net)  # the checkpoint is the returned network
    assert state.epochs_done == 1 and state.progress is not None
    assert (state.progress.epoch, state.progress.next_batch) == (2, 3)
    assert sorted(state.progress.order) == list(range(len(X)))
    with pytest.raises(ValueError, match="mini_batch_size=5"):
        loopbp.Network(SIZES).sgd(X, y, 3, 6, 2.0, progress=False, resume_from=path)

    resumed, full = loopbp.resume(path, X, y, progress=False)
    assert _same_parameters(resumed, straight)
    assert [r.epoch for r in full] == [1, 2, 3] and not full.interrupted
    assert resumed.rng.bit_generator.state == straight.rng.bit_generator.state


def _data_file(tmp_path, n_train: int, n_test: int):
    """A two-class data file of 5 inputs (the label: one input above 0.5) for the CLI."""
    rng = np.random.default_rng(1)
    X = rng.random((n_train + n_test, 5))
    y = (X[:, 1] > 0.5).astype(int)
    data = tmp_path / "data.npz"
    np.savez(data, X_train=X[:n_train], y_train=y[:n_train], X_test=X[n_train:],
             y_test=y[n_train:])
    return data


def test_cli_checkpoint_and_resume_match_a_straight_run(tmp_path, capsys):
    data = _data_file(tmp_path, 60, 20)
    common = ["train", "--data", str(data), "--sizes", "5", "4", "2", "--batch-size", "6",
              "--eta", "2", "--quiet", "--seed", "7"]
    assert cli.main([*common, "--epochs", "4", "--save", str(tmp_path / "straight.npz")]) == 0
    ckpt = tmp_path / "ckpt.npz"
    assert cli.main([*common, "--epochs", "4", "--checkpoint", str(ckpt),
                     "--checkpoint-every", "2"]) == 0
    assert cli.main([*common, "--epochs", "2", "--checkpoint", str(ckpt)]) == 0
    assert loopbp.load_checkpoint(ckpt)[1].epochs_done == 2
    capsys.readouterr()
    assert cli.main(["train", "--data", str(data), "--resume", str(ckpt), "--epochs", "4",
                     "--quiet", "--save", str(tmp_path / "resumed.npz")]) == 0
    assert "resuming after epoch 2" in capsys.readouterr().out
    assert _same_parameters(loopbp.Network.load(tmp_path / "resumed.npz"),
                            loopbp.Network.load(tmp_path / "straight.npz"))
    assert loopbp.load_checkpoint(ckpt)[1].epochs_done == 4  # checkpoints went on to PATH
    # a resumed run keeps its network; other data is refused
    assert cli.main(["train", "--data", str(data), "--resume", str(ckpt), "--sizes", "5",
                     "9", "2", "--quiet"]) == 2
    assert cli.main(["train", "--resume", str(ckpt), "--quiet"]) == 2  # digits: other data
    assert cli.main(["train", "--data", str(data), "--resume", str(data), "--quiet"]) == 2
    assert cli.main(["train", "--data", str(data), "--checkpoint-every", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--sizes" in err and "not a loopbp network file" in err
    assert "--checkpoint-every needs --checkpoint" in err


# --- damaged training state: refused when the checkpoint is read ---------------------


def _damage(path, tmp_path, change):
    """A copy of the checkpoint ``path`` with ``change(training, arrays)`` applied."""
    meta, arrays = files.read(path)
    change(meta["state"]["training"], arrays)
    meta["arrays"] = sorted(arrays)
    damaged = tmp_path / "damaged.npz"
    # written by hand: write_atomic refuses NaN and infinity, which a damaged file may hold
    encoded = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(damaged, **{"meta.json": encoded}, **arrays)
    return damaged


@pytest.fixture(scope="module")
def full_checkpoint(tmp_path_factory):
    """Adam, a plateau schedule, a validation split and early stopping, after 3 epochs."""
    X, y = _data()
    path = tmp_path_factory.mktemp("full") / "c.npz"
    loopbp.Network(SIZES, seed=5).sgd(
        X, y, 3, 5, 0.05, optimizer="adam", schedule="plateau", validation_fraction=0.2,
        early_stopping=4, progress=False, checkpoint=path)
    return path


def test_the_full_checkpoint_loads_and_resumes(full_checkpoint, tmp_path):
    """The intact checkpoint the damage tests start from is accepted (so they test the damage)."""
    X, y = _data()
    _, state = loopbp.load_checkpoint(full_checkpoint)
    assert state.optimizer.name == "adam" and state.schedule["name"] == "plateau"
    assert state.validation_index is not None and state.early_stopping.best is not None
    same = _damage(full_checkpoint, tmp_path, lambda training, arrays: None)
    _, history = loopbp.resume(same, X, y, epochs=4, progress=False)
    assert len(history) == 4


def test_non_finite_kept_parameters_are_refused(full_checkpoint, tmp_path):
    """A NaN in best.w0 would be restored into the network when early stopping ends the run."""
    def change(training, arrays):
        arrays["best.w0"][0, 0] = np.nan
        training["early_stopping"]["best"] = -1e300  # no epoch beats it: the NaN comes back

    X, y = _data()
    with pytest.raises(loopbp.NetworkFileError, match=r"best\.w0"):
        loopbp.resume(_damage(full_checkpoint, tmp_path, change), X, y, epochs=6,
                      progress=False)


@pytest.mark.parametrize(("field", "key", "value"), [
    ("early_stopping.best", "best", float("inf")),
    ("early_stopping.best_epoch", "best_epoch", 9),  # after the 3 epochs done
    ("early_stopping.patience", "patience", 2.5),
    ("early_stopping.min_delta", "min_delta", -1.0),
    ("early_stopping.bad_epochs", "bad_epochs", -1),
])
def test_early_stopping_settings_out_of_range_are_refused(full_checkpoint, tmp_path, field,
                                                          key, value):
    def change(training, arrays):
        training["early_stopping"][key] = value

    with pytest.raises(loopbp.NetworkFileError, match=re.escape(field)):
        loopbp.load_checkpoint(_damage(full_checkpoint, tmp_path, change))


@pytest.mark.parametrize("step", [2**70, 2**63])
def test_a_step_count_beyond_int64_is_refused(full_checkpoint, tmp_path, step):
    """Training keeps the step in an int64: it used to fail there with OverflowError."""
    def change(training, arrays):
        training["optimizer"]["step"] = step

    with pytest.raises(loopbp.NetworkFileError, match=r"optimizer\.step"):
        loopbp.load_checkpoint(_damage(full_checkpoint, tmp_path, change))


@pytest.mark.parametrize("rows", ["negative", "all"])
def test_validation_rows_outside_the_data_are_refused(full_checkpoint, tmp_path, rows):
    """Negative rows held out other rows silently; holding out every row divided by zero."""
    n = _data()[0].shape[0]

    def change(training, arrays):
        arrays["validation.index"] = (np.array([-3, -2, -1, 0, 1]) if rows == "negative"
                                      else np.arange(n)).astype(np.int64)

    with pytest.raises(loopbp.NetworkFileError, match=r"validation\.index"):
        loopbp.load_checkpoint(_damage(full_checkpoint, tmp_path, change))


@pytest.mark.parametrize("fraction", [0.0, 1.5, "0.2"])
def test_a_validation_fraction_outside_0_1_is_refused(full_checkpoint, tmp_path, fraction):
    def change(training, arrays):
        training["validation"]["fraction"] = fraction

    with pytest.raises(loopbp.NetworkFileError, match=r"validation\.fraction"):
        loopbp.load_checkpoint(_damage(full_checkpoint, tmp_path, change))


def _plateau(params: dict | None = None, state: dict | None = None) -> dict:
    """A plateau schedule's to_dict, with some entries replaced."""
    return {"name": "plateau",
            "params": {"factor": 0.1, "patience": 5, "threshold": 0.0, "min_eta": 0.0,
                       **(params or {})},
            "state": {"current": 0.05, "best": 1.0, "bad_epochs": 0, **(state or {})}}


@pytest.mark.parametrize(("field", "schedule"), [
    ("schedule.state.current", _plateau(state={"current": -5.0})),  # trained uphill
    ("schedule.state.best", _plateau(state={"best": float("nan")})),
    ("schedule.state.bad_epochs", _plateau(state={"bad_epochs": -2})),
    ("factor", _plateau(params={"factor": 1.5})),
    ("patience", _plateau(params={"patience": 0})),
    ("min_eta", _plateau(params={"min_eta": -1.0})),
    ("schedule.params", {**_plateau(), "params": [0.1, 5, 0.0, 0.0]}),
    ("schedule.params", {"name": "step", "params": [1], "state": {}}),
    ("schedule.params", {"name": "step", "params": {"factor": 0.5}, "state": {}}),
    ("factor", {"name": "step", "params": {"factor": -0.5, "interval": 2}, "state": {}}),
    ("eta_min", {"name": "cosine", "params": {"eta_min": 1.0}, "state": {}}),  # eta is 0.05
    ("schedule.state", {"name": "constant", "params": {}, "state": {"current": 1.0}}),
    ("schedule.name", {"name": "", "params": {}, "state": {}}),
    ("schedule.params", {"name": "warmup", "params": [5], "state": {}}),
])
def test_schedule_params_and_state_out_of_range_are_refused(full_checkpoint, tmp_path, field,
                                                            schedule):
    """Rates must be finite and > 0, params a mapping with the schedule's own keys."""
    def change(training, arrays):
        training["schedule"] = schedule

    with pytest.raises(loopbp.NetworkFileError, match=re.escape(field)):
        loopbp.load_checkpoint(_damage(full_checkpoint, tmp_path, change))


@pytest.mark.parametrize("schedule", [
    _plateau(state={"current": 0.0}),  # min_eta = 0 reached after hundreds of cuts
    {"name": "warmup", "params": {"steps": 5}, "state": {"done": 2}},  # a user's own schedule
])
def test_schedules_a_run_can_write_load(full_checkpoint, tmp_path, schedule):
    def change(training, arrays):
        training["schedule"] = schedule

    _, checkpoint = loopbp.load_checkpoint(_damage(full_checkpoint, tmp_path, change))
    assert checkpoint.schedule == schedule


def test_cli_resume_with_schedule_params_not_a_mapping_fails_cleanly(tmp_path, capsys):
    """``train --resume`` used to crash with AttributeError on ``params.get``."""
    data = _data_file(tmp_path, 30, 10)
    ckpt = tmp_path / "ckpt.npz"
    assert cli.main(["train", "--data", str(data), "--sizes", "5", "4", "2", "--epochs", "1",
                     "--batch-size", "6", "--eta", "2", "--quiet", "--schedule", "step",
                     "--checkpoint", str(ckpt)]) == 0

    def change(training, arrays):
        training["schedule"]["params"] = [1]

    damaged = _damage(ckpt, tmp_path, change)
    capsys.readouterr()
    assert cli.main(["train", "--data", str(data), "--resume", str(damaged), "--epochs", "2",
                     "--quiet"]) == 2
    assert "schedule.params" in capsys.readouterr().err


def test_a_negative_adam_second_moment_is_refused(full_checkpoint, tmp_path):
    """Adam's v is a mean of squares: a negative entry made √v̂ NaN (TrainingDiverged)."""
    def change(training, arrays):
        arrays["optimizer.v0"][0, 0] = -1.0

    with pytest.raises(loopbp.NetworkFileError, match="v0"):
        loopbp.load_checkpoint(_damage(full_checkpoint, tmp_path, change))


@pytest.mark.parametrize(("field", "hyperparameters"), [
    ("betas", {"betas": 5}),  # was TypeError: 'int' object is not iterable
    ("betas", {"betas": [0.9]}),
    ("betas", {"betas": [0.9, 1.5]}),
    ("epsilon", {"epsilon": -1e-8}),
    ("eta", {"eta": float("nan")}),
    ("momentum", {"momentum": 0.9}),  # not a hyperparameter of Adam
])
def test_optimizer_hyperparameters_out_of_range_are_refused(full_checkpoint, tmp_path, field,
                                                            hyperparameters):
    def change(training, arrays):
        training["optimizer"]["hyperparameters"].update(hyperparameters)

    with pytest.raises(loopbp.NetworkFileError, match=re.escape(field)):
        loopbp.load_checkpoint(_damage(full_checkpoint, tmp_path, change))


@pytest.mark.parametrize(("field", "data"), [
    ("data.X_shape", {"X_shape": [-57, 6]}),
    ("data", {"extra": 1}),
])
def test_a_damaged_data_fingerprint_is_refused(full_checkpoint, tmp_path, field, data):
    """The fingerprint gives the row count the validation rows are checked against."""
    def change(training, arrays):
        training["data"].update(data)

    with pytest.raises(loopbp.NetworkFileError, match=re.escape(field)):
        loopbp.load_checkpoint(_damage(full_checkpoint, tmp_path, change))


def test_validation_rows_of_a_checkpoint_without_a_fingerprint_are_checked_on_resume(tmp_path):
    """Without a data fingerprint the row count is unknown at load; resuming checks the
    held-out rows against the data given (all rows held out would leave none to train on)."""
    net = loopbp.Network(SIZES, seed=0)
    X = np.random.default_rng(0).random((8, SIZES[0]))
    y = np.arange(8) % SIZES[-1]
    for index, message in ((np.arange(8), "leave at least one"), (np.array([2, 9]), "0..7")):
        state = training.Checkpoint(0, 2, 4, 0.5, 1, loopbp.History(), training.OptimizerState(),
                                    validation_index=index.astype(np.int64),
                                    validation_fraction=0.25)
        training.save_checkpoint(tmp_path / "c.npz", net, state)
        with pytest.raises(ValueError, match=f"validation rows do not fit the data: .*{message}"):
            loopbp.resume(tmp_path / "c.npz", X, y, epochs=2)
