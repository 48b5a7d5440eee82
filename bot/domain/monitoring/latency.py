"""Serving latency and throughput of one window of predictions.

Quantiles use numpy's default linear interpolation, because that is what a user
gets from ``np.percentile`` or ``pandas.Series.quantile`` when checking our numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bot.domain.errors import InvalidInput
from bot.domain.monitoring._inputs import ArrayLike, as_1d, as_numeric_1d

QUANTILES = (50.0, 95.0, 99.0)


@dataclass(frozen=True)
class LatencyReport:
    """Latency quantiles in milliseconds, and rows per second over the window's span.

    `throughput_per_s` is None when the span is unknown or zero (a single instant
    has no rate).
    """

    count: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    span_seconds: float | None
    throughput_per_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "mean_ms": self.mean_ms,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "span_seconds": self.span_seconds,
            "throughput_per_s": self.throughput_per_s,
        }


def percentiles(values: ArrayLike, qs: tuple[float, ...] = QUANTILES) -> tuple[float, ...]:
    """`np.percentile` (linear interpolation) of `values` at each of `qs` (0–100)."""
    arr = as_numeric_1d(values, "latency")
    return tuple(float(v) for v in np.percentile(arr, qs))


def epoch_seconds(timestamps: ArrayLike) -> np.ndarray:
    """Timestamps as float seconds since the epoch.

    Accepts datetime64 (naive = UTC), timezone-aware pandas Series, or numbers that
    already are epoch seconds; ISO 8601 strings are parsed with pandas.
    """
    if isinstance(timestamps, pd.Series) and isinstance(timestamps.dtype, pd.DatetimeTZDtype):
        timestamps = timestamps.dt.tz_convert("UTC").dt.tz_localize(None)
    arr = as_1d(timestamps, "timestamps")
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[ns]").astype(np.int64) / 1e9
    if arr.dtype.kind in "iuf":
        return arr.astype(np.float64)
    try:
        parsed = pd.to_datetime(pd.Series(arr), utc=True)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("timestamps must be datetimes, epoch seconds or ISO 8601 strings.") from exc
    return parsed.dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64) / 1e9


def throughput(rows: int, start_seconds: float, end_seconds: float) -> float | None:
    """Rows per second between the first and the last timestamp (None for a zero span)."""
    span = end_seconds - start_seconds
    if span < 0:
        raise InvalidInput("The window ends before it starts.")
    if span == 0:
        return None
    return rows / span


def latency_from_sorted(sorted_ms: np.ndarray, start: float | None, end: float | None) -> LatencyReport:
    """Report from latencies already sorted ascending (the streaming path sorts once).

    On sorted data `np.percentile`'s selection is linear, so this costs one sort.
    """
    n = len(sorted_ms)
    if n == 0:
        raise InvalidInput("No latency values in this window.")
    p50, p95, p99 = (float(v) for v in np.percentile(sorted_ms, QUANTILES))
    span = None if start is None or end is None else end - start
    rate = None if start is None or end is None else throughput(n, start, end)
    return LatencyReport(
        count=n,
        mean_ms=float(np.mean(sorted_ms)),
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=float(sorted_ms[-1]),
        span_seconds=span,
        throughput_per_s=rate,
    )


def latency_report(latency_ms: ArrayLike, timestamps: ArrayLike | None = None) -> LatencyReport:
    """p50/p95/p99, mean and max latency, plus throughput when timestamps are given."""
    arr = as_numeric_1d(latency_ms, "latency_ms")
    if (arr < 0).any():
        raise InvalidInput("latency_ms has negative values.")
    start = end = None
    if timestamps is not None:
        ts = epoch_seconds(timestamps)
        if len(ts) != len(arr):
            raise InvalidInput(f"latency_ms has {len(arr)} rows but timestamps has {len(ts)}.")
        start, end = float(ts.min()), float(ts.max())
    return latency_from_sorted(np.sort(arr), start, end)
