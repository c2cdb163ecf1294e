"""Learning curves of a training run, drawn from its :class:`~loopbp.History`.

:func:`plot_history` draws two panels side by side: the training and
validation cost per epoch, and the validation and test accuracy per epoch
(whichever the run measured).  With early stopping a dashed line marks the
epoch whose parameters the network kept.

matplotlib is imported only when a plot is drawn, so ``import loopbp`` does
not need it; the figure is rendered with the Agg backend through matplotlib's
object interface, without pyplot, so no global backend is changed (it works
the same on a headless machine and inside a notebook).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .history import History

#: File formats :func:`plot_history` writes, by file-name suffix.
FORMATS = (".png", ".svg", ".pdf")


def plot_history(history: History, path: str | os.PathLike, *,
                 title: str | None = None) -> Figure:
    """Draw the learning curves of ``history`` and write them to ``path``.

    Parameters
    ----------
    history : History
        What :func:`loopbp.sgd` (or :func:`loopbp.resume`) returned; at least
        one epoch.
    path : path
        The image file; its suffix (``.png``, ``.svg`` or ``.pdf``) picks the format.
    title : str, optional
        A title above both panels.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, already written to ``path`` (for further use in a notebook).

    Raises
    ------
    ValueError
        When ``history`` has no epochs, or ``path`` has an unknown suffix.
    ImportError
        When matplotlib is not installed (``pip install 'loopbp[data]'``).
    """
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in FORMATS:
        raise ValueError(f"cannot plot to {os.fspath(path)!r}: the file name must end in "
                         f"{', '.join(FORMATS)}")
    if len(history) == 0:
        raise ValueError("the history has no epochs to plot")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'loopbp[data]'") from err

    epochs = [r.epoch for r in history.records]
    style = {"marker": "o", "markersize": 3} if len(epochs) <= 60 else {}
    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
    cost_axes, accuracy_axes = figure.subplots(1, 2)

    cost_axes.plot(epochs, history.cost, label="training cost", **style)
    _plot_measured(cost_axes, epochs, history.validation_cost, "validation cost", style)
    cost_axes.set_xlabel("epoch")
    cost_axes.set_ylabel("mean cost")
    cost_axes.set_title("cost")

    plotted = _plot_measured(accuracy_axes, epochs, history.validation_accuracy,
                             "validation accuracy", style, scale=100)
    plotted |= _plot_measured(accuracy_axes, epochs, history.test_accuracy, "test accuracy",
                              style, scale=100)
    if not plotted:
        accuracy_axes.text(0.5, 0.5, "no accuracy measured", ha="center", va="center",
                           transform=accuracy_axes.transAxes)
    accuracy_axes.set_xlabel("epoch")
    accuracy_axes.set_ylabel("accuracy (%)")
    accuracy_axes.set_title("accuracy")

    for axes in (cost_axes, accuracy_axes):
        if history.best_epoch is not None:
            axes.axvline(history.best_epoch, color="0.5", linestyle="--",
                         label=f"kept (epoch {history.best_epoch})")
        if len(set(epochs)) == 1:  # one point: one tick, not fractions of an epoch
            axes.set_xticks(epochs[:1])
        else:
            axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(True, alpha=0.3)
        if axes.lines:
            axes.legend()
    if title:
        figure.suptitle(title)
    figure.savefig(path, dpi=120)
    return figure


def _plot_measured(axes, epochs: list[int], values: list[float | None], label: str,
                   style: dict, scale: float = 1.0) -> bool:
    """Plot the epochs that have a value; False when none has."""
    points = [(e, scale * v) for e, v in zip(epochs, values) if v is not None]
    if not points:
        return False
    xs, ys = zip(*points)
    axes.plot(xs, ys, label=label, **style)
    return True
