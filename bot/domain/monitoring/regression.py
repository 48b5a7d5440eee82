"""Regression quality: MAE, RMSE, R², MAPE — exactly as `sklearn.metrics` defines them.

- MAE  = mean |y − ŷ|                                  (`mean_absolute_error`)
- RMSE = √(mean (y − ŷ)²)                              (`root_mean_squared_error`)
- R²   = 1 − Σ(y − ŷ)² / Σ(y − ȳ)²; with Σ(y − ȳ)² = 0 it is 1.0 for a perfect fit and
         0.0 otherwise (`r2_score`'s `force_finite=True`); undefined (None) for one row
- MAPE = mean |y − ŷ| / max(|y|, ε), ε = machine epsilon (`mean_absolute_percentage_error`:
         a share, 0.12 = 12 %, and huge rather than infinite when y = 0)

`RegressionAccumulator` gets the same numbers chunk by chunk without keeping the rows: sums
of |e|, e² and |e|/max(|y|, ε), and the labels' count, mean and sum of squared deviations
merged with Chan's parallel formula, so Σ(y − ȳ)² never suffers the cancellation of
Σy² − (Σy)²/n. The chunked result equals the one-pass one to rounding (~1e-12 relative).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.domain.errors import InvalidInput
from bot.domain.monitoring._inputs import ArrayLike, as_numeric_1d, same_length

EPSILON = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class RegressionReport:
    rows: int
    mae: float
    mse: float
    rmse: float
    r2: float | None
    mape: float

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "mae": self.mae, "mse": self.mse, "rmse": self.rmse, "r2": self.r2,
                "mape": self.mape}

    def metrics(self) -> dict[str, float]:
        """The sample values (R² only where defined)."""
        out = {"mae": self.mae, "rmse": self.rmse, "mape": self.mape}
        if self.r2 is not None:
            out["r2"] = self.r2
        return out


def regression_report(y_true: ArrayLike, y_pred: ArrayLike) -> RegressionReport:
    """All regression metrics of one window of labelled predictions."""
    acc = RegressionAccumulator()
    acc.update(as_numeric_1d(y_true, "y_true"), as_numeric_1d(y_pred, "y_pred"))
    return acc.result()


class RegressionAccumulator:
    """Sums that the regression metrics need, merged chunk by chunk."""

    def __init__(self) -> None:
        self.n = 0
        self.abs_error = 0.0
        self.sq_error = 0.0
        self.abs_pct = 0.0
        self.mean_y = 0.0
        self.m2_y = 0.0  # Σ (y − ȳ)² of the rows so far

    def update(self, y: np.ndarray, y_hat: np.ndarray) -> None:
        same_length(("y_true", y), ("y_pred", y_hat))
        m = len(y)
        if m == 0:
            return
        y = y.astype(np.float64, copy=False)
        err = y - y_hat.astype(np.float64, copy=False)
        abs_err = np.abs(err)
        self.abs_error += float(abs_err.sum())
        self.sq_error += float(np.dot(err, err))
        self.abs_pct += float((abs_err / np.maximum(np.abs(y), EPSILON)).sum())
        chunk_mean = float(y.mean())
        dev = y - chunk_mean
        chunk_m2 = float(np.dot(dev, dev))
        total = self.n + m
        delta = chunk_mean - self.mean_y
        self.m2_y += chunk_m2 + delta * delta * self.n * m / total
        self.mean_y += delta * m / total
        self.n = total

    def result(self) -> RegressionReport:
        if self.n == 0:
            raise InvalidInput("No labelled predictions in this window.")
        mse = self.sq_error / self.n
        r2: float | None
        if self.n < 2:
            r2 = None
        elif self.m2_y == 0.0:
            r2 = 1.0 if self.sq_error == 0.0 else 0.0
        else:
            r2 = 1.0 - self.sq_error / self.m2_y
        return RegressionReport(self.n, self.abs_error / self.n, mse, math.sqrt(mse), r2, self.abs_pct / self.n)
