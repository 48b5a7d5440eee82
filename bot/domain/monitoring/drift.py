"""Per-feature drift against a reference sample, with Evidently's defaults.

Teams already read Evidently reports, so the defaults (which test, which threshold)
are Evidently 0.7's, as listed in docs/semantics.md:

=====================  ==========================================  ==================
reference rows         feature                                      test, drift when
=====================  ==========================================  ==================
≤ 1000                 numeric, > 5 distinct values (ref ∪ cur)     KS, p ≤ 0.05
≤ 1000                 categorical or ≤ 5 distinct, > 2 distinct    χ², p < 0.05
≤ 1000                 ≤ 2 distinct values                          z-test, p < 0.05
> 1000                 numeric, > 5 distinct values                 Wasserstein/σ ≥ 0.1
> 1000                 categorical or numeric with ≤ 5 distinct     Jensen–Shannon ≥ 0.1
any (when chosen)      any                                          PSI ≥ 0.1
=====================  ==========================================  ==================

(The ≤/< asymmetry between KS and the other p-value tests is Evidently's own.) The
dataset drifts when at least half of the features do. A feature is categorical when
its reference column is bool, string, object or category, or integer with at most 10
distinct values (Evidently's inference); `DriftConfig` can override both the kind and
the method per feature.

The statistics themselves live in `statistics.py`; this module decides which one a
feature gets and what its value means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from bot.domain.errors import InvalidInput
from bot.domain.monitoring._inputs import ArrayLike, as_1d, as_numeric_1d
from bot.domain.monitoring.metric_names import DEFAULT_THRESHOLDS, METHODS, P_VALUE_METHODS, is_drifting
from bot.domain.monitoring.statistics import (
    Binning,
    Kind,
    align_value_counts,
    binned_counts,
    chisquare_from_counts,
    infer_kind,
    jensenshannon,
    ks_2samp,
    psi_from_counts,
    value_counts,
    wasserstein_norm,
    z_from_counts,
)

Method = Literal["auto", "ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi"]

__all__ = ["DEFAULT_THRESHOLDS", "METHODS", "P_VALUE_METHODS"]  # re-exported for the callers of drift


@dataclass(frozen=True)
class DriftConfig:
    """How drift is judged; the defaults reproduce Evidently's.

    - `method`: one test for every feature, or "auto" for Evidently's choice;
      `per_feature` overrides it for named features.
    - `thresholds`: per-method overrides of `DEFAULT_THRESHOLDS`;
      `feature_thresholds` per feature (wins over both).
    - `categorical` / `numerical`: force a feature's kind.
    - `psi_binning`/`psi_bins`: PSI on a numeric feature with more than 20 distinct
      reference values uses Evidently 0.7's binning by default ("evidently": Sturges
      equal-width bins over reference ∪ current, `np.histogram_bin_edges(…, "sturges")`),
      so the number equals an Evidently report's; "quantile" is the textbook PSI over
      `psi_bins` reference-quantile bins. `js_binning` is the same choice for
      Jensen–Shannon on numeric features.
    - `drop_missing`: drop NaN/None/±inf before testing (Evidently's behaviour);
      False (default) makes missing values an error so they cannot hide.
    - `wasserstein_resolution`: grid cell width, in reference standard deviations, of
      the streaming Wasserstein approximation (see `streaming.py`).
    """

    method: Method = "auto"
    per_feature: Mapping[str, Method] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    feature_thresholds: Mapping[str, float] = field(default_factory=dict)
    categorical: tuple[str, ...] = ()
    numerical: tuple[str, ...] = ()
    small_reference_rows: int = 1000
    low_cardinality: int = 5
    drift_share: float = 0.5
    psi_bins: int = 10
    psi_binning: Binning = "evidently"
    js_binning: Binning = "evidently"
    drop_missing: bool = False
    wasserstein_resolution: float = 2.5e-4

    def __post_init__(self) -> None:
        for name, method in [("method", self.method), *self.per_feature.items()]:
            if method != "auto" and method not in METHODS:
                raise InvalidInput(
                    f"Unknown drift method {method!r} for {name}; use one of {', '.join(METHODS)}."
                )
        for method in self.thresholds:
            if method not in METHODS:
                raise InvalidInput(f"Threshold given for unknown drift method {method!r}.")
        if self.psi_bins < 2:
            raise InvalidInput("psi_bins must be at least 2.")
        if not 0.0 < self.drift_share <= 1.0:
            raise InvalidInput("drift_share must be in (0, 1].")
        overlap = set(self.categorical) & set(self.numerical)
        if overlap:
            raise InvalidInput(f"Features declared both categorical and numerical: {sorted(overlap)}.")

    def threshold(self, method: str, feature: str) -> float:
        if feature in self.feature_thresholds:
            return float(self.feature_thresholds[feature])
        return float(self.thresholds.get(method, DEFAULT_THRESHOLDS[method]))

    def requested_method(self, feature: str) -> str:
        return self.per_feature.get(feature, self.method)


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's verdict. `statistic` is the test statistic (KS D, χ², z) for the
    p-value tests and the distance itself otherwise; `error_bound` is set when the
    statistic is an approximation (streaming Wasserstein) and bounds |approx − exact|."""

    name: str
    method: str
    statistic: float
    threshold: float
    drifted: bool
    p_value: float | None = None
    error_bound: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "method": self.method,
            "statistic": self.statistic,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "p_value": self.p_value,
        }
        if self.error_bound is not None:
            out["error_bound"] = self.error_bound
        return out


@dataclass(frozen=True)
class DriftReport:
    """All features' verdicts; the dataset drifts when `share_drifted` ≥ `drift_share`."""

    features: tuple[FeatureDrift, ...]
    share_drifted: float
    dataset_drift: bool
    drift_share: float = 0.5

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drifted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": [f.to_dict() for f in self.features],
            "share_drifted": self.share_drifted,
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "drifted_features": list(self.drifted_features),
        }


def make_report(features: Sequence[FeatureDrift], drift_share: float = 0.5) -> DriftReport:
    """Combine per-feature verdicts; an empty list is an error, not "no drift"."""
    if not features:
        raise InvalidInput("No features to check for drift.")
    share = sum(f.drifted for f in features) / len(features)
    return DriftReport(tuple(features), share, share >= drift_share, drift_share)


# ---------------------------------------------------------------- choosing


def feature_kind(reference: ArrayLike, name: str = "", config: DriftConfig | None = None) -> Kind:
    """The feature's kind: as declared in `config`, else inferred from the reference."""
    config = config or DriftConfig()
    if name in config.categorical:
        return "categorical"
    if name in config.numerical:
        return "numerical"
    return infer_kind(reference)


def choose_method(kind: Kind, reference_rows: int, n_values: int, config: DriftConfig) -> str:
    """Evidently's default test for a feature (`n_values` = distinct values in ref ∪ cur)."""
    if reference_rows <= config.small_reference_rows:
        if kind == "numerical" and n_values > config.low_cardinality:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if kind == "numerical" and n_values > config.low_cardinality:
        return "wasserstein"
    return "jensenshannon"


# ---------------------------------------------------------------- one feature, many features


def without_missing(values: ArrayLike) -> np.ndarray:
    """`values` without NaN/None/±inf, as Evidently cleans columns before testing."""
    series = pd.Series(values) if not isinstance(values, pd.Series) else values
    if series.dtype.kind == "f":
        series = series.replace([np.inf, -np.inf], np.nan)
    return series.dropna().to_numpy()


def feature_drift(
    reference: ArrayLike,
    current: ArrayLike,
    name: str = "feature",
    kind: Kind | None = None,
    config: DriftConfig | None = None,
) -> FeatureDrift:
    """Drift of one feature: pick the test (config or Evidently's default) and judge it."""
    config = config or DriftConfig()
    if config.drop_missing:
        reference, current = without_missing(reference), without_missing(current)
    kind = kind or feature_kind(reference, name, config)
    if kind == "numerical":
        ref = as_numeric_1d(reference, f"reference[{name}]")
        cur = as_numeric_1d(current, f"current[{name}]")
    else:
        ref = as_1d(reference, f"reference[{name}]")
        cur = as_1d(current, f"current[{name}]")
    method = config.requested_method(name)
    if method == "auto":
        n_values = _distinct_count(ref, cur, kind)
        method = choose_method(kind, len(ref), n_values, config)
    return judge(name, method, config, *_statistic(method, ref, cur, kind, config))


def _distinct_count(ref: np.ndarray, cur: np.ndarray, kind: Kind) -> int:
    """Distinct values in ref ∪ cur (Evidently picks tests by this number)."""
    if kind == "numerical":
        return len(np.unique(np.concatenate([ref, cur])))
    return len(set(value_counts(ref)) | set(value_counts(cur)))


def _statistic(
    method: str, ref: np.ndarray, cur: np.ndarray, kind: Kind, config: DriftConfig
) -> tuple[float, float | None]:
    if method == "ks":
        if kind != "numerical":
            raise InvalidInput("The KS test needs a numeric feature.")
        return ks_2samp(ref, cur)
    if method == "wasserstein":
        if kind != "numerical":
            raise InvalidInput("The Wasserstein distance needs a numeric feature.")
        return wasserstein_norm(ref, cur), None
    if method in ("chisquare", "z"):
        counts = align_value_counts(value_counts(ref), value_counts(cur))
        return chisquare_from_counts(counts) if method == "chisquare" else z_from_counts(counts)
    if method == "psi":
        return psi_from_counts(binned_counts(ref, cur, kind, config.psi_binning, config.psi_bins)), None
    counts = binned_counts(ref, cur, kind, config.js_binning, config.psi_bins)
    return jensenshannon(counts.reference, counts.current), None


def judge(
    name: str,
    method: str,
    config: DriftConfig,
    statistic: float,
    p_value: float | None,
    error_bound: float | None = None,
) -> FeatureDrift:
    """Apply the configured threshold to a computed statistic (p-value tests by p)."""
    threshold = config.threshold(method, name)
    if method in P_VALUE_METHODS and p_value is None:
        raise ValueError(f"{method} needs a p-value")
    drifted = is_drifting(method, p_value if method in P_VALUE_METHODS else statistic, threshold)  # type: ignore[arg-type]
    return FeatureDrift(name, method, float(statistic), threshold, bool(drifted), p_value, error_bound)


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Iterable[str] | None = None,
    config: DriftConfig | None = None,
) -> DriftReport:
    """Drift of every feature (default: the reference's columns) and the dataset verdict."""
    config = config or DriftConfig()
    names = list(features) if features is not None else list(reference.columns)
    missing = [f for f in names if f not in reference.columns or f not in current.columns]
    if missing:
        raise InvalidInput(f"Features missing from the reference or the current data: {missing}.")
    results = [feature_drift(reference[f], current[f], f, config=config) for f in names]
    return make_report(results, config.drift_share)
