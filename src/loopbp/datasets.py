"""Built-in data sets, and a loader for users' own ``.npz`` files.

Nothing here downloads: the digits come with scikit-learn (the ``data`` extra),
and users' files are read from disk.
"""

from __future__ import annotations

import os
import zipfile
from typing import Any

import numpy as np

from . import _validation as check

#: Every ``TEST_EVERY``-th digit (rows 0, 4, 8, …) is held out for testing.
TEST_EVERY = 4
#: The arrays a data file must contain.
DATA_KEYS = ("X_train", "y_train", "X_test", "y_test")
#: Largest number of classes a data file may use (labels 0 … MAX_CLASSES-1).
MAX_CLASSES = 100_000


def load_digits() -> dict[str, np.ndarray]:
    """scikit-learn's 8×8 handwritten digits, scaled to [0, 1], with a fixed split.

    The 1797 images (64 pixels, values 0–16) are divided by 16.  Rows whose
    index is a multiple of 4 form the test set (450 images), the rest the
    training set (1347) — the same split on every machine and version.

    Returns
    -------
    dict
        ``X_train`` (1347, 64) float64, ``y_train`` (1347,) int64,
        ``X_test`` (450, 64) float64, ``y_test`` (450,) int64.
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the digits data set comes with scikit-learn: pip install 'loopbp[data]'") from err
    digits = sklearn_digits()
    X = digits.data.astype(np.float64) / 16.0
    y = digits.target.astype(np.int64)
    test = np.arange(len(y)) % TEST_EVERY == 0
    return {"X_train": X[~test], "y_train": y[~test], "X_test": X[test], "y_test": y[test]}


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a data file: an ``.npz`` with ``X_train, y_train, X_test, y_test``.

    ``X_*`` are 2-D with one example per row (same width in both); ``y_*`` are
    integer class labels 0 … C−1 (C at most :data:`MAX_CLASSES`).  Pickled
    objects are refused.

    Raises
    ------
    ValueError
        When a key is missing or the arrays do not fit together.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no data file at {str(path)!r}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):  # a plain .npy holds one array
                raise ValueError("it holds a single array, not named arrays")
            missing = [k for k in DATA_KEYS if k not in archive.files]
            if missing:
                raise KeyError(", ".join(missing))
            data: dict[str, Any] = {k: archive[k] for k in DATA_KEYS}
    except KeyError as err:
        raise ValueError(
            f"data file {str(path)!r} lacks {err.args[0]}; it needs "
            f"{', '.join(DATA_KEYS)}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"cannot read data file {str(path)!r} (not an intact .npz of plain arrays): "
            f"{err}") from err
    X_train = np.asarray(data["X_train"])
    if X_train.ndim != 2:
        raise ValueError(f"X_train must be 2-D (n_examples, n_features), got {X_train.shape}")
    width = X_train.shape[1]
    for split in ("train", "test"):  # labels first: the class count comes from them
        X = check.as_inputs(data[f"X_{split}"], f"X_{split}", width, np.dtype(np.float64))
        data[f"X_{split}"] = X
        data[f"y_{split}"] = check.as_labels(data[f"y_{split}"], f"y_{split}", X.shape[0],
                                             MAX_CLASSES)
    return data
