"""The ``loopbp`` command, end to end: ``train``, ``evaluate``, ``predict``, learning curves."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import loopbp
from loopbp import cli, datasets, kernels, schedules
from loopbp.history import EpochRecord, History

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write_data(path, n: int = 120, width: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """A learnable two-class problem (the label is one input's side of 0.5), written as .npz."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, width))
    y = (X[:, 0] > 0.5).astype(int)
    split = 3 * n // 4
    data = {"X_train": X[:split], "y_train": y[:split], "X_test": X[split:], "y_test": y[split:]}
    np.savez(path, **data)
    return data


def _same_parameters(a: loopbp.Network, b: loopbp.Network) -> bool:
    return all(np.array_equal(p, q) for p, q in zip(a.weights + a.biases, b.weights + b.biases,
                                                    strict=True))


def _trained_net(data: dict[str, np.ndarray], **network) -> loopbp.Network:
    net = loopbp.Network([6, 8, 2], seed=1, **network)
    net.sgd(data["X_train"], data["y_train"], 10, 5, 2.0, progress=False)
    return net


# --- train: what there was before ------------------------------------------------------


def test_train_on_own_data_file_and_save(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.random((120, 6))
    y = (X[:, 0] > 0.5).astype(int)  # learnable: the label is one input's side of 0.5
    data = tmp_path / "data.npz"
    np.savez(data, X_train=X[:90], y_train=y[:90], X_test=X[90:], y_test=y[90:])
    out = tmp_path / "net.npz"
    code = cli.main(["train", "--data", str(data), "--epochs", "20", "--batch-size", "5",
                     "--eta", "2", "--sizes", "6", "8", "2", "--save", str(out), "--quiet",
                     "--threads", "1", "--dtype", "float32"])
    assert code == 0
    text = capsys.readouterr().out
    assert "test accuracy:" in text and "finished 20 epoch(s)" in text
    net = loopbp.Network.load(out)
    assert net.sizes == [6, 8, 2] and net.dtype == np.float32
    assert net.evaluate(X[90:], y[90:]) >= 25  # clearly better than chance (15/30)


@pytest.mark.parametrize("argv", [
    ["train", "--epochs", "-1"], ["train", "--eta", "nan"], ["train", "--batch-size", "0"],
    ["train", "--sizes", "0"], ["train", "--dtype", "int8"], ["nonsense"],
    ["train", "--optimizer", "rmsprop"], ["train", "--schedule", "linear"],
    ["train", "--cost", "hinge"], ["train", "--output", "softplus"], ["train", "--init", "zeros"],
    ["train", "--monitor", "loss"], ["train", "--validation-fraction", "1"],
    ["train", "--validation-fraction", "0"], ["train", "--early-stopping", "0"],
    ["train", "--l2", "-1"], ["train", "--momentum", "1"], ["train", "--betas", "0.9"],
    ["train", "--betas", "0.9", "1.0"], ["train", "--step-factor", "0"],
    ["train", "--step-factor", "1.5"], ["train", "--step-interval", "0"],
    ["train", "--eta-min", "-0.1"], ["train", "--plateau-factor", "1"],
    ["train", "--plateau-patience", "0"], ["train", "--activation"],
    ["evaluate"], ["predict", "net.npz"], ["predict", "net.npz", "x.npy", "--bogus"],
])
def test_bad_options_exit_with_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_mismatched_sizes_are_reported(tmp_path, capsys):
    data = tmp_path / "data.npz"
    np.savez(data, X_train=np.ones((4, 3)), y_train=[0, 1, 0, 1], X_test=np.ones((2, 3)),
             y_test=[0, 1])
    assert cli.main(["train", "--data", str(data), "--sizes", "5", "2", "--quiet"]) == 2
    assert "3 columns" not in capsys.readouterr().out
    data_bad = tmp_path / "bad.npz"
    np.savez(data_bad, X_train=np.ones((4, 3)))
    assert cli.main(["train", "--data", str(data_bad)]) == 2
    assert "lacks y_train" in capsys.readouterr().err
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(data.read_bytes()[:-40])
    assert cli.main(["train", "--data", str(damaged)]) == 2
    assert "cannot read data file" in capsys.readouterr().err
    assert cli.main(["train", "--data", str(tmp_path / "missing.npz")]) == 2
    assert "no data file" in capsys.readouterr().err
    single = tmp_path / "single.npy"  # a plain .npy, not named arrays
    np.save(single, np.ones((4, 3)))
    assert cli.main(["train", "--data", str(single)]) == 2
    assert "holds a single array" in capsys.readouterr().err
    complex_data = tmp_path / "complex.npz"
    np.savez(complex_data, X_train=np.ones((4, 3)) * 1j, y_train=[0, 1, 0, 1],
             X_test=np.ones((2, 3)), y_test=[0, 1])
    model = tmp_path / "model.npz"
    loopbp.Network([3, 2, 2], seed=0).save(model)
    for command in (["train"], ["evaluate", str(model)]):
        assert cli.main([*command, "--data", str(complex_data)]) == 2
        assert "must hold real numbers" in capsys.readouterr().err


def test_a_network_too_large_for_memory_is_a_bad_option(capsys, monkeypatch):
    from loopbp import network

    def out_of_memory(*args, **kwargs):
        raise MemoryError  # as NumPy raises it; nothing is allocated (a host may overcommit)

    monkeypatch.setattr(network, "initial_parameters", out_of_memory)
    assert cli.main(["train", "--sizes", "64", "99999999999", "10", "--quiet"]) == 2
    assert "out of memory" in capsys.readouterr().err


@pytest.mark.slow
def test_main_job_reaches_95_percent_on_digits():
    """``python -m loopbp train`` with no options: the derivations' settings on digits."""
    result = subprocess.run([sys.executable, "-m", "loopbp", "train"], capture_output=True,
                            text=True, timeout=600, check=True)
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("test accuracy:")
    correct, total = (int(v) for v in last.split()[2].split("/"))
    assert total == 450 and correct / total >= 0.95, last
    assert "epoch 30/30" in result.stdout  # per-epoch lines
    assert "training: 100%" in result.stderr  # the progress bar


# --- train: the defaults are still the derivations' run ----------------------------------


@pytest.mark.parametrize("argv", [[], ["train"], ["train", "--data", "digits"]])
def test_no_options_is_the_derivations_run(argv, monkeypatch, capsys):
    """Every setting ``sgd`` receives equals today's defaults; the network is seed 0's."""
    from loopbp import training

    calls = []

    def recorder(net, X, Y, epochs, mini_batch_size, eta, **options):
        calls.append((net, X, Y, epochs, mini_batch_size, eta, options))
        return History()

    monkeypatch.setattr(training, "sgd", recorder)
    assert cli.main(argv) == 0
    net, X, Y, epochs, batch, eta, options = calls[-1]  # earlier calls: the kernel warm-up
    assert all(call[0] is not net for call in calls[:-1])  # the warm-up trains a probe only
    digits = datasets.load_digits()
    assert np.array_equal(X, digits["X_train"]) and np.array_equal(Y, digits["y_train"])
    assert np.array_equal(options.pop("test_data")[0], digits["X_test"])
    assert (net.sizes, net.activations, net.cost, net.init, net.dtype, net.seed) == (
        [64, 30, 10], ["sigmoid", "sigmoid"], "quadratic", "normal", np.float64, 0)
    assert _same_parameters(net, loopbp.Network([64, 30, 10], seed=0))
    assert (epochs, batch, eta) == (30, 10, 3.0)
    schedule = options.pop("schedule")
    assert isinstance(schedule, schedules.Constant)
    assert options == {"optimizer": "sgd", "momentum": 0.9, "betas": (0.9, 0.999),
                       "epsilon": 1e-8, "l2": 0.0, "validation_fraction": None,
                       "early_stopping": None, "monitor": "cost", "min_delta": 0.0,
                       "progress": True, "n_threads": None, "checkpoint": None,
                       "checkpoint_every": 1, "resume_from": None}
    out = capsys.readouterr().out
    assert "training [64, 30, 10] on digits (1347 train / 450 test), 30 epochs, mini-batch " \
           "10, eta 3, float64" in out
    assert "network: sigmoid hidden, sigmoid output, quadratic cost, normal init; optimizer " \
           "sgd, constant learning rate" in out


def test_builtin_data_sets_by_name(tmp_path, monkeypatch, capsys):
    assert cli.BUILTIN_DATA == {"digits": datasets.load_digits,
                                "mnist1d": datasets.load_mnist1d}
    small = _write_data(tmp_path / "unused.npz", n=80, width=40)
    monkeypatch.setitem(cli.BUILTIN_DATA, "mnist1d", lambda: small)  # generating takes seconds
    assert cli.main(["train", "--data", "mnist1d", "--epochs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "training [40, 30, 2] on mnist1d (60 train / 20 test)" in out


# --- train: new options -----------------------------------------------------------------


def test_parser_reads_every_new_option():
    args = cli.build_parser().parse_args([
        "train", "--data", "mnist1d", "--activation", "relu", "tanh", "--output", "softmax",
        "--cost", "log_likelihood", "--init", "he", "--optimizer", "adam", "--betas", "0.8",
        "0.99", "--l2", "0.01", "--schedule", "plateau", "--plateau-factor", "0.5",
        "--plateau-patience", "2", "--validation-fraction", "0.1", "--early-stopping", "3",
        "--monitor", "accuracy", "--plot", "c.png"])
    assert args.data == "mnist1d" and args.activation == ["relu", "tanh"]
    assert (args.output, args.cost, args.init) == ("softmax", "log_likelihood", "he")
    assert (args.optimizer, args.betas, args.l2) == ("adam", [0.8, 0.99], 0.01)
    assert (args.schedule, args.plateau_factor, args.plateau_patience) == ("plateau", 0.5, 2)
    assert (args.validation_fraction, args.early_stopping, args.monitor) == (0.1, 3, "accuracy")
    assert args.plot == "c.png"
    args = cli.build_parser().parse_args(["train", "--optimizer", "nesterov", "--momentum",
                                          "0.5", "--schedule", "step", "--step-factor", "1",
                                          "--step-interval", "4"])
    assert (args.momentum, args.step_factor, args.step_interval) == (0.5, 1.0, 4)
    args = cli.build_parser().parse_args(["train", "--schedule", "cosine", "--eta-min", "0"])
    assert args.eta_min == 0.0
    defaults = cli.build_parser().parse_args(["train"])
    for option in ("data", "activation", "output", "cost", "init", "optimizer", "momentum",
                   "betas", "l2", "schedule", "step_factor", "step_interval", "eta_min",
                   "plateau_factor", "plateau_patience", "validation_fraction",
                   "early_stopping", "monitor", "plot"):
        assert getattr(defaults, option) is None, option


@pytest.mark.parametrize("options, message", [
    (["--early-stopping", "2"], "--early-stopping needs --validation-fraction"),
    (["--validation-fraction", "0.2", "--monitor", "accuracy"],
     "--monitor chooses what --early-stopping watches"),
    (["--momentum", "0.5"], "--momentum applies to --optimizer momentum or nesterov, not sgd"),
    (["--optimizer", "adam", "--momentum", "0.5"], "--momentum applies to"),
    (["--optimizer", "momentum", "--betas", "0.9", "0.99"],
     "--betas applies to --optimizer adam, not momentum"),
    (["--step-factor", "0.5"], "--step-factor applies to --schedule step, not constant"),
    (["--schedule", "cosine", "--step-interval", "2"], "--step-interval applies to --schedule"),
    (["--schedule", "step", "--eta-min", "0.1"], "--eta-min applies to --schedule cosine"),
    (["--schedule", "cosine", "--plateau-patience", "3"],
     "--plateau-patience applies to --schedule plateau, not cosine"),
    (["--plateau-factor", "0.5"], "--plateau-factor applies to --schedule plateau"),
    (["--schedule", "cosine", "--eta-min", "5"],
     "--eta-min 5 must be below the learning rate (--eta 3)"),
    (["--optimizer", "adam", "--schedule", "cosine", "--eta-min", "0.01"],
     "--eta-min 0.01 must be below the learning rate (--eta 0.001)"),
    (["--activation", "softmax"], "for the output layer only (--output softmax)"),
    (["--activation", "swish"], "--activation: unknown 'swish'"),
    (["--sizes", "6", "8", "8", "2", "--activation", "relu", "tanh", "relu"],
     "one per hidden layer (2 for 6 8 8 2), got 3"),
    (["--activation", "relu", "tanh"], "(1 for the default sizes), got 2"),
    (["--sizes", "6"], "--sizes needs at least two layers"),
    (["--cost", "log_likelihood", "--output", "sigmoid"],
     "--cost log_likelihood needs --output softmax, got --output sigmoid"),
    (["--cost", "cross_entropy", "--output", "softmax"],
     "--cost cross_entropy needs --output sigmoid"),
    (["--plot", "{tmp}/curves.jpg"], "must end in .png, .svg, .pdf"),
    (["--plot", "{tmp}/missing/curves.png"], "there is no folder"),
    (["--save", "{tmp}"], "is a folder, not a file name"),
    (["--checkpoint", "{tmp}/missing/ckpt.npz"], "--checkpoint"),
])
def test_bad_combinations_are_refused_before_loading_data(options, message, tmp_path,
                                                          monkeypatch, capsys):
    def no_data(name):
        raise AssertionError("the options should have been refused first")

    monkeypatch.setattr(cli, "_load_data", no_data)
    argv = ["train", *(o.replace("{tmp}", str(tmp_path)) for o in options)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("loopbp train: error: ") and message in err, err


def test_problems_found_with_the_data_are_refused(tmp_path, capsys):
    data = tmp_path / "data.npz"
    _write_data(data)
    assert cli.main(["train", "--data", str(data), "--sizes", "5", "4", "2", "--quiet"]) == 2
    assert ("--sizes: the input layer has 5 neurons but the data's examples have 6 values"
            in capsys.readouterr().err)
    assert cli.main(["train", "--data", str(data), "--sizes", "6", "4", "1", "--quiet"]) == 2
    assert "the output layer has 1 neurons but the labels go up to 1 (2 classes)" in \
        capsys.readouterr().err
    # the library's own refusal, reported the same way: no rows would be held out
    assert cli.main(["train", "--data", str(data), "--validation-fraction", "0.001",
                     "--quiet"]) == 2
    assert "holds out 0 of 90 training rows" in capsys.readouterr().err


# each case: CLI options, and the same settings as sgd keyword arguments
SETTINGS = [
    (["--optimizer", "momentum", "--momentum", "0.5", "--schedule", "step", "--step-factor",
      "0.5", "--step-interval", "2"],
     {"optimizer": "momentum", "momentum": 0.5, "schedule": schedules.Step(0.5, 2)}),
    (["--optimizer", "nesterov", "--schedule", "cosine", "--eta-min", "0.1", "--l2", "0.01"],
     {"optimizer": "nesterov", "schedule": schedules.Cosine(0.1), "l2": 0.01}),
    (["--optimizer", "adam", "--betas", "0.8", "0.99", "--schedule", "plateau",
      "--plateau-factor", "0.5", "--plateau-patience", "1"],
     {"optimizer": "adam", "betas": (0.8, 0.99), "schedule": schedules.Plateau(0.5, 1)}),
    (["--l2", "0.1"], {"l2": 0.1}),
]


@pytest.mark.parametrize("options, settings", SETTINGS)
def test_training_options_reach_sgd(options, settings, tmp_path, capsys):
    """The CLI's run and the library's run with the same settings end bitwise equal."""
    path = tmp_path / "data.npz"
    data = _write_data(path)
    out = tmp_path / "net.npz"
    assert cli.main(["train", "--data", str(path), "--sizes", "6", "8", "8", "2",
                     "--activation", "tanh", "relu", "--cost", "log_likelihood", "--init",
                     "glorot", "--eta", "0.5", "--epochs", "6", "--batch-size", "5", "--seed",
                     "3", "--validation-fraction", "0.2", "--early-stopping", "9", "--monitor",
                     "accuracy", "--quiet", "--save", str(out), *options]) == 0
    net = loopbp.Network([6, 8, 8, 2], activation=["tanh", "relu"], output="softmax",
                         cost="log_likelihood", init="glorot", seed=3)
    history = net.sgd(data["X_train"], data["y_train"], 6, 5, 0.5, validation_fraction=0.2,
                      early_stopping=9, monitor="accuracy", progress=False,
                      test_data=(data["X_test"], data["y_test"]), **settings)
    saved = loopbp.Network.load(out)
    assert saved.activations == ["tanh", "relu", "softmax"]  # softmax: --cost's default output
    assert (saved.cost, saved.init) == ("log_likelihood", "glorot")
    assert _same_parameters(saved, net)
    text = capsys.readouterr().out
    assert "network: hidden tanh/relu, softmax output, log_likelihood cost, glorot init; " \
           f"optimizer {settings.get('optimizer', 'sgd')}" in text
    assert "validation: 20% of the training rows; early stopping after 9 epoch(s) without a " \
           "better validation accuracy" in text
    record = next(r for r in history.records if r.epoch == history.best_epoch)
    assert (f"validation (epoch {record.epoch}): cost {record.validation_cost:.5f}, accuracy "
            f"{record.validation_correct}/{record.validation_total}") in text


def test_epoch_lines_show_the_schedule(tmp_path, capsys):
    path = tmp_path / "data.npz"
    _write_data(path)
    assert cli.main(["train", "--data", str(path), "--sizes", "6", "4", "2", "--epochs", "3",
                     "--eta", "2", "--schedule", "step", "--step-factor", "0.5",
                     "--step-interval", "1"]) == 0
    out = capsys.readouterr().out
    assert "schedule step (factor 0.5, interval 1)" in out
    for epoch, eta in ((1, "2"), (2, "1"), (3, "0.5")):
        line = next(s for s in out.splitlines() if s.startswith(f"epoch {epoch}/3:"))
        assert line.endswith(f"eta {eta}"), line


def test_default_learning_rate_follows_the_optimizer(tmp_path, capsys):
    path = tmp_path / "data.npz"
    _write_data(path)
    for optimizer, eta in (("adam", "0.001"), ("momentum", "0.3"), ("sgd", "3")):
        assert cli.main(["train", "--data", str(path), "--epochs", "0", "--quiet",
                         "--optimizer", optimizer]) == 0
        assert f"mini-batch 10, eta {eta}, float64" in capsys.readouterr().out


def test_early_stopping_stops_and_keeps_the_best_epoch(tmp_path, capsys):
    path = tmp_path / "data.npz"
    data = _write_data(path, n=200)
    out = tmp_path / "net.npz"
    argv = ["train", "--data", str(path), "--sizes", "6", "8", "2", "--epochs", "200",
            "--batch-size", "5", "--eta", "2", "--validation-fraction", "0.3",
            "--early-stopping", "2", "--quiet", "--save", str(out)]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    net = loopbp.Network([6, 8, 2], seed=0)
    history = net.sgd(data["X_train"], data["y_train"], 200, 5, 2.0, validation_fraction=0.3,
                      early_stopping=2, progress=False)
    assert history.stopped_early and len(history) < 200
    assert (f"stopped early after {len(history)} epoch(s) in ") in text
    assert (f"no better validation cost for 2 epoch(s); kept the parameters of epoch "
            f"{history.best_epoch}") in text
    assert f"validation (epoch {history.best_epoch}): " in text
    assert _same_parameters(loopbp.Network.load(out), net)


# --- train: learning curves -------------------------------------------------------------


def test_train_plot_writes_learning_curves(tmp_path, capsys):
    path = tmp_path / "data.npz"
    _write_data(path)
    png = tmp_path / "curves.png"
    assert cli.main(["train", "--data", str(path), "--sizes", "6", "4", "2", "--epochs", "3",
                     "--validation-fraction", "0.2", "--quiet", "--plot", str(png)]) == 0
    assert f"learning curves in {png}" in capsys.readouterr().out
    assert png.read_bytes().startswith(PNG_MAGIC)
    from matplotlib.image import imread

    assert imread(png).shape == (480, 1200, 4)  # 10 x 4 inches at 120 dpi
    # no epoch, no plot (and no failure: the run itself went fine)
    empty = tmp_path / "empty.png"
    assert cli.main(["train", "--data", str(path), "--epochs", "0", "--quiet", "--plot",
                     str(empty)]) == 0
    assert "no finished epoch to plot" in capsys.readouterr().err
    assert not empty.exists()


def _history(validation: bool = True, test: bool = True, best: int | None = None) -> History:
    records = []
    for epoch, cost in enumerate((0.5, 0.3, 0.25), start=1):
        record = EpochRecord(epoch, cost, 0.1, eta=1.0)
        if validation:
            record.validation_cost = cost + 0.1
            record.validation_correct, record.validation_total = 5 + epoch, 10
        if test:
            record.test_correct, record.test_total = 10 + epoch, 20
        records.append(record)
    return History(records, best_epoch=best)


def test_plot_history_draws_every_curve(tmp_path):
    from loopbp.plot import plot_history

    figure = plot_history(_history(best=2), tmp_path / "h.png", title="a run")
    cost, accuracy = figure.axes
    curves = {line.get_label(): list(line.get_ydata()) for line in cost.lines}
    assert curves["training cost"] == [0.5, 0.3, 0.25]
    assert curves["validation cost"] == pytest.approx([0.6, 0.4, 0.35])
    curves = {line.get_label(): list(line.get_ydata()) for line in accuracy.lines}
    assert curves["validation accuracy"] == pytest.approx([60, 70, 80])
    assert curves["test accuracy"] == pytest.approx([55, 60, 65])
    assert list(curves["kept (epoch 2)"]) == [0, 1]  # the vertical line of the kept epoch
    assert figure.get_suptitle() == "a run"
    assert (tmp_path / "h.png").read_bytes().startswith(PNG_MAGIC)
    plot_history(_history(), tmp_path / "h.svg")
    assert b"<svg" in (tmp_path / "h.svg").read_bytes()[:500]


def test_plot_history_without_validation_or_test(tmp_path):
    from loopbp.plot import plot_history

    figure = plot_history(_history(validation=False, test=False), tmp_path / "h.png")
    cost, accuracy = figure.axes
    assert [line.get_label() for line in cost.lines] == ["training cost"]
    assert len(accuracy.lines) == 0 and accuracy.texts[0].get_text() == "no accuracy measured"
    figure = plot_history(_history(validation=False), tmp_path / "h.png")
    assert [line.get_label() for line in figure.axes[1].lines] == ["test accuracy"]


def test_plot_history_refuses_nothing_to_plot_and_unknown_formats(tmp_path):
    from loopbp.plot import plot_history

    with pytest.raises(ValueError, match="no epochs"):
        plot_history(History(), tmp_path / "h.png")
    with pytest.raises(ValueError, match="must end in"):
        plot_history(_history(), tmp_path / "h.jpg")
    assert list(tmp_path.iterdir()) == []


def test_importing_loopbp_does_not_import_matplotlib():
    code = ("import sys, loopbp, loopbp.cli, loopbp.plot; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.slow
def test_mnist1d_run_with_every_kind_of_option(tmp_path):
    """The real MNIST-1D: ReLU, softmax, Adam, validation, early stopping, a PNG; then evaluate."""
    png, saved = tmp_path / "out.png", tmp_path / "net.npz"
    result = subprocess.run(
        [sys.executable, "-m", "loopbp", "train", "--data", "mnist1d", "--epochs", "1",
         "--sizes", "40", "16", "10", "--activation", "relu", "--output", "softmax", "--cost",
         "log_likelihood", "--optimizer", "adam", "--eta", "0.01", "--batch-size", "100",
         "--validation-fraction", "0.1", "--early-stopping", "2", "--plot", str(png),
         "--save", str(saved)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "training [40, 16, 10] on mnist1d (4000 train / 1000 test)" in out
    assert "optimizer adam (betas 0.9 0.999)" in out and "validation cost" in out
    assert png.read_bytes().startswith(PNG_MAGIC)
    accuracy = next(s for s in out.splitlines() if s.startswith("test accuracy:"))
    evaluated = subprocess.run([sys.executable, "-m", "loopbp", "evaluate", str(saved),
                                "--data", "mnist1d"], capture_output=True, text=True,
                               timeout=600, check=True)
    assert evaluated.stdout.splitlines()[-1] == accuracy


# --- train: resuming --------------------------------------------------------------------


def test_resume_takes_every_setting_from_the_checkpoint(tmp_path, capsys):
    path = tmp_path / "data.npz"
    _write_data(path)
    common = ["train", "--data", str(path), "--sizes", "6", "5", "2", "--activation", "tanh",
              "--batch-size", "6", "--eta", "0.05", "--quiet", "--seed", "7", "--optimizer",
              "adam", "--betas", "0.8", "0.99", "--l2", "0.01", "--schedule", "plateau",
              "--plateau-factor", "0.5", "--plateau-patience", "1",
              "--validation-fraction", "0.2", "--early-stopping", "50"]
    assert cli.main([*common, "--epochs", "4", "--save", str(tmp_path / "straight.npz")]) == 0
    ckpt = tmp_path / "ckpt.npz"
    assert cli.main([*common, "--epochs", "2", "--checkpoint", str(ckpt)]) == 0
    capsys.readouterr()
    # only the data and the epoch count: everything else comes from the checkpoint
    assert cli.main(["train", "--data", str(path), "--resume", str(ckpt), "--epochs", "4",
                     "--quiet", "--save", str(tmp_path / "resumed.npz")]) == 0
    out = capsys.readouterr().out
    assert "resuming after epoch 2" in out
    assert "network: tanh hidden" in out and "optimizer adam (betas 0.8 0.99), L2 lambda 0.01, " \
           "schedule plateau (factor 0.5, patience 1" in out
    assert _same_parameters(loopbp.Network.load(tmp_path / "resumed.npz"),
                            loopbp.Network.load(tmp_path / "straight.npz"))
    # options equal to the checkpoint's are accepted, others refused
    assert cli.main([*common, "--resume", str(ckpt)]) == 0
    capsys.readouterr()
    for options, message in (
            (["--optimizer", "sgd"], "--optimizer sgd differs from the checkpoint's adam"),
            (["--l2", "0.5"], "--l2 0.5 differs from the checkpoint's 0.01"),
            (["--activation", "relu"], "--activation relu differs from the checkpoint's tanh"),
            (["--betas", "0.9", "0.99"], "--betas [0.9, 0.99] differs"),
            (["--schedule", "step"], "--schedule step differs from the checkpoint's plateau"),
            (["--plateau-patience", "3"], "--plateau-patience 3 differs"),
            (["--step-factor", "0.5"], "--step-factor was not used by the checkpoint's run"),
            (["--momentum", "0.5"], "--momentum was not used by the checkpoint's run"),
            (["--validation-fraction", "0.3"], "--validation-fraction 0.3 differs"),
            (["--early-stopping", "3"], "--early-stopping 3 differs"),
            (["--cost", "cross_entropy"], "--cost cross_entropy differs"),
            (["--init", "he"], "--init he differs from the checkpoint's normal")):
        argv = ["train", "--data", str(path), "--resume", str(ckpt), "--quiet", *options]
        assert cli.main(argv) == 2, options
        err = capsys.readouterr().err
        assert message in err and "a resumed run keeps its network and settings" in err, err


# --- the compile notice -----------------------------------------------------------------


def test_compile_notice_reports_loopbp_compilations_only():
    import io

    from numba.core import event

    def compiling(dispatcher):
        def work():
            with event.trigger_event("numba:compile", data={"dispatcher": dispatcher}):
                pass
        return work

    stream = io.StringIO()
    assert cli.compile_kernels(compiling(kernels.batch_cost), stream) is not None
    lines = stream.getvalue().splitlines()
    assert lines[0] == cli.COMPILING
    assert lines[1].startswith("compiled in ") and lines[1].endswith(" s")
    assert len(lines) == 2
    # numba's own helpers (compiled anew in every process) and cached kernels: no notice
    from numba.typed import typedlist

    stream = io.StringIO()
    assert cli.compile_kernels(compiling(typedlist._make_list), stream) is None
    assert cli.compile_kernels(lambda: kernels.batch_cost, stream) is None
    assert stream.getvalue() == ""


def test_quiet_skips_the_warm_up(tmp_path, monkeypatch, capsys):
    path = tmp_path / "data.npz"
    _write_data(path)
    warm_ups = []
    monkeypatch.setattr(cli, "compile_kernels", lambda work, stream=None: warm_ups.append(work))
    assert cli.main(["train", "--data", str(path), "--epochs", "1", "--quiet"]) == 0
    assert warm_ups == []
    assert cli.main(["train", "--data", str(path), "--epochs", "1"]) == 0
    assert len(warm_ups) == 1


def _run(args, cache, **kw):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, "-m", "loopbp", *args], capture_output=True,
                          text=True, timeout=600, env=env, **kw)


def _says_compiling(result) -> bool:
    text = result.stdout + result.stderr
    return cli.COMPILING in text or "compiled in" in text


@pytest.mark.slow
def test_first_run_says_it_compiles_and_later_runs_do_not(tmp_path):
    path = tmp_path / "data.npz"
    _write_data(path)
    train = ["train", "--data", str(path), "--epochs", "1", "--sizes", "6", "4", "2",
             "--batch-size", "5", "--save", str(tmp_path / "net.npz")]
    first = _run(train, tmp_path / "cache")  # an empty cache: everything compiles
    assert first.returncode == 0, first.stderr
    err = first.stderr
    assert cli.COMPILING in err and "compiled in " in err
    # said before training starts (the progress bar), not after
    assert err.index(cli.COMPILING) < err.index("compiled in ") < err.index("training:")
    second = _run(train, tmp_path / "cache")
    assert second.returncode == 0, second.stderr
    assert not _says_compiling(second)
    np.save(tmp_path / "x.npy", np.zeros((3, 6)))
    predicted = _run(["predict", str(tmp_path / "net.npz"), str(tmp_path / "x.npy")],
                     tmp_path / "cache")  # training's warm-up compiled the feedforward too
    assert predicted.returncode == 0 and not _says_compiling(predicted)


@pytest.mark.slow
def test_compile_notice_on_stderr_for_predict_and_never_with_quiet(tmp_path):
    path = tmp_path / "data.npz"
    data = _write_data(path)
    _trained_net(data).save(tmp_path / "net.npz")
    np.save(tmp_path / "x.npy", data["X_test"])
    predicted = _run(["predict", str(tmp_path / "net.npz"), str(tmp_path / "x.npy")],
                     tmp_path / "cache")
    assert predicted.returncode == 0, predicted.stderr
    assert cli.COMPILING in predicted.stderr and "compiled in" in predicted.stderr
    assert predicted.stdout.split() == [str(c) for c in
                                        np.argmax(_trained_net(data).feedforward(
                                            data["X_test"]), axis=1)]
    def training_kernels() -> list:
        return list((tmp_path / "cache").rglob("*train_mini_batches*.nbi"))

    assert training_kernels() == []
    quiet = _run(["train", "--data", str(path), "--epochs", "1", "--quiet"], tmp_path / "cache")
    assert quiet.returncode == 0, quiet.stderr
    assert training_kernels() != []  # it compiled the training kernels ...
    assert not _says_compiling(quiet)  # ... and kept quiet about it


# --- evaluate ---------------------------------------------------------------------------


def test_evaluate_reports_accuracy_and_mean_cost(tmp_path, capsys):
    path = tmp_path / "data.npz"
    data = _write_data(path)
    net = _trained_net(data)
    net.save(tmp_path / "net.npz")
    assert cli.main(["evaluate", str(tmp_path / "net.npz"), "--data", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    correct = net.evaluate(data["X_test"], data["y_test"])
    assert lines[-1] == f"test accuracy: {correct}/30 = {100 * correct / 30:.2f}%"
    assert correct >= 25
    cost = net.mean_cost(data["X_test"], data["y_test"])
    assert lines[-2] == f"mean cost (quadratic): {cost:.6g}"
    assert "on the 30 test examples of" in lines[0]
    # a checkpoint holds a network too
    net.sgd(data["X_train"], data["y_train"], 1, 5, 2.0, progress=False,
            checkpoint=tmp_path / "ckpt.npz")
    assert cli.main(["evaluate", str(tmp_path / "ckpt.npz"), "--data", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("test accuracy: ")


def test_evaluate_refuses_what_does_not_fit(tmp_path, capsys):
    path = tmp_path / "data.npz"
    data = _write_data(path)
    model = tmp_path / "net.npz"
    _trained_net(data).save(model)
    assert cli.main(["evaluate", str(tmp_path / "missing.npz")]) == 2
    assert "loopbp evaluate: error: no loopbp network file at" in capsys.readouterr().err
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(model.read_bytes()[:-30])
    assert cli.main(["evaluate", str(damaged), "--data", str(path)]) == 2
    assert "not a loopbp network file" in capsys.readouterr().err
    assert cli.main(["evaluate", str(path), "--data", str(path)]) == 2  # a data file, not a net
    assert "loopbp evaluate: error:" in capsys.readouterr().err
    assert cli.main(["evaluate", str(model)]) == 2  # default data: the 64-pixel digits
    assert "takes 6 inputs but the examples of digits have 64 values" in capsys.readouterr().err
    wide = tmp_path / "ten.npz"
    np.savez(wide, X_train=np.zeros((4, 6)), y_train=[0, 1, 2, 3], X_test=np.zeros((2, 6)),
             y_test=[0, 9])
    assert cli.main(["evaluate", str(model), "--data", str(wide)]) == 2
    assert "has 2 outputs but the labels of" in capsys.readouterr().err
    assert cli.main(["evaluate", str(model), "--data", str(tmp_path / "none.npz")]) == 2
    assert "no data file" in capsys.readouterr().err


# --- predict ----------------------------------------------------------------------------


@pytest.fixture
def model(tmp_path):
    data = _write_data(tmp_path / "data.npz")
    net = _trained_net(data, output="softmax", cost="log_likelihood")
    net.save(tmp_path / "net.npz")
    return net, data["X_test"], str(tmp_path / "net.npz")


def test_predict_classes_from_npy_and_csv(model, tmp_path, capsys):
    net, X, path = model
    expected = [str(c) for c in np.argmax(net.feedforward(X), axis=1)]
    assert len(set(expected)) == 2  # both classes occur: the test would see a swap
    np.save(tmp_path / "x.npy", X)
    assert cli.main(["predict", path, str(tmp_path / "x.npy")]) == 0
    assert capsys.readouterr().out.splitlines() == expected
    np.savetxt(tmp_path / "x.csv", X, delimiter=",")
    assert cli.main(["predict", path, str(tmp_path / "x.csv")]) == 0
    assert capsys.readouterr().out.splitlines() == expected
    # a header line and blank lines are skipped; spaces around numbers are fine
    header = ",".join(f"x{i}" for i in range(6))
    rows = "\n".join(", ".join(repr(float(v)) for v in row) for row in X)
    (tmp_path / "h.CSV").write_text(f"{header}\n{rows}\n\n")
    assert cli.main(["predict", path, str(tmp_path / "h.CSV")]) == 0
    assert capsys.readouterr().out.splitlines() == expected
    np.save(tmp_path / "one.npy", X[3])  # 1-D: one example
    assert cli.main(["predict", path, str(tmp_path / "one.npy")]) == 0
    assert capsys.readouterr().out.splitlines() == expected[3:4]


def test_predict_proba_and_output_file(model, tmp_path, capsys):
    net, X, path = model
    np.save(tmp_path / "x.npy", X)
    assert cli.main(["predict", path, str(tmp_path / "x.npy"), "--proba"]) == 0
    printed = np.array([[float(v) for v in line.split(",")]
                        for line in capsys.readouterr().out.splitlines()])
    assert np.array_equal(printed, net.feedforward(X))  # exact: shortest round-trip digits
    assert np.allclose(printed.sum(axis=1), 1)  # a softmax output
    out = tmp_path / "out.csv"
    assert cli.main(["predict", path, str(tmp_path / "x.npy"), "--proba", "--output",
                     str(out)]) == 0
    assert capsys.readouterr().out == f"wrote 30 prediction(s) to {out}\n"
    assert np.array_equal(np.loadtxt(out, delimiter=","), printed)
    assert cli.main(["predict", path, str(tmp_path / "x.npy"), "--output", str(out)]) == 0
    assert out.read_text().split() == [str(c) for c in np.argmax(printed, axis=1)]


@pytest.mark.parametrize("name, content, message", [
    ("missing.npy", None, "no input file at"),
    ("x.txt", "1,2,3,4,5,6\n", "INPUT must be a .npy or .csv file"),
    ("x.npy", np.zeros((2, 2, 6)), "3-D array of shape (2, 2, 6)"),
    ("x.npy", np.zeros((2, 5)), "has 5 values per row but the network takes 6 inputs"),
    ("x.npy", np.zeros(5), "has 5 values per row but the network takes 6 inputs"),
    ("x.npy", np.zeros((0, 6)), "holds no rows"),
    ("x.npy", np.array([[{}] * 6], dtype=object), "not an intact .npy array of numbers"),
    ("x.npy", np.array([["a"] * 6]), "holds <U1 values, not numbers"),
    ("x.npy", b"\x93NUMPY garbage", "not an intact .npy array"),
    ("x.npy", np.full((2, 6), np.nan), "row 1 contains NaN or infinity"),
    ("x.csv", "1,2,3,4,5,6\n1,2,x,4,5,6\n", "line 2: 'x' is not a number"),
    ("x.csv", "1,2,3,4,5,6\n1,2,3,4,5\n", "line 2 has 5 values but the network takes 6 inputs"),
    ("x.csv", "a,b,c,d,e,f\n", "holds no rows of numbers"),
    ("x.csv", "", "holds no rows of numbers"),
    ("x.csv", "1,2,3,4,5,6\n1,2,3,inf,5,6\n", "row 2 contains NaN or infinity"),
    ("x.csv", b"\xff\xfe1,2\n", "cannot read"),
])
def test_predict_refuses_bad_input(name, content, message, model, tmp_path, capsys):
    _, _, path = model
    target = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(target, content, allow_pickle=True)
    elif isinstance(content, bytes):
        target.write_bytes(content)
    elif content is not None:
        target.write_text(content)
    assert cli.main(["predict", path, str(target)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("loopbp predict: error: ") and message in captured.err, \
        captured.err


def test_predict_refuses_missing_model_and_output_folder(model, tmp_path, capsys):
    _, X, path = model
    np.save(tmp_path / "x.npy", X)
    assert cli.main(["predict", str(tmp_path / "none.npz"), str(tmp_path / "x.npy")]) == 2
    assert "no loopbp network file" in capsys.readouterr().err
    assert cli.main(["predict", path, str(tmp_path / "x.npy"), "--output",
                     str(tmp_path / "no" / "out.csv")]) == 2
    assert "there is no folder" in capsys.readouterr().err


# --- train on a Dask cluster ------------------------------------------------------------


def test_scheduler_and_workers_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(["train", "--scheduler", "tcp://127.0.0.1:8786",
                                       "--workers", "2"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    args = cli.build_parser().parse_args(["train", "--workers", "3"])
    assert (args.workers, args.scheduler) == (3, None)
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--workers", "0"])


@pytest.mark.slow
def test_train_with_local_workers_gives_the_one_process_network(tmp_path, capsys):
    """``--workers 2``: the network of the same run in one process, to 1e-9 relative."""
    pytest.importorskip("distributed")
    path = tmp_path / "data.npz"
    data = _write_data(path)
    out = tmp_path / "net.npz"
    assert cli.main(["train", "--data", str(path), "--sizes", "6", "8", "2", "--epochs", "3",
                     "--batch-size", "7", "--eta", "2", "--optimizer", "momentum",
                     "--workers", "2", "--quiet", "--save", str(out)]) == 0
    assert "test accuracy:" in capsys.readouterr().out
    net = loopbp.Network([6, 8, 2], seed=0)
    net.sgd(data["X_train"], data["y_train"], 3, 7, 2.0, optimizer="momentum", progress=False)
    saved = loopbp.Network.load(out)
    for p, q in zip(net.weights + net.biases, saved.weights + saved.biases, strict=True):
        np.testing.assert_allclose(q, p, rtol=1e-9, atol=0)


@pytest.mark.slow
def test_unreachable_scheduler_is_reported(tmp_path, monkeypatch, capsys):
    distributed = pytest.importorskip("loopbp.distributed")
    import socket

    monkeypatch.setattr(distributed, "CONNECT_TIMEOUT", 1)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    path = tmp_path / "data.npz"
    _write_data(path)
    assert cli.main(["train", "--data", str(path), "--epochs", "1", "--quiet",
                     "--scheduler", address]) == 2
    err = capsys.readouterr().err
    assert err.startswith("loopbp train: error: cannot reach a Dask scheduler at "
                          f"'{address}'"), err
