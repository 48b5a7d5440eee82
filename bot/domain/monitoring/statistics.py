"""Drift statistics: counts, bins, and the distances and tests computed from them.

Every statistic is computed from *counts* (value counts, counts per bin, counts at
the reference's distinct values), so the in-memory functions here and the chunked
path in `streaming.py` share one implementation of each formula. Each matches the
reference implementation users compare with: SciPy for KS, χ², Wasserstein and
Jensen–Shannon; Evidently 0.7 for PSI's ε, the z-test and the binning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from bot.domain.errors import InvalidInput
from bot.domain.monitoring import _special
from bot.domain.monitoring._inputs import ArrayLike, as_1d, as_numeric_1d

Kind = Literal["numerical", "categorical"]
Binning = Literal["quantile", "evidently"]

INTEGER_CATEGORY_LIMIT = 10
"""Integer columns with at most this many distinct values are categorical (Evidently)."""
PER_VALUE_BINS_LIMIT = 20
"""Numeric columns whose reference has at most this many distinct values are binned
one bin per value for PSI and Jensen–Shannon (Evidently's ``get_binned_data``)."""


def infer_kind(reference: ArrayLike) -> Kind:
    """Numerical or categorical, from the reference column's dtype (Evidently's inference).

    Floats are numerical; integers too unless they hold ≤ 10 distinct values; bool,
    strings, objects and categories are categorical.
    """
    dtype = reference.dtype if hasattr(reference, "dtype") else np.asarray(reference).dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind == "f":
            return "numerical"
        if dtype.kind in "iu":
            values = np.asarray(reference)
            return "categorical" if len(np.unique(values)) <= INTEGER_CATEGORY_LIMIT else "numerical"
        return "categorical"
    # pandas extension dtypes: nullable ints/floats are numbers, the rest are labels
    if pd.api.types.is_float_dtype(dtype):
        return "numerical"
    if pd.api.types.is_integer_dtype(dtype):
        n_unique = pd.Series(reference).nunique()
        return "categorical" if n_unique <= INTEGER_CATEGORY_LIMIT else "numerical"
    return "categorical"


# ---------------------------------------------------------------- counts


@dataclass(frozen=True)
class Counts:
    """Aligned histogram of reference and current over the same bins (or categories)."""

    reference: np.ndarray
    current: np.ndarray
    keys: tuple[Any, ...] | None = None  # category values, when bins are values

    @property
    def reference_shares(self) -> np.ndarray:
        return self.reference / self.reference.sum()

    @property
    def current_shares(self) -> np.ndarray:
        return self.current / self.current.sum()


def value_counts(values: np.ndarray) -> dict[Any, int]:
    """Distinct values and their counts: sort-based for numbers, hashed for text (sorting
    100 k Python strings costs ten times more)."""
    if values.dtype.kind == "O":
        kinds = {type(v) for v in values[: min(len(values), 1000)]}
        if len(kinds) > 1 and not kinds <= {int, float, bool}:
            raise InvalidInput("A feature mixes value types (e.g. numbers and strings).")
        counted = pd.Series(values, dtype=object).value_counts(sort=False)
        return {plain_scalar(u): int(c) for u, c in counted.items()}
    try:
        uniques, counts = np.unique(values, return_counts=True)
    except TypeError as exc:
        raise InvalidInput("A feature mixes value types (e.g. numbers and strings).") from exc
    return {plain_scalar(u): int(c) for u, c in zip(uniques, counts, strict=True)}


def plain_scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def align_value_counts(reference: Mapping[Any, int], current: Mapping[Any, int]) -> Counts:
    """Union of categories, sorted when sortable, with 0 where a side lacks one."""
    keys: list[Any] = list(set(reference) | set(current))
    try:
        keys.sort()
    except TypeError:
        keys.sort(key=repr)
    ref = np.array([reference.get(k, 0) for k in keys], dtype=np.float64)
    cur = np.array([current.get(k, 0) for k in keys], dtype=np.float64)
    return Counts(ref, cur, tuple(keys))


def quantile_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Interior edges of `bins` reference-quantile bins (duplicates collapse).

    Bins are (−∞, e₁], (e₁, e₂], …, (e_k, +∞): open at both ends so current values
    outside the reference's range land in the outermost bins instead of vanishing.
    Quantiles use numpy's default linear interpolation.
    """
    q = np.quantile(reference, np.linspace(0.0, 1.0, bins + 1))
    return np.unique(q[1:-1])


def counts_in_quantile_bins(values: np.ndarray, edges: np.ndarray, presorted: bool = False) -> np.ndarray:
    """Counts per bin for `quantile_edges` bins, via edges searched in sorted values."""
    s = values if presorted else np.sort(values)
    at_most = np.searchsorted(s, edges, side="right")  # #values ≤ each edge
    cumulative = np.concatenate(([0], at_most, [len(s)]))
    return np.diff(cumulative).astype(np.float64)


def sturges_edges(lo: float, hi: float, total: int) -> np.ndarray:
    """``np.histogram_bin_edges(data, bins="sturges")`` from min, max and size alone.

    Same arithmetic as numpy (width = range/(log₂ n + 1), bins = ⌈range/width⌉,
    ±0.5 around a constant), so the streaming path can compute it without the data.
    """
    first, last = float(lo), float(hi)
    if first == last:
        first, last = first - 0.5, last + 0.5
    width = (hi - lo) / (np.log2(total) + 1.0)
    n_bins = int(np.ceil((last - first) / width)) if width else 1
    return np.linspace(first, last, n_bins + 1, endpoint=True)


def binned_counts(
    reference: np.ndarray, current: np.ndarray, kind: Kind, binning: Binning, bins: int
) -> Counts:
    """Reference and current histograms for PSI / Jensen–Shannon.

    Categorical features, and numeric ones whose reference has ≤ 20 distinct values,
    get one bin per value (union of both sides). Other numeric features get
    `quantile_edges` bins ("quantile") or Sturges bins over ref ∪ cur ("evidently").
    """
    if kind == "categorical" or len(np.unique(reference)) <= PER_VALUE_BINS_LIMIT:
        return align_value_counts(value_counts(reference), value_counts(current))
    if binning == "quantile":
        edges = quantile_edges(reference, bins)
        return Counts(counts_in_quantile_bins(reference, edges), counts_in_quantile_bins(current, edges))
    lo = min(reference.min(), current.min())
    hi = max(reference.max(), current.max())
    edges = sturges_edges(lo, hi, len(reference) + len(current))
    return Counts(
        np.histogram(reference, edges)[0].astype(np.float64),
        np.histogram(current, edges)[0].astype(np.float64),
    )


# ---------------------------------------------------------------- statistics from counts


def fill_zero_shares(shares: np.ndarray) -> np.ndarray:
    """Replace empty bins' 0 share by ε so that ln(r/c) is finite (Evidently's rule).

    ε = (smallest non-zero share)/10⁶ if that share is ≤ 10⁻⁴, else ε = 10⁻⁴.
    Applied to the reference and the current shares separately.
    """
    out = shares.astype(np.float64, copy=True)
    nonzero = out[out != 0]
    if len(nonzero) == 0:
        raise InvalidInput("A histogram with no values cannot be compared.")
    smallest = nonzero.min()
    out[out == 0] = smallest / 1e6 if smallest <= 1e-4 else 1e-4
    return out


def psi_from_counts(counts: Counts) -> float:
    """Population Stability Index of aligned bin counts.

    PSI = Σᵢ (rᵢ − cᵢ) · ln(rᵢ / cᵢ), where rᵢ and cᵢ are the reference and current
    shares of bin i after `fill_zero_shares` (ε for empty bins). Same formula and ε as
    Evidently's ``psi`` stattest; the bins are chosen by `binned_counts`.
    """
    r = fill_zero_shares(counts.reference_shares)
    c = fill_zero_shares(counts.current_shares)
    return float(np.sum((r - c) * np.log(r / c)))


def jensenshannon(p: ArrayLike, q: ArrayLike) -> float:
    """Jensen–Shannon *distance* (natural log), as ``scipy.spatial.distance.jensenshannon``.

    p and q are normalised to sum 1; with m = (p+q)/2,
    JS = √(½ Σ p ln(p/m) + ½ Σ q ln(q/m)), terms with p=0 (or q=0) counting 0.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape or p.ndim != 1 or p.size == 0:
        raise InvalidInput("Jensen–Shannon needs two non-empty distributions of the same length.")
    if (p < 0).any() or (q < 0).any() or p.sum() <= 0 or q.sum() <= 0:
        raise InvalidInput("Jensen–Shannon needs non-negative weights with a positive sum.")
    p = p / p.sum()
    q = q / q.sum()
    m = (p + q) / 2.0

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log(a[nz] / m[nz])))

    return math.sqrt(max(0.0, (kl(p) + kl(q)) / 2.0))


def chisquare_from_counts(counts: Counts) -> tuple[float, float]:
    """χ² goodness of fit of current counts to the reference's proportions (Evidently).

    Expected count of category i = reference countᵢ · n_cur / n_ref; statistic
    Σ (obs − exp)² / exp with k − 1 degrees of freedom (``scipy.stats.chisquare``).
    A category absent from the reference but present now gives χ² = ∞, p = 0.
    A single category gives χ² = 0 and p = 1 (SciPy would return NaN: no test).
    """
    obs = counts.current
    exp = counts.reference * (obs.sum() / counts.reference.sum())
    k = len(obs)
    if k < 2:
        return 0.0, 1.0
    if ((exp == 0) & (obs > 0)).any():
        return math.inf, 0.0
    nz = exp > 0
    stat = float(np.sum((obs[nz] - exp[nz]) ** 2 / exp[nz]))
    return stat, _special.chi2_sf(stat, k - 1)


def z_from_counts(counts: Counts) -> tuple[float, float]:
    """Two-proportion z-test (Evidently's ``z`` stattest), two-sided.

    The first category (in sorted order) is "0", every other one "1"; p₁ and p₂ are the
    shares of "1" in reference and current, P the pooled share, and
    z = (p₁ − p₂) / √(P(1−P)(1/n₁ + 1/n₂)). Identical constant columns give p = 1.
    p = erfc(|z|/√2), which is Evidently's 2(1 − Φ(|z|)) without its cancellation.
    """
    ref, cur = counts.reference, counts.current
    n1, n2 = ref.sum(), cur.sum()
    if len(ref) == 1 or (
        np.count_nonzero(ref) == 1 and np.count_nonzero(cur) == 1 and ref.argmax() == cur.argmax()
    ):
        return 0.0, 1.0
    p1 = (n1 - ref[0]) / n1
    p2 = (n2 - cur[0]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    denom = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    if denom == 0:
        return 0.0, 1.0
    z = float((p1 - p2) / denom)
    return z, _special.normal_two_sided_p(z)


def ks_from_counts(
    reference_at_most: np.ndarray,
    current_below: np.ndarray,
    current_at_most: np.ndarray,
    n_ref: int,
    n_cur: int,
) -> tuple[float, float]:
    """Two-sample KS statistic and p-value from counts at the reference's distinct values.

    With u₁ < … < u_k the reference's distinct values, F_r(u_j) = (#ref ≤ u_j)/n_ref,
    and current counts #cur < u_j and #cur ≤ u_j, the supremum of |F_r − F_c| over
    the real line is max_j max(|F_r(u_j) − F_c(u_j)|, |F_r(u_{j−1}) − F_c(u_j⁻)|):
    between two reference values F_r is flat and F_c only rises, so the extremes sit
    at those points. This is exactly SciPy's statistic, but needs only counts, which
    the streaming path accumulates chunk by chunk.
    """
    f_ref = reference_at_most / n_ref
    f_ref_before = np.concatenate(([0.0], f_ref[:-1]))
    d = max(
        float(np.max(np.abs(f_ref - current_at_most / n_cur))),
        float(np.max(np.abs(f_ref_before - current_below / n_cur))),
    )
    return d, _special.ks_2samp_pvalue(d, n_ref, n_cur)


# ---------------------------------------------------------------- statistics on samples


def ks_2samp(reference: ArrayLike, current: ArrayLike) -> tuple[float, float]:
    """Two-sample KS (statistic, p-value), as ``scipy.stats.ks_2samp`` with defaults."""
    ref = np.sort(as_numeric_1d(reference, "reference"))
    cur = np.sort(as_numeric_1d(current, "current"))
    u = np.unique(ref)
    return ks_from_counts(
        np.searchsorted(ref, u, side="right"),
        np.searchsorted(cur, u, side="left"),
        np.searchsorted(cur, u, side="right"),
        len(ref),
        len(cur),
    )


def chisquare_test(reference: ArrayLike, current: ArrayLike) -> tuple[float, float]:
    """χ² (statistic, p-value) of current against reference proportions."""
    ref = as_1d(reference, "reference")
    cur = as_1d(current, "current")
    return chisquare_from_counts(align_value_counts(value_counts(ref), value_counts(cur)))


def z_test(reference: ArrayLike, current: ArrayLike) -> tuple[float, float]:
    """Two-proportion z-test (statistic, p-value) between reference and current."""
    ref = as_1d(reference, "reference")
    cur = as_1d(current, "current")
    return z_from_counts(align_value_counts(value_counts(ref), value_counts(cur)))


def wasserstein_distance(u: ArrayLike, v: ArrayLike) -> float:
    """1-D Wasserstein distance ∫|F_u − F_v| dx, as ``scipy.stats.wasserstein_distance``.

    Exact: both samples sorted, the CDF difference integrated between consecutive
    values of the merged sample.
    """
    a = np.sort(as_numeric_1d(u, "u"))
    b = np.sort(as_numeric_1d(v, "v"))
    merged = np.sort(np.concatenate([a, b]))
    deltas = np.diff(merged)
    fa = np.searchsorted(a, merged[:-1], side="right") / len(a)
    fb = np.searchsorted(b, merged[:-1], side="right") / len(b)
    return float(np.sum(np.abs(fa - fb) * deltas))


def wasserstein_norm(reference: ArrayLike, current: ArrayLike) -> float:
    """Wasserstein distance divided by the reference's standard deviation (≥ 0.001).

    The normalisation makes one threshold (0.1 σ) fit every feature's scale; the
    floor keeps a constant reference from dividing by zero (Evidently's choice).
    """
    ref = as_numeric_1d(reference, "reference")
    return wasserstein_distance(ref, current) / max(float(np.std(ref)), 0.001)


def psi(
    reference: ArrayLike,
    current: ArrayLike,
    bins: int = 10,
    kind: Kind | None = None,
    binning: Binning = "evidently",
) -> float:
    """Population Stability Index of current against reference (see `psi_from_counts`); numeric
    features are binned as Evidently 0.7 bins them unless `binning="quantile"` (`bins` bins)."""
    ref, cur, kind = _prepare_pair(reference, current, kind)
    return psi_from_counts(binned_counts(ref, cur, kind, binning, bins))


def jensenshannon_drift(
    reference: ArrayLike, current: ArrayLike, kind: Kind | None = None, binning: Binning = "evidently"
) -> float:
    """Jensen–Shannon distance between the binned reference and current (Evidently)."""
    ref, cur, kind = _prepare_pair(reference, current, kind)
    counts = binned_counts(ref, cur, kind, binning, 10)
    return jensenshannon(counts.reference, counts.current)


def _prepare_pair(
    reference: ArrayLike, current: ArrayLike, kind: Kind | None
) -> tuple[np.ndarray, np.ndarray, Kind]:
    kind = kind or infer_kind(reference)
    if kind == "numerical":
        return as_numeric_1d(reference, "reference"), as_numeric_1d(current, "current"), kind
    return as_1d(reference, "reference"), as_1d(current, "current"), kind
