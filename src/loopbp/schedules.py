"""Learning-rate schedules: the η of each epoch.

A schedule is asked for the learning rate at the start of every epoch and,
after the epoch, told the value of the monitored cost (only
:class:`Plateau` listens).  Epochs are counted from 0 here: ``eta(e)`` is
the rate of the epoch that has ``e`` epochs finished before it.  With η₀ the
learning rate given to :func:`loopbp.sgd` and E the number of epochs:

==========  ==================================================================
schedule    η of epoch e
==========  ==================================================================
constant    η₀
step        η₀ · factor^⌊e / interval⌋
cosine      η_min + ½ (η₀ − η_min) (1 + cos(π e / E))
plateau     η₀, multiplied by ``factor`` each time the monitored cost has not
            improved by more than ``threshold`` for ``patience`` epochs in a row
callable    ``fn(e)``, any function of the epoch index that returns η > 0
==========  ==================================================================

:func:`loopbp.sgd` takes a name (the schedule with its defaults), an instance
of one of the classes below, or a callable.  Schedules keep their state in
checkpoints (:meth:`Schedule.to_dict`), so a resumed run uses the same rates.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _validation as check


class Schedule:
    """Base class: a constant learning rate."""

    name = "constant"

    def start(self, eta0: float, epochs: int) -> None:
        """Called once before training with the base rate η₀ and the epoch count E."""
        self.eta0, self.epochs = eta0, epochs

    def eta(self, epoch: int) -> float:
        """The learning rate of the epoch with ``epoch`` epochs finished before it."""
        return self.eta0

    def observe(self, epoch: int, value: float) -> None:
        """The monitored cost after the epoch ``epoch`` (0-based); most schedules ignore it."""

    def params(self) -> dict[str, Any]:
        """The schedule's parameters, JSON-ready."""
        return {}

    def state(self) -> dict[str, Any]:
        """What the schedule learned while training (for checkpoints), JSON-ready."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Take back a :meth:`state`."""

    def to_dict(self) -> dict[str, Any]:
        """Name, parameters and state, as a checkpoint stores them."""
        return {"name": self.name, "params": self.params(), "state": self.state()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """η₀ in every epoch."""


class Step(Schedule):
    """η₀ · factor^⌊e / interval⌋: the rate shrinks by ``factor`` every ``interval`` epochs."""

    name = "step"

    def __init__(self, factor: float = 0.5, interval: int = 10) -> None:
        self.factor = check.check_finite_float(factor, "factor")
        if not 0 < self.factor <= 1:
            raise ValueError(f"factor must be in (0, 1], got {self.factor}")
        self.interval = check.check_int(interval, "interval", minimum=1)

    def eta(self, epoch: int) -> float:
        return self.eta0 * self.factor ** (epoch // self.interval)

    def params(self) -> dict[str, Any]:
        return {"factor": self.factor, "interval": self.interval}


class Cosine(Schedule):
    """η_min + ½ (η₀ − η_min)(1 + cos(π e / E)): from η₀ down to η_min over the run's E epochs."""

    name = "cosine"

    def __init__(self, eta_min: float = 0.0) -> None:
        self.eta_min = check.check_finite_float(eta_min, "eta_min")
        if self.eta_min < 0:
            raise ValueError(f"eta_min must be >= 0, got {self.eta_min}")

    def start(self, eta0: float, epochs: int) -> None:
        super().start(eta0, epochs)
        if self.eta_min >= eta0:
            raise ValueError(f"eta_min ({self.eta_min:g}) must be below eta ({eta0:g})")

    def eta(self, epoch: int) -> float:
        # the last epoch still trains: its rate is η_min only in the limit E → ∞
        span = max(self.epochs, 1)
        return self.eta_min + 0.5 * (self.eta0 - self.eta_min) * (
            1 + math.cos(math.pi * epoch / span))

    def params(self) -> dict[str, Any]:
        return {"eta_min": self.eta_min}


class Plateau(Schedule):
    """Cut η by ``factor`` when the monitored cost stops improving.

    The monitored cost is the validation cost when :func:`loopbp.sgd` has
    validation data, the training cost otherwise.  An epoch *improves* when
    its cost is below the best so far by more than ``threshold``; after
    ``patience`` epochs in a row without improvement the rate is multiplied by
    ``factor`` (not below ``min_eta``) and the count starts again.
    """

    name = "plateau"

    def __init__(self, factor: float = 0.1, patience: int = 5, threshold: float = 0.0,
                 min_eta: float = 0.0) -> None:
        self.factor = check.check_finite_float(factor, "factor")
        if not 0 < self.factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {self.factor}")
        self.patience = check.check_int(patience, "patience", minimum=1)
        self.threshold = check.check_finite_float(threshold, "threshold")
        self.min_eta = check.check_finite_float(min_eta, "min_eta")
        if self.threshold < 0 or self.min_eta < 0:
            raise ValueError("threshold and min_eta must be >= 0")
        self.current: float | None = None
        self.best = math.inf
        self.bad_epochs = 0

    def start(self, eta0: float, epochs: int) -> None:
        super().start(eta0, epochs)
        if self.current is None:
            self.current = eta0

    def eta(self, epoch: int) -> float:
        return self.current

    def observe(self, epoch: int, value: float) -> None:
        if value < self.best - self.threshold:
            self.best, self.bad_epochs = value, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            self.current = max(self.current * self.factor, self.min_eta)
            self.bad_epochs = 0

    def params(self) -> dict[str, Any]:
        return {"factor": self.factor, "patience": self.patience, "threshold": self.threshold,
                "min_eta": self.min_eta}

    def state(self) -> dict[str, Any]:
        best = None if math.isinf(self.best) else self.best
        return {"current": self.current, "best": best, "bad_epochs": self.bad_epochs}

    def load_state(self, state: dict[str, Any]) -> None:
        # a checkpoint's state is checked in full: a rate < 0 would train backwards
        if not isinstance(state, dict) or set(state) != {"current", "best", "bad_epochs"}:
            raise ValueError(f"schedule.state of a 'plateau' schedule must be a mapping with "
                             f"current, best and bad_epochs, got {state!r}")
        current, best = state["current"], state["best"]
        # 0 is a rate a plateau reaches (min_eta = 0, hundreds of cuts), not damage
        self.current = None if current is None else check.check_non_negative_float(
            current, "schedule.state.current")
        self.best = math.inf if best is None else check.check_finite_float(
            best, "schedule.state.best")
        self.bad_epochs = check.check_int(state["bad_epochs"], "schedule.state.bad_epochs",
                                          minimum=0)


class FunctionSchedule(Schedule):
    """A user's function ``epoch -> eta`` (``epoch`` counted from 0)."""

    name = "callable"

    def __init__(self, function: Callable[[int], float]) -> None:
        self.function = function

    def eta(self, epoch: int) -> float:
        value = self.function(epoch)
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real) or not (
                math.isfinite(value) and value > 0):
            raise ValueError(f"the schedule function returned {value!r} for epoch {epoch}; "
                             "it must return a positive finite learning rate")
        return float(value)

    def __repr__(self) -> str:
        return f"FunctionSchedule({self.function!r})"


#: The named schedules, with their defaults.
SCHEDULES: dict[str, type[Schedule]] = {
    "constant": Constant, "step": Step, "cosine": Cosine, "plateau": Plateau,
}


def as_schedule(schedule: Any) -> Schedule:
    """A :class:`Schedule` from a name, an instance or a callable ``epoch -> eta``."""
    if isinstance(schedule, Schedule):
        return schedule
    if isinstance(schedule, type) and issubclass(schedule, Schedule):
        raise TypeError(f"schedule must be a Schedule instance such as {schedule.__name__}(), "
                        f"not the class {schedule.__name__}")
    if isinstance(schedule, str):
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(map(repr, SCHEDULES))}, "
                             f"a loopbp.schedules.Schedule or a callable, got {schedule!r}")
        return SCHEDULES[schedule]()
    if callable(schedule):
        return FunctionSchedule(schedule)
    raise TypeError(f"schedule must be a name, a loopbp.schedules.Schedule or a callable "
                    f"epoch -> eta, got {type(schedule).__name__} {schedule!r}")


def check_dict(data: Any) -> Schedule | None:
    """Check a :meth:`Schedule.to_dict` read from a file; return the schedule it describes.

    ``name``, ``params`` and ``state`` must be what ``to_dict`` writes: a known
    name, parameters with exactly the schedule's keys and values its
    constructor accepts, and a state :meth:`~Schedule.load_state` accepts.
    Returns None for a schedule that cannot be rebuilt from the file: a
    callable one (its function is not in it) or a user's own :class:`Schedule`
    subclass (another name, whose params and state must only be mappings: the
    same schedule object reads them back when the run is resumed).
    Raises ``TypeError`` or ``ValueError`` naming the field.
    """
    if not isinstance(data, dict) or set(data) != {"name", "params", "state"}:
        raise TypeError(f"schedule must be a mapping with name, params and state, got {data!r}")
    name, params, state = data["name"], data["params"], data["state"]
    if not isinstance(name, str) or not name:
        raise ValueError(f"schedule.name must be a schedule's name, got {name!r}")
    if name not in SCHEDULES and name != "callable":
        if not isinstance(params, dict) or not isinstance(state, dict):
            raise TypeError(f"schedule.params and schedule.state of a {name!r} schedule must "
                            f"be mappings, got {params!r} and {state!r}")
        return None
    # exactly the keys params() writes: callers (the CLI) look them up in a mapping
    keys = set() if name == "callable" else set(SCHEDULES[name]().params())
    if not isinstance(params, dict) or set(params) != keys:
        raise TypeError(f"schedule.params of a {name!r} schedule must be a mapping with the "
                        f"keys {sorted(keys)}, got {params!r}")
    if name == "callable":
        if state != {}:
            raise ValueError(f"schedule.state of a 'callable' schedule must be {{}}, "
                             f"got {state!r}")
        return None
    try:
        schedule = SCHEDULES[name](**params)
    except (TypeError, ValueError) as err:
        raise type(err)(f"schedule.params of a {name!r} schedule: {err}") from err
    if type(schedule).load_state is Schedule.load_state and state != {}:
        raise ValueError(f"schedule.state of a {name!r} schedule must be {{}}, got {state!r}")
    schedule.load_state(state)
    return schedule


def from_dict(data: dict[str, Any], function: Callable[[int], float] | None = None) -> Schedule:
    """Rebuild a schedule from :meth:`Schedule.to_dict` (a callable one needs ``function``)."""
    schedule = check_dict(data)
    if schedule is None and data["name"] != "callable":
        raise ValueError(f"the checkpoint's run used its own schedule {data['name']!r}; pass "
                         "the same schedule object as schedule= to continue it")
    if schedule is None:
        if function is None or not callable(function):
            raise ValueError("the checkpoint's run used a schedule function; pass the same "
                             "function as schedule= to continue it")
        return FunctionSchedule(function)
    return schedule
