"""Monitoring: the maths of quality, latency, drift and data quality, and what a model's
monitoring data means (which version a number belongs to, status, digests).

The maths are pure functions over numpy arrays / pandas Series (no Slack, HTTP or database),
whose numbers match the tools users check them against: scikit-learn for quality, numpy for
quantiles, Evidently's defaults (and SciPy's p-values) for drift. SciPy and scikit-learn are
only used by the tests; pyarrow only where Parquet is read.

- `quality`: confusion matrix, accuracy, precision/recall/F1, ROC AUC (binary, one-vs-rest).
- `regression`: MAE, RMSE, R², MAPE.
- `latency`: p50/p95/p99, mean, throughput.
- `drift`: KS, χ², z-test, Wasserstein, Jensen–Shannon, PSI; `DriftConfig`, reports.
- `data_quality`: per feature, missing, out-of-range, new-category and wrong-type shares.
- `streaming`: the same digest accumulated chunk by chunk, and over a Parquet file.
- `metric_names`: how those numbers are named as samples (`psi:age`, `missing:age`, …).

The names below are loaded on first use (PEP 562), so `import bot.domain.monitoring.x` for a
light module (status, metric names) does not pay for numpy and pandas: `modelbot status`
must start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "drift": ("DriftConfig", "DriftReport", "FeatureDrift", "choose_method", "drift_report", "feature_drift",
              "feature_kind"),
    "metric_names": ("DEFAULT_THRESHOLDS",),
    "latency": ("LatencyReport", "latency_report", "percentiles", "throughput"),
    "quality": ("ConfusionMatrix", "QualityReport", "accuracy", "confusion_matrix", "precision_recall_f1",
                "quality_report", "request_error_rate", "roc_auc", "roc_auc_ovr"),
    "regression": ("RegressionReport", "regression_report"),
    "data_quality": ("DataQuality", "data_quality_report"),
    "statistics": ("chisquare_test", "infer_kind", "jensenshannon", "jensenshannon_drift", "ks_2samp", "psi",
                   "psi_from_counts", "quantile_edges", "wasserstein_distance", "wasserstein_norm", "z_test"),
    "streaming": ("DigestAccumulator", "MonitoringDigest", "summarise_parquet"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
