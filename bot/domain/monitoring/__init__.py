"""Monitoring computations: quality, latency and drift of a model's predictions.

Pure functions over numpy arrays / pandas Series (no Slack, HTTP or database), whose
numbers match the tools users check them against: scikit-learn for quality, numpy
for quantiles, Evidently's defaults (and SciPy's p-values) for drift. SciPy and
scikit-learn are only used by the tests; pyarrow only inside `summarise_parquet`.

- `quality`: confusion matrix, accuracy, precision/recall/F1, ROC AUC, error rates.
- `latency`: p50/p95/p99, mean, throughput.
- `drift`: KS, χ², z-test, Wasserstein, Jensen–Shannon, PSI; `DriftConfig`, reports.
- `streaming`: the same digest accumulated chunk by chunk, and over a Parquet file.
"""

from bot.domain.monitoring.drift import (
    DEFAULT_THRESHOLDS,
    DriftConfig,
    DriftReport,
    FeatureDrift,
    choose_method,
    drift_report,
    feature_drift,
    feature_kind,
)
from bot.domain.monitoring.latency import LatencyReport, latency_report, percentiles, throughput
from bot.domain.monitoring.quality import (
    ConfusionMatrix,
    QualityReport,
    accuracy,
    confusion_matrix,
    precision_recall_f1,
    quality_report,
    request_error_rate,
    roc_auc,
)
from bot.domain.monitoring.statistics import (
    chisquare_test,
    infer_kind,
    jensenshannon,
    jensenshannon_drift,
    ks_2samp,
    psi,
    psi_from_counts,
    quantile_edges,
    wasserstein_distance,
    wasserstein_norm,
    z_test,
)
from bot.domain.monitoring.streaming import DigestAccumulator, MonitoringDigest, summarise_parquet

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ConfusionMatrix",
    "DigestAccumulator",
    "DriftConfig",
    "DriftReport",
    "FeatureDrift",
    "LatencyReport",
    "MonitoringDigest",
    "QualityReport",
    "accuracy",
    "chisquare_test",
    "choose_method",
    "confusion_matrix",
    "drift_report",
    "feature_drift",
    "feature_kind",
    "infer_kind",
    "jensenshannon",
    "jensenshannon_drift",
    "ks_2samp",
    "latency_report",
    "percentiles",
    "precision_recall_f1",
    "psi",
    "psi_from_counts",
    "quality_report",
    "quantile_edges",
    "request_error_rate",
    "roc_auc",
    "summarise_parquet",
    "throughput",
    "wasserstein_distance",
    "wasserstein_norm",
    "z_test",
]
