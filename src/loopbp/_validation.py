"""Checks at the API boundary.

numba checks no bounds: an array of the wrong shape that reaches a kernel reads
or writes outside its memory instead of raising.  Every public entry point
therefore runs its arguments through these functions first.  Each raises
``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind, wrong
value) naming the argument and what was expected, and returns a clean value:
C-contiguous arrays of the network's dtype, plain ``int``/``float`` scalars.
"""

from __future__ import annotations

import numbers
import operator
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_dtype(dtype: Any) -> np.dtype:
    """``dtype`` must name float32 or float64."""
    try:
        resolved = np.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from err
    if resolved not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {resolved}")
    return resolved


def check_int(value: Any, name: str, *, minimum: int) -> int:
    """An integer (not bool) no smaller than ``minimum``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = operator.index(value)
    if value < minimum:
        kind = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name} must be {kind}, got {value}")
    return value


def check_positive_float(value: Any, name: str) -> float:
    """A finite real number > 0."""
    value = check_finite_float(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return value


def folder_problem(path: Any, name: str) -> str | None:
    """Why no file can be written at ``path`` (a folder, or its folder is missing), or None."""
    if path is None:
        return None
    path = os.fspath(path)
    if os.path.isdir(path):
        return f"{name} {path!r} is a folder, not a file name"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"{name} {path!r}: there is no folder {folder!r}"
    return None


def check_sizes(sizes: Any) -> list[int]:
    """Layer sizes: a sequence of at least two positive integers."""
    if isinstance(sizes, str | bytes) or not isinstance(sizes, Sequence | np.ndarray):
        raise TypeError(
            f"sizes must be a sequence of layer sizes such as [784, 30, 10], got {sizes!r}")
    if np.ndim(sizes) != 1:
        raise ValueError(f"sizes must be one-dimensional, got {sizes!r}")
    checked = [check_int(s, f"sizes[{i}]", minimum=1) for i, s in enumerate(sizes)]
    if len(checked) < 2:
        raise ValueError(
            f"sizes must name at least two layers (input and output), got {checked}")
    return checked


def _as_numeric_array(data: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(data)
    except (ValueError, TypeError) as err:  # ragged nesting, odd objects
        raise ValueError(f"{name} must be a rectangular numeric array: {err}") from err
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers (bool, int or float), got dtype {array.dtype}")
    return array


def _require_finite(array: np.ndarray, name: str) -> None:
    if array.dtype.kind != "f":
        return
    # One pass, no temporary: a NaN or infinity anywhere makes the sum NaN or
    # infinite.  Only when it is (a finite overflow can do that too) look closer.
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.sum(array)
    if not np.isfinite(total) and not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinity")


def as_inputs(X: Any, name: str, width: int, dtype: np.dtype, *,
              allow_1d: bool = False) -> np.ndarray:
    """A 2-D array of shape ``(n >= 1, width)`` with finite entries, as C-contiguous ``dtype``.

    With ``allow_1d``, a 1-D array of length ``width`` is taken as one row.
    """
    array = _as_numeric_array(X, name)
    if allow_1d and array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D with shape (n_examples, {width}), got {array.ndim}-D "
            f"shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty: it must have at least one row")
    if array.shape[1] != width:
        raise ValueError(
            f"{name} must have {width} columns (the input layer's size), got {array.shape[1]}")
    with np.errstate(over="ignore", invalid="ignore"):  # reported below, in words
        converted = np.ascontiguousarray(array, dtype=dtype)
    _require_finite(converted, name)  # after conversion: 1e300 becomes inf in float32
    return converted


def as_labels(y: Any, name: str, n_rows: int, n_classes: int) -> np.ndarray:
    """Integer class labels of shape ``(n_rows,)`` in ``0 … n_classes-1``, as int64."""
    array = _as_numeric_array(y, name)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D class labels, got shape {array.shape}")
    if array.shape[0] != n_rows:
        raise ValueError(f"{name} has {array.shape[0]} labels but there are {n_rows} rows")
    if array.dtype.kind == "b":
        raise TypeError(f"{name} must hold integer class labels, got dtype bool")
    if array.dtype.kind == "f":
        _require_finite(array, name)
        if not np.all(array == np.round(array)):
            raise ValueError(f"{name} must hold whole-number class labels")
    # the range is checked on the values as given: a float or uint64 beyond int64
    # would wrap around in the conversion and be reported as some other value
    if array.size and (array.min() < 0 or array.max() >= n_classes):
        raise ValueError(
            f"{name} must hold labels in 0..{n_classes - 1} (one per output neuron), "
            f"got values from {array.min()} to {array.max()}")
    return array.astype(np.int64)


def as_targets(Y: Any, name: str, n_rows: int, n_out: int, dtype: np.dtype) -> np.ndarray:
    """Targets ``(n_rows, n_out)``, or class labels ``(n_rows,)`` one-hot encoded."""
    array = _as_numeric_array(Y, name)
    if array.ndim == 1:
        labels = as_labels(array, name, n_rows, n_out)
        one_hot = np.zeros((n_rows, n_out), dtype=dtype)
        one_hot[np.arange(n_rows), labels] = 1
        return one_hot
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be targets of shape ({n_rows}, {n_out}) or labels of shape "
            f"({n_rows},), got shape {array.shape}")
    if array.shape != (n_rows, n_out):
        raise ValueError(
            f"{name} must have shape ({n_rows}, {n_out}) to match the inputs and the "
            f"output layer, got {array.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        converted = np.ascontiguousarray(array, dtype=dtype)
    _require_finite(converted, name)
    return converted


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """One of the names ``choices``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {', '.join(map(repr, choices))}; "
                        f"got {type(value).__name__} {value!r}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_non_negative_float(value: Any, name: str) -> float:
    """A finite real number >= 0."""
    value = check_finite_float(value, name)
    if value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def check_finite_float(value: Any, name: str) -> float:
    """A finite real number."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    try:
        value = float(value)
    except OverflowError:  # an int or fraction beyond float's range (10**400)
        raise ValueError(f"{name} must be finite, got a {type(value).__name__} beyond the "
                         f"range of a float") from None
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_unit_interval(value: Any, name: str) -> float:
    """A real number in [0, 1)."""
    value = check_finite_float(value, name)
    if not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value
