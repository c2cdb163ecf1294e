"""What a training run records, epoch by epoch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class EpochRecord:
    """What happened in one epoch.

    ``cost`` is the training objective: the mean cost of the epoch's
    mini-batches, each measured before its update, plus the L2 term
    ``(λ/2n) Σ w²`` at the end of the epoch (0 without ``l2``).  The
    validation cost is the plain mean cost on the validation rows.
    """

    epoch: int  #: 1-based epoch number
    cost: float  #: training cost (see above)
    seconds: float  #: wall time of the training (not the evaluation)
    test_correct: int | None = None  #: test rows classified correctly, when test data given
    test_total: int | None = None
    eta: float | None = None  #: the learning rate used in this epoch
    validation_cost: float | None = None  #: mean cost on the validation rows
    validation_correct: int | None = None  #: validation rows classified correctly
    validation_total: int | None = None

    @property
    def test_accuracy(self) -> float | None:
        """Fraction of test rows classified correctly, or None."""
        if self.test_correct is None or not self.test_total:
            return None
        return self.test_correct / self.test_total

    @property
    def validation_accuracy(self) -> float | None:
        """Fraction of validation rows classified correctly, or None."""
        if self.validation_correct is None or not self.validation_total:
            return None
        return self.validation_correct / self.validation_total


@dataclass
class History:
    """Per-epoch records of one training run (across resumes)."""

    records: list[EpochRecord] = field(default_factory=list)
    interrupted: bool = False  #: True when Ctrl-C stopped training early
    stopped_early: bool = False  #: True when early stopping ended the run
    best_epoch: int | None = None  #: with early stopping: the epoch whose parameters were kept

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> EpochRecord:
        return self.records[i]

    @property
    def cost(self) -> list[float]:
        """Training cost of each epoch."""
        return [r.cost for r in self.records]

    @property
    def test_accuracy(self) -> list[float | None]:
        """Test accuracy after each epoch (None without test data)."""
        return [r.test_accuracy for r in self.records]

    @property
    def validation_cost(self) -> list[float | None]:
        """Validation cost after each epoch (None without validation data)."""
        return [r.validation_cost for r in self.records]

    @property
    def validation_accuracy(self) -> list[float | None]:
        """Validation accuracy after each epoch (None without validation labels)."""
        return [r.validation_accuracy for r in self.records]

    @property
    def eta(self) -> list[float | None]:
        """Learning rate of each epoch."""
        return [r.eta for r in self.records]

    @property
    def seconds(self) -> list[float]:
        """Training wall time of each epoch."""
        return [r.seconds for r in self.records]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (see :meth:`from_dict`)."""
        return {"records": [asdict(r) for r in self.records], "interrupted": self.interrupted,
                "stopped_early": self.stopped_early, "best_epoch": self.best_epoch}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """The inverse of :meth:`to_dict` (also reads records of earlier loopbp versions)."""
        known = {f.name for f in fields(EpochRecord)}
        records = []
        for r in data["records"]:
            unknown = set(r) - known
            if unknown:
                raise ValueError(f"unknown epoch record fields {sorted(unknown)}")
            records.append(EpochRecord(**r))
        best = data.get("best_epoch")
        return cls(records, bool(data["interrupted"]), bool(data.get("stopped_early", False)),
                   None if best is None else int(best))
