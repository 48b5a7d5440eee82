"""Per-feature accumulators of the streaming digest, and column helpers.

Each feature keeps only what its drift statistic needs from the current data (see
`streaming.py` for the list, and for the one approximation: `WassersteinGrid`).
Chunks may be numpy arrays, pandas Series or Arrow arrays.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from bot.domain.errors import InvalidInput
from bot.domain.monitoring import drift as d
from bot.domain.monitoring import statistics as stats
from bot.domain.monitoring._inputs import as_1d, as_numeric_1d

MAX_GRID_CELLS = 1 << 18
MIN_GRID_CELLS = 256
VALUE_COUNT_CAP = 10_000
"""Stop counting a numeric feature's values past this many distinct ones: by then it
is certainly not low-cardinality, and a dict of millions of floats would be slow."""
_SUBCHUNK = 1 << 18
"""Numeric work runs on slices of this many rows so temporaries stay in cache."""


# ---------------------------------------------------------------- column helpers


def is_arrow(col: Any) -> bool:
    return type(col).__module__.startswith("pyarrow")


def to_numpy(col: Any) -> np.ndarray:
    if is_arrow(col):
        return col.to_numpy(zero_copy_only=False)
    if isinstance(col, pd.Series):
        return col.to_numpy()
    return np.asarray(col)


def null_count(col: Any) -> int:
    if is_arrow(col):
        return int(col.null_count)
    if isinstance(col, pd.Series):
        return int(col.isna().sum())
    arr = np.asarray(col)
    if arr.dtype.kind == "O":
        return int(pd.isna(arr).sum())
    return 0


def category_counts(col: Any, name: str, drop_missing: bool) -> dict[Any, int]:
    """Value counts of one chunk of a categorical column, as {python value: count}."""
    if null_count(col) and not drop_missing:
        raise InvalidInput(f"current[{name}] has missing values; drop or fill them first.")
    if is_arrow(col):
        import pyarrow as pa
        import pyarrow.compute as pc

        if pa.types.is_dictionary(col.type):
            col = col.dictionary_decode()
        vc = pc.value_counts(col)
        values = vc.field("values").to_pylist()
        counts = vc.field("counts").to_numpy()
        return {v: int(c) for v, c in zip(values, counts, strict=True) if v is not None}
    series = col if isinstance(col, pd.Series) else pd.Series(np.asarray(col))
    vc = series.value_counts(dropna=True)
    return {stats.plain_scalar(k): int(c) for k, c in vc.items() if c > 0}


def merge_counts(into: dict[Any, int], more: Mapping[Any, int]) -> None:
    for key, count in more.items():
        into[key] = into.get(key, 0) + count


# ---------------------------------------------------------------- per-feature accumulators


class FeatureAccumulator:
    """What one feature's drift test needs from the current data, accumulated."""

    def __init__(self, name: str, reference: pd.Series, config: d.DriftConfig, current_range: tuple | None):
        self.name = name
        self.config = config
        ref_values = reference
        if config.drop_missing:
            ref_values = pd.Series(d.without_missing(reference))
        self.kind: stats.Kind = d.feature_kind(ref_values, name, config)
        self.n = 0
        self.values: dict[Any, int] | None = None
        self.values_overflow = False
        self.grid: WassersteinGrid | None = None
        self.ks: KsCounts | None = None
        self.edges: np.ndarray | None = None
        self.edge_counts: np.ndarray | None = None
        self.sturges = False
        self.kept: list[np.ndarray] | None = None

        requested = config.requested_method(name)
        if self.kind == "categorical":
            ref = as_1d(ref_values, f"reference[{name}]")
            self.ref_counts = stats.value_counts(ref)
            self.n_ref = len(ref)
            if requested in ("ks", "wasserstein"):
                raise InvalidInput(f"{requested} needs a numeric feature; {name} is categorical.")
            self.values = {}
            self.method = requested
            return

        ref = np.sort(as_numeric_1d(ref_values, f"reference[{name}]"))
        self.ref = ref
        self.n_ref = len(ref)
        self.ref_unique = np.unique(ref)
        self.method = requested
        numeric_method = "ks" if self.n_ref <= config.small_reference_rows else "wasserstein"
        if requested == "auto":
            if len(self.ref_unique) <= config.low_cardinality:
                self.values = {}  # decided at the end from ref ∪ cur distinct values
            else:
                self.method = numeric_method
            self._plan_numeric(numeric_method)
        elif requested in ("ks", "wasserstein"):
            self._plan_numeric(requested)
        elif requested in ("chisquare", "z"):
            self.values = {}
        else:  # psi / jensenshannon
            binning = config.psi_binning if requested == "psi" else config.js_binning
            if len(self.ref_unique) <= stats.PER_VALUE_BINS_LIMIT:
                self.values = {}
            elif binning == "quantile":
                self.edges = stats.quantile_edges(ref, config.psi_bins)
                self.edge_counts = np.zeros(len(self.edges), dtype=np.int64)
            else:
                self._plan_sturges(current_range)

    def _plan_sturges(self, current_range: tuple | None) -> None:
        """Sturges bins span reference ∪ current: with the current range known up front, count per
        bin on the fly; else keep the values (8 bytes a row, like the latency column) until the end."""
        if current_range is None:
            self.kept, self.edges, self.edge_counts, self.sturges = [], None, None, False
            return
        lo, hi, total = current_range
        self.kept = None
        self.edges = stats.sturges_edges(min(lo, self.ref[0]), max(hi, self.ref[-1]), total + self.n_ref)
        self.edge_counts = np.zeros(len(self.edges) - 1, dtype=np.int64)
        self.sturges = True

    def fresh(self, current_range: tuple | None = None) -> FeatureAccumulator:
        """An empty accumulator for another window, sharing what was derived from the reference
        (sorting it, its distinct values, the grid): built once per pull, not once per window."""
        new = copy.copy(self)
        new.n = 0
        new.values = None if self.values is None else {}
        new.values_overflow = False
        new.grid = None if self.grid is None else self.grid.fresh()
        new.ks = None if self.ks is None else self.ks.fresh()
        if self.kept is not None or self.sturges:
            new._plan_sturges(current_range)
        elif self.edge_counts is not None:
            new.edge_counts = np.zeros_like(self.edge_counts)
        return new

    def _plan_numeric(self, method: str) -> None:
        if method == "ks":
            self.ks = KsCounts(self.ref, self.ref_unique)
        else:
            self.grid = WassersteinGrid(self.ref, self.config.wasserstein_resolution)

    # -- update

    def update(self, col: Any) -> None:
        if self.kind == "categorical":
            counts = category_counts(col, self.name, self.config.drop_missing)
            self.n += sum(counts.values())
            assert self.values is not None
            merge_counts(self.values, counts)
            return
        x = to_numpy(col)
        if x.dtype.kind not in "biuf":
            try:
                x = x.astype(np.float64)
            except (TypeError, ValueError) as exc:
                if not self.config.drop_missing:
                    raise InvalidInput(f"current[{self.name}] must be numeric.") from exc
                # values of the wrong type are counted by data quality and left out of drift,
                # as missing values are
                x = pd.to_numeric(pd.Series(x), errors="coerce").to_numpy(dtype=np.float64)
        x = x.astype(np.float64, copy=False)
        finite = np.isfinite(x)
        if not finite.all():
            if not self.config.drop_missing:
                raise InvalidInput(
                    f"current[{self.name}] has missing or infinite values; drop or fill them first."
                )
            x = x[finite]
        if len(x) == 0:
            return
        self.n += len(x)
        for start in range(0, len(x), _SUBCHUNK):
            self._update_numeric(x[start : start + _SUBCHUNK])

    def _update_numeric(self, x: np.ndarray) -> None:
        needs_sorted = self.ks is not None or (self.edges is not None and not self.sturges)
        s = np.sort(x) if needs_sorted else None
        if self.ks is not None:
            self.ks.update(s)
        if self.grid is not None:
            self.grid.update(x)
        if self.edges is not None:
            if self.sturges:
                self.edge_counts += np.histogram(x, self.edges)[0]
            else:
                self.edge_counts += np.searchsorted(s, self.edges, side="right")
        if self.kept is not None:
            self.kept.append(x.copy())
        if self.values is not None and not self.values_overflow:
            uniques, counts = np.unique(x if s is None else s, return_counts=True)
            if len(uniques) + len(self.values) > VALUE_COUNT_CAP:
                self.values_overflow = True
            else:
                merge_counts(self.values, {float(u): int(c) for u, c in zip(uniques, counts, strict=True)})

    # -- counts computed elsewhere (a database, `log_pushdown.py`)

    def needs(self) -> frozenset[str]:
        """What this feature's statistic needs from the current data: value counts, grid counts,
        Sturges or quantile bin counts — or the values themselves (KS; Sturges bins without a range)."""
        out = set()
        if self.values is not None:
            out.add("values")
        if self.grid is not None:
            out.add("grid")
        if self.edges is not None:
            out.add("sturges" if self.sturges else "quantile")
        if self.ks is not None or self.kept is not None:
            out.add("rows")
        return frozenset(out)

    def add_counts(self, n: int, *, values: Mapping[Any, int] | None = None,
                   grid: tuple[np.ndarray, float, float] | None = None, bins: np.ndarray | None = None) -> None:
        """Counts of the current data that were computed elsewhere, in this accumulator's own terms:
        value counts, (grid cell counts, Σ below the range, Σ above it), and Sturges bin counts or,
        for quantile edges, the number of values ≤ each edge. The result is then computed exactly as
        from rows."""
        self.n += n
        if values is not None and self.values is not None and not self.values_overflow:
            if len(values) + len(self.values) > VALUE_COUNT_CAP and self.kind == "numerical":
                self.values_overflow = True
            else:
                merge_counts(self.values, {float(k) if self.kind == "numerical" else k: int(c)
                                           for k, c in values.items()})
        if grid is not None and self.grid is not None:
            counts, below, above = grid
            self.grid.counts += counts
            self.grid.below_excess += below
            self.grid.above_excess += above
        if bins is not None and self.edge_counts is not None:
            self.edge_counts += bins

    # -- result

    def result(self) -> d.FeatureDrift:
        if self.n == 0:
            raise InvalidInput(f"current[{self.name}] has no values in this window.")
        config = self.config
        if self.kind == "categorical":
            assert self.values is not None
            counts = stats.align_value_counts(self.ref_counts, self.values)
            method = self.method
            if method == "auto":
                method = d.choose_method("categorical", self.n_ref, len(counts.reference), config)
            return self._from_counts(method, counts)

        method = self.method
        if method == "auto":
            if self.values_overflow:
                n_values = VALUE_COUNT_CAP + 1
            else:
                assert self.values is not None
                n_values = len(set(self.values) | {float(v) for v in self.ref_unique})
            method = d.choose_method("numerical", self.n_ref, n_values, config)
        if method == "ks":
            assert self.ks is not None
            stat, p = self.ks.result(self.n)
            return d.judge(self.name, "ks", config, stat, p)
        if method == "wasserstein":
            assert self.grid is not None
            value, bound = self.grid.result(self.n)
            return d.judge(self.name, "wasserstein", config, value, None, bound)
        if self.kept is not None:
            current = np.concatenate(self.kept)
            self.kept = []
            counts = stats.binned_counts(self.ref, current, "numerical", "evidently", config.psi_bins)
            return self._from_counts(method, counts)
        if self.edges is not None:
            ref_counts = (
                np.histogram(self.ref, self.edges)[0]
                if self.sturges
                else stats.counts_in_quantile_bins(self.ref, self.edges, presorted=True)
            )
            cur_counts = (
                self.edge_counts
                if self.sturges
                else np.diff(np.concatenate(([0], self.edge_counts, [self.n])))
            )
            counts = stats.Counts(ref_counts.astype(np.float64), cur_counts.astype(np.float64))
            return self._from_counts(method, counts)
        if self.values_overflow:
            raise InvalidInput(
                f"{method} on {self.name} needs per-value counts, but the current data has more than "
                f"{VALUE_COUNT_CAP} distinct values; choose ks, wasserstein or binned psi."
            )
        assert self.values is not None
        ref_counts = {float(u): int(c) for u, c in zip(*np.unique(self.ref, return_counts=True), strict=True)}
        return self._from_counts(method, stats.align_value_counts(ref_counts, self.values))

    def _from_counts(self, method: str, counts: stats.Counts) -> d.FeatureDrift:
        config = self.config
        if method == "chisquare":
            stat, p = stats.chisquare_from_counts(counts)
            return d.judge(self.name, method, config, stat, p)
        if method == "z":
            stat, p = stats.z_from_counts(counts)
            return d.judge(self.name, method, config, stat, p)
        if method == "psi":
            return d.judge(self.name, method, config, stats.psi_from_counts(counts), None)
        if method == "jensenshannon":
            return d.judge(
                self.name, method, config, stats.jensenshannon(counts.reference, counts.current), None
            )
        raise InvalidInput(f"{method} cannot be computed from counts for {self.name}.")


class KsCounts:
    """Current counts below / at-or-below each distinct reference value (exact KS)."""

    def __init__(self, ref_sorted: np.ndarray, ref_unique: np.ndarray):
        self.u = ref_unique
        self.ref_at_most = np.searchsorted(ref_sorted, ref_unique, side="right")
        self.n_ref = len(ref_sorted)
        self.below = np.zeros(len(ref_unique), dtype=np.int64)
        self.at_most = np.zeros(len(ref_unique), dtype=np.int64)

    def fresh(self) -> KsCounts:
        new = copy.copy(self)
        new.below, new.at_most = np.zeros_like(self.below), np.zeros_like(self.at_most)
        return new

    def update(self, sorted_chunk: np.ndarray) -> None:
        self.below += np.searchsorted(sorted_chunk, self.u, side="left")
        self.at_most += np.searchsorted(sorted_chunk, self.u, side="right")

    def result(self, n_cur: int) -> tuple[float, float]:
        return stats.ks_from_counts(self.ref_at_most, self.below, self.at_most, self.n_ref, n_cur)


class WassersteinGrid:
    """Uniform-grid histogram of the current data over the reference's range."""

    def __init__(self, ref_sorted: np.ndarray, resolution: float):
        self.ref = ref_sorted
        self.lo = float(ref_sorted[0])
        self.hi = float(ref_sorted[-1])
        self.norm = max(float(np.std(ref_sorted)), 0.001)
        span = self.hi - self.lo
        if span > 0:
            wanted = math.ceil(span / (resolution * self.norm))
            self.cells = int(min(MAX_GRID_CELLS, max(MIN_GRID_CELLS, wanted)))
            self.scale = self.cells / span
        else:
            self.cells = 0
            self.scale = 0.0
        self.counts = np.zeros(self.cells + 2, dtype=np.int64)  # [below, cell 0 … cell G−1, at/above max]
        self.below_excess = 0.0  # Σ (lo − v) over v < lo
        self.above_excess = 0.0  # Σ (v − hi) over v > hi
        self._scratch: np.ndarray | None = None
        self._index: np.ndarray | None = None

    def fresh(self) -> WassersteinGrid:
        new = copy.copy(self)
        new.counts = np.zeros_like(self.counts)
        new.below_excess = new.above_excess = 0.0
        new._scratch = new._index = None
        return new

    def update(self, x: np.ndarray) -> None:
        below = x < self.lo
        if below.any():
            self.below_excess += float((self.lo - x[below]).sum())
        above = x > self.hi
        if above.any():
            self.above_excess += float((x[above] - self.hi).sum())
        if self.cells == 0:
            return
        m = len(x)
        if self._scratch is None or len(self._scratch) < m:
            self._scratch = np.empty(m, dtype=np.float64)
            self._index = np.empty(m, dtype=np.intp)
        assert self._index is not None
        b, idx = self._scratch[:m], self._index[:m]
        # Cell g (0-based) holds [lo + g·w, lo + (g+1)·w) at index g+1; index 0 is
        # below the range and index G+1 at or above its max. Preallocated buffers:
        # fresh multi-megabyte temporaries per slice would cost page faults.
        np.subtract(x, self.lo, out=b)
        b *= self.scale
        b += 1.0
        np.clip(b, 0.0, self.cells + 1, out=b)
        np.copyto(idx, b, casting="unsafe")
        self.counts += np.bincount(idx, minlength=self.cells + 2)

    def result(self, n_cur: int) -> tuple[float, float]:
        """(normed Wasserstein distance, bound on its error)."""
        tails = (self.below_excess + self.above_excess) / n_cur
        if self.cells == 0:
            return tails / self.norm, 0.0
        g = self.cells
        width = (self.hi - self.lo) / g
        edges = self.lo + width * np.arange(g + 1)
        edges[-1] = self.hi
        inside = self.counts[1 : g + 1].astype(np.float64)
        f_edges = (self.counts[0] + np.concatenate(([0.0], np.cumsum(inside)))) / n_cur
        points = np.union1d(edges, self.ref)
        left, right = points[:-1], points[1:]
        length = right - left
        f_ref = np.searchsorted(self.ref, left, side="right") / len(self.ref)
        cell = np.clip(np.searchsorted(edges, left, side="right") - 1, 0, g - 1)
        slope = inside[cell] / (n_cur * (edges[cell + 1] - edges[cell]))
        f0 = f_ref - (f_edges[cell] + slope * (left - edges[cell]))
        f1 = f_ref - (f_edges[cell] + slope * (right - edges[cell]))
        a0, a1 = np.abs(f0), np.abs(f1)
        same_sign = f0 * f1 >= 0
        denom = np.where(a0 + a1 > 0, a0 + a1, 1.0)
        area = np.where(same_sign, length * (a0 + a1) / 2.0, length * (f0 * f0 + f1 * f1) / (2.0 * denom))
        total = float(area.sum()) + tails
        bound = width * inside.sum() / n_cur
        return total / self.norm, bound / self.norm
