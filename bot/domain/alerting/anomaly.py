"""Anomaly rules: does a value leave its own trailing baseline by more than k robust deviations?

The baseline is the median and MAD (scaled by 1.4826 to match a standard deviation for normal
data) of the series over the window, taken at the same hour of the day when the window holds
at least three days, and at the same hour of the week when it holds at least three weeks: a
metric with a daily cycle is compared with itself at that time of day, so the cycle does not
fire but a step change does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

MAD_TO_SIGMA = 1.4826
MIN_POINTS = 6


@dataclass(frozen=True)
class Baseline:
    median: float
    deviation: float
    points: int
    seasonality: str  # "hour-of-week", "hour-of-day" or "none"

    def score(self, value: float) -> float:
        return abs(value - self.median) / self.deviation


def baseline(epoch_seconds: np.ndarray, values: np.ndarray, at: datetime, window_seconds: int) -> Baseline | None:
    """None when there are too few points to judge (the rule then reports no data)."""
    if len(values) < MIN_POINTS:
        return None
    hours = (epoch_seconds // 3600).astype(np.int64)
    now_hour = int(at.timestamp() // 3600)
    # 1970-01-01 was a Thursday: shift so that bucket 0 is Monday 00:00 UTC
    if window_seconds >= 21 * 86400:
        bucket, seasonality = (hours + 72) % 168, "hour-of-week"
        current = (now_hour + 72) % 168
    elif window_seconds >= 3 * 86400:
        bucket, seasonality = hours % 24, "hour-of-day"
        current = now_hour % 24
    else:
        bucket, seasonality, current = np.zeros_like(hours), "none", 0
    same = values[bucket == current]
    if len(same) < MIN_POINTS:
        same, seasonality = values, "none"
    median = float(np.median(same))
    mad = float(np.median(np.abs(same - median))) * MAD_TO_SIGMA
    floor = 1e-9 + 1e-3 * max(abs(median), 1e-6)
    return Baseline(median=median, deviation=max(mad, floor), points=len(same), seasonality=seasonality)
