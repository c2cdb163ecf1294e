"""Ctrl-C: training stops between mini-batches, consistent, and nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import wrap_training_kernel

import loopbp
from loopbp import training

needs_default_handler = pytest.mark.skipif(
    signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="needs Python's default SIGINT handler")


def _data(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.random((n, 4))
    return X, (X[:, 0] > 0.5).astype(int)


def _one_batch_per_call(monkeypatch):
    monkeypatch.setattr(training, "ASSUMED_FLOPS", 1.0)
    monkeypatch.setattr(training._Trainer, "_resize_calls", lambda self, batches, s: None)


def _recording_kernel(monkeypatch, sigint_on: set[int]):
    """Wrap the compiled trainer: snapshot parameters after each call, SIGINT on some."""
    after: list[list[np.ndarray]] = []

    def wrap(real):
        def wrapper(weights, biases, *rest):
            if len(after) + 1 in sigint_on:
                os.kill(os.getpid(), signal.SIGINT)  # Python runs the handler after the call
            cost = real(weights, biases, *rest)
            after.append([a.copy() for a in list(weights) + list(biases)])
            return cost
        return wrapper

    wrap_training_kernel(monkeypatch, wrap)
    return after


@needs_default_handler
def test_sigint_stops_at_a_mini_batch_boundary(monkeypatch):
    """The parameters returned are exactly those after the last finished compiled call."""
    _one_batch_per_call(monkeypatch)
    after = _recording_kernel(monkeypatch, sigint_on={7})
    X, y = _data()
    net = loopbp.Network([4, 5, 2], seed=0)
    history = net.sgd(X, y, 50, 6, 3.0, progress=False)  # 10 mini-batches per epoch
    assert history.interrupted
    assert len(after) == 7  # the call running when Ctrl-C came finished; no new one began
    assert len(history) == 0  # epoch 1 was not finished
    for p, q in zip(net.weights + net.biases, after[-1], strict=True):
        assert np.array_equal(p, q)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    # the network is usable and training can go on
    assert np.isfinite(net.feedforward(X)).all()
    assert len(net.sgd(X, y, 1, 6, 3.0, progress=False)) == 1


@needs_default_handler
def test_sigint_at_the_end_of_an_epoch_keeps_the_epoch(monkeypatch):
    _one_batch_per_call(monkeypatch)
    _recording_kernel(monkeypatch, sigint_on={10})  # the last mini-batch of epoch 1
    X, y = _data()
    history = loopbp.Network([4, 5, 2], seed=0).sgd(X, y, 5, 6, 3.0, progress=False)
    assert history.interrupted and [r.epoch for r in history] == [1]


@needs_default_handler
def test_second_sigint_raises_at_once_and_is_still_caught(monkeypatch):
    """Two Ctrl-C: the second raises KeyboardInterrupt, which sgd turns into a return."""
    _one_batch_per_call(monkeypatch)

    def wrap(real):
        def twice(*args):
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            return real(*args)
        return twice

    wrap_training_kernel(monkeypatch, wrap)
    X, y = _data()
    net = loopbp.Network([4, 5, 2], seed=0)
    history = net.sgd(X, y, 5, 6, 3.0, progress=False)
    assert history.interrupted
    assert all(np.isfinite(p).all() for p in net.weights + net.biases)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _write_data(path, n_train: int = 20000, width: int = 64, classes: int = 10) -> None:
    rng = np.random.default_rng(0)
    X = rng.random((n_train + 500, width))
    y = rng.integers(0, classes, n_train + 500)
    np.savez(path, X_train=X[:n_train], y_train=y[:n_train], X_test=X[n_train:],
             y_test=y[n_train:])


def _wait_for(path, process, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"training ended early ({process.returncode}):\n{out}\n{err}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("training did not write its first checkpoint in time")
        time.sleep(0.05)


def test_real_sigint_to_loopbp_train_saves_a_consistent_network(tmp_path):
    """``python -m loopbp train`` gets a real SIGINT mid-run: exit 130, files load, resume works."""
    data, out, ckpt = tmp_path / "data.npz", tmp_path / "net.npz", tmp_path / "ckpt.npz"
    _write_data(data)
    command = [sys.executable, "-m", "loopbp", "train", "--data", str(data), "--epochs",
               "100000", "--sizes", "64", "32", "10", "--batch-size", "10", "--eta", "0.5",
               "--threads", "1", "--quiet", "--save", str(out), "--checkpoint", str(ckpt)]
    # a shell's background job starts with SIGINT ignored, which Python then keeps:
    # give the child the default disposition, as a terminal would
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for(ckpt, process, seconds=120)  # epoch 1 done: training is under way
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted after" in stdout and "test accuracy:" in stdout
    assert "Traceback" not in stderr

    net = loopbp.Network.load(out)
    assert net.sizes == [64, 32, 10]
    assert all(np.isfinite(p).all() for p in net.weights + net.biases)
    saved, state = loopbp.load_checkpoint(ckpt)
    # the checkpoint written on Ctrl-C and the saved network are the same point of training
    for p, q in zip(net.weights + net.biases, saved.weights + saved.biases, strict=True):
        assert np.array_equal(p, q)
    assert state.epochs_done >= 1 and state.history.interrupted is False
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []

    # and the run continues from there
    target = state.epochs_done + 1
    resumed = subprocess.run(
        [sys.executable, "-m", "loopbp", "train", "--data", str(data), "--resume", str(ckpt),
         "--epochs", str(target), "--threads", "1", "--quiet"],
        capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"finished {target} epoch(s)" in resumed.stdout
    assert loopbp.load_checkpoint(ckpt)[1].epochs_done == target
