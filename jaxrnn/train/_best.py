"""Keep-best and early stopping, for `jaxrnn.runs` and for loops of your own."""

from __future__ import annotations

import math
from typing import NamedTuple

from jaxrnn import _checks


class KeepBest(NamedTuple):
    """The best validation so far, and whether to stop: Keras'
    `ModelCheckpoint(save_best_only=True)` and `EarlyStopping(patience=N)`
    as one immutable value, which a checkpoint can store (`_asdict()`).

    Attributes:
        lower: whether a lower value is better (a loss, an error).
        patience: validations without improvement after which `stop` is
            True; None never stops.
        best: the best value so far (None before the first finite one).
        step: the step of that value (None likewise).
        waited: validations since the best one.

    Examples:
        >>> watch = KeepBest(lower=True, patience=2)
        >>> for step, loss in [(100, 0.5), (200, 0.3), (300, 0.4), (400, 0.35)]:
        ...     watch = watch.update(step, loss)
        ...     if watch.step == step:
        ...         pass  # keep this step's params: the best so far
        >>> watch.best, watch.step, watch.waited, watch.stop
        (0.3, 200, 2, True)
    """

    lower: bool = True
    patience: int | None = None
    best: float | None = None
    step: int | None = None
    waited: int = 0

    def update(self, step: int, value: float) -> "KeepBest":
        """The watch after a validation at `step` that measured `value`. A
        value improves only if it is finite and strictly better; NaN or
        infinity counts as a validation without improvement."""
        value = float(value)
        better = math.isfinite(value) and (
            self.best is None
            or (value < self.best if self.lower else value > self.best)
        )
        if better:
            return self._replace(best=value, step=int(step), waited=0)
        return self._replace(waited=self.waited + 1)

    @property
    def stop(self) -> bool:
        """Whether `patience` validations have passed without improvement."""
        return self.patience is not None and self.waited >= self.patience


def keep_best(*, lower: bool = True, patience: int | None = None) -> KeepBest:
    """A new `KeepBest`, with its arguments checked.

    Args:
        lower: whether a lower validation value is better.
        patience: validations without improvement before `stop`, a positive
            int, or None (the default) to never stop.

    Raises:
        ValueError: a patience that is not a positive int or None.
    """
    if patience is not None:
        patience = _checks.positive_int("keep_best", "patience", patience)
    return KeepBest(bool(lower), patience)
