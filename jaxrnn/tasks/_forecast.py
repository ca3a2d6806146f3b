"""Forecasting a series: splits by time, scaling fitted on train, windows, and
the naive baselines that any forecaster has to beat.

The split is by time: train is the first part of the series, validation the
next, test the last. A window's inputs are the `window` values before its
targets, and its `horizon` targets all lie inside one split. Inputs may reach
back into an earlier split (at forecast time the past is known), but no
target is ever seen by two splits, and the scaler sees train only.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Scaler(NamedTuple):
    """z = (x - mean) / std, with mean and std fitted on the training part."""

    mean: float
    std: float

    def transform(self, x):
        return (x - self.mean) / self.std

    def inverse(self, z):
        return z * self.std + self.mean


class Windows(NamedTuple):
    """Forecasting windows of one split, in the series' own units.

    Attributes:
        inputs: float64 [N, window], the values before each target span.
        targets: float64 [N, horizon], the next `horizon` values.
        start: int [N], the index in the series of each first target.
    """

    inputs: np.ndarray
    targets: np.ndarray
    start: np.ndarray


class ForecastData(NamedTuple):
    """A series cut by time into train, validation and test windows."""

    train: Windows
    valid: Windows
    test: Windows
    scaler: Scaler
    bounds: tuple[int, int]  # the first index of validation and of test
    period: int | None


def make_windows(
    values: np.ndarray, window: int, horizon: int, first: int, last: int
) -> Windows:
    """Every window whose targets lie in values[first:last] and whose inputs exist."""
    starts = np.arange(max(first, window), last - horizon + 1)
    inputs = np.stack([values[s - window : s] for s in starts]) if len(starts) else None
    targets = (
        np.stack([values[s : s + horizon] for s in starts]) if len(starts) else None
    )
    if inputs is None:
        inputs, targets = np.zeros((0, window)), np.zeros((0, horizon))
    return Windows(inputs, targets, starts)


def split_series(
    values,
    window: int,
    horizon: int,
    *,
    valid_fraction: float = 0.15,
    test_fraction: float = 0.15,
    period: int | None = None,
) -> ForecastData:
    """Cut a series by time and window each part; fit the scaler on train.

    Args:
        values: the series [N], in time order.
        window: input steps per window (>= 1).
        horizon: steps forecast at once (>= 1).
        valid_fraction: the share of the series, before the test share,
            whose values are the validation targets.
        test_fraction: the share of the series, at its end, whose values
            are the test targets.
        period: the seasonal period, kept for the seasonal-naive baseline.

    Raises:
        ValueError: a split too short to hold one window, or bad fractions.
    """
    values = np.asarray(values, np.float64)
    n = len(values)
    if not (0 < valid_fraction < 1 and 0 < test_fraction < 1) or (
        valid_fraction + test_fraction >= 1
    ):
        raise ValueError(
            "split_series: valid_fraction and test_fraction must be in (0, 1) "
            f"with a sum below 1, got {valid_fraction} and {test_fraction}."
        )
    valid_start = n - int(round(n * (valid_fraction + test_fraction)))
    test_start = n - int(round(n * test_fraction))
    train_values = values[:valid_start]
    scaler = Scaler(float(train_values.mean()), float(train_values.std()) or 1.0)
    parts = (
        make_windows(values, window, horizon, 0, valid_start),
        make_windows(values, window, horizon, valid_start, test_start),
        make_windows(values, window, horizon, test_start, n),
    )
    for name, part in zip(("train", "validation", "test"), parts):
        if len(part.start) == 0:
            raise ValueError(
                f"split_series: the {name} part of a series of {n} values is too "
                f"short for one window of {window} inputs and {horizon} targets. "
                "Use a smaller --seq-len or --horizon."
            )
    return ForecastData(*parts, scaler, (valid_start, test_start), period)


def last_value(inputs: np.ndarray, horizon: int) -> np.ndarray:
    """Forecast every step as the last observed value."""
    return np.repeat(inputs[:, -1:], horizon, axis=1)


def seasonal_naive(inputs: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """Forecast step k as the value one period before it."""
    if inputs.shape[1] < period:
        raise ValueError(
            f"seasonal_naive: needs windows of at least one period ({period}) of "
            f"inputs, got {inputs.shape[1]}."
        )
    season = inputs[:, -period:]
    return np.stack([season[:, k % period] for k in range(horizon)], axis=1)


def fit_linear_ar(train: Windows, ridge: float = 1e-6) -> np.ndarray:
    """Least squares of each target on the window's inputs and a constant.

    Returns the coefficients [window + 1, horizon] (a direct multi-step linear
    autoregressive model, AR(window)), fitted on the training windows only.
    """
    design = np.concatenate([train.inputs, np.ones((len(train.inputs), 1))], axis=1)
    gram = design.T @ design + ridge * np.eye(design.shape[1])
    return np.linalg.solve(gram, design.T @ train.targets)


def linear_ar(inputs: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    return np.concatenate([inputs, np.ones((len(inputs), 1))], axis=1) @ coefficients


def errors(forecast: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """RMSE and MAE over every window and step, in the series' units."""
    diff = forecast - targets
    return {
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "mae": float(np.mean(np.abs(diff))),
    }


def baselines(data: ForecastData, split: str = "test") -> dict[str, dict[str, float]]:
    """The errors of the naive forecasts on one split ("valid" or "test").

    last_value always; seasonal_naive where the series has a period and the
    window covers it; linear_ar, fitted on the training windows.
    """
    part = getattr(data, split)
    horizon = part.targets.shape[1]
    out = {"last_value": errors(last_value(part.inputs, horizon), part.targets)}
    if data.period and part.inputs.shape[1] >= data.period:
        forecast = seasonal_naive(part.inputs, horizon, data.period)
        out["seasonal_naive"] = errors(forecast, part.targets)
    coefficients = fit_linear_ar(data.train)
    out["linear_ar"] = errors(linear_ar(part.inputs, coefficients), part.targets)
    return out
