"""How monitoring numbers are named as samples, and what a name says about its number.

One module decides the names, so the code that writes samples (prediction-log digestion) and
the code that reads them (status, digests, alert rules) cannot disagree:

- drift per feature: `psi:age` (the statistic) or, for the p-value tests, `ks_p:age`;
  `drift_share`, `dataset_drift`;
- data quality per feature: `missing:age`, `out_of_range:age`, `new_category:country`,
  `wrong_type:age` (shares 0–1);
- labels: `predictions`, `labelled_predictions` (counts per window) and `label_coverage`
  (their ratio), so coverage over any span is Σ labelled / Σ predictions.

Light on purpose (no numpy): `modelbot status` imports it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

METHODS: tuple[str, ...] = ("ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi")
P_VALUE_METHODS = frozenset({"ks", "chisquare", "z"})
DEFAULT_THRESHOLDS: Mapping[str, float] = {
    "ks": 0.05,
    "chisquare": 0.05,
    "z": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
}
DRIFT_SUMMARY = ("drift_share", "dataset_drift")
DATA_QUALITY_KINDS = ("missing", "out_of_range", "new_category", "wrong_type")
PREDICTIONS = "predictions"
LABELLED = "labelled_predictions"
COVERAGE = "label_coverage"
QUALITY_METRICS = frozenset({
    "accuracy", "precision", "recall", "f1", "error_rate", "roc_auc", "roc_auc_ovr_macro", "roc_auc_ovr_weighted",
    "mae", "rmse", "r2", "mape",
})
"""Metrics computed from labels: they exist only for labelled rows, and change when labels arrive."""

MAX_METRIC_CHARS = 128
_BAD_CHARS = re.compile(r"[^A-Za-z0-9_.:/-]")
_FEATURE_METRIC = re.compile(r"^(?P<kind>[a-z_]+?)(?P<p>_p)?:(?P<feature>.+)$")


def _safe(feature: str) -> str:
    return _BAD_CHARS.sub("_", feature)


def drift_metric(feature: str, method: str) -> str:
    """`psi:age`; `ks_p:age` for the p-value tests, whose sample is the p-value (lower = more drift)."""
    suffix = "_p" if method in P_VALUE_METHODS else ""
    return f"{method}{suffix}:{_safe(feature)}"[:MAX_METRIC_CHARS]


def drift_sample_value(method: str, statistic: float, p_value: float | None) -> float | None:
    """The number a drift sample holds: the p-value for p-value tests, else the statistic."""
    return p_value if method in P_VALUE_METHODS else statistic


def parse_drift_metric(metric: str) -> tuple[str, str] | None:
    """(method, feature) for a per-feature drift sample (`psi:age`, `ks_p:age`), else None."""
    match = _FEATURE_METRIC.match(metric)
    if not match or match.group("kind") not in DEFAULT_THRESHOLDS:
        return None
    method = match.group("kind")
    if (method in P_VALUE_METHODS) != bool(match.group("p")):
        return None
    return method, match.group("feature")


def is_drifting(method: str, value: float, threshold: float | None = None) -> bool:
    """The drift verdict of a recorded sample: p-values drift below, distances at or above."""
    limit = DEFAULT_THRESHOLDS[method] if threshold is None else threshold
    if method == "ks":
        return value <= limit
    if method in P_VALUE_METHODS:
        return value < limit
    return value >= limit


def quality_metric(kind: str, feature: str) -> str:
    """`missing:age`, `out_of_range:age`, `new_category:country`, `wrong_type:age`."""
    return f"{kind}:{_safe(feature)}"[:MAX_METRIC_CHARS]


def parse_quality_metric(metric: str) -> tuple[str, str] | None:
    """(kind, feature) for a data-quality sample, else None."""
    kind, sep, feature = metric.partition(":")
    if not sep or kind not in DATA_QUALITY_KINDS or not feature:
        return None
    return kind, feature


def is_label_based(metric: str) -> bool:
    """Quality metrics and label coverage: the numbers late labels change."""
    return metric in QUALITY_METRICS or metric in (LABELLED, COVERAGE)


def unit(metric: str) -> str:
    """The unit a chart axis shows for a metric ("" for plain ratios and scores)."""
    lowered = metric.lower()
    if lowered.endswith("_ms"):
        return "ms"
    if lowered.endswith("_per_s"):
        return "per second"
    if lowered.endswith("_seconds") or lowered.endswith("_s"):
        return "s"
    if lowered in (PREDICTIONS, LABELLED):
        return "rows"
    if parse_quality_metric(metric) is not None or lowered in (COVERAGE, "drift_share", "error_rate", "up"):
        return "share"
    return ""
