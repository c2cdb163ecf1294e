"""The ``loopbp`` command, end to end."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import loopbp
from loopbp import cli


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


@pytest.mark.parametrize("argv", [["train", "--epochs", "-1"], ["train", "--eta", "nan"],
                                  ["train", "--batch-size", "0"], ["train", "--sizes", "0"],
                                  ["train", "--dtype", "int8"], ["nonsense"]])
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
