"""Data quality per feature against the reference sample, as Evidently 0.7 counts it.

For each feature of the current data:

- **missing**: share of rows whose value is missing (None, NaN, NaT: pandas' `isna`, which is
  what Evidently's `MissingValueCount` counts; ±inf and "" are values, not missing);
- **wrong_type**: share of the non-missing values whose type differs from the reference's:
  text that is not a number in a numeric feature, a number in a text feature, a boolean in
  either. Text that reads as a number ("3.5" in a CSV) counts as a number, because CSV and
  JSON readers cannot always tell. Evidently has no such count (its columns have one dtype);
- **out_of_range** (numeric features): share of the non-missing values of the right type
  outside the reference's [min, max], bounds included — Evidently's `OutRangeValueCount`
  with left/right set to the reference's min and max;
- **new_category** (categorical features): share of the non-missing values never seen in the
  reference — Evidently's `OutListValueCount` with the reference's values as the list.

Evidently's default test for each of these (with a reference) is "equal to the reference's
share ± 10 %": the reference has no out-of-range values and no new categories by
construction, so any such value in the current data fails it; missing values fail it
when their share exceeds the reference's by more than a tenth. `DataQuality.flagged` applies
exactly that. Everything here is counts, so chunks merge exactly.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bot.domain.errors import InvalidInput
from bot.domain.monitoring._accumulators import is_arrow, to_numpy
from bot.domain.monitoring.metric_names import quality_metric
from bot.domain.monitoring.statistics import Kind, infer_kind, plain_scalar

RELATIVE_TOLERANCE = 0.1
"""Evidently's default: a share may differ from the reference's by 10 % of it."""


@dataclass(frozen=True)
class DataQuality:
    """One feature's counts in one window; shares are None where they do not apply."""

    feature: str
    kind: Kind
    rows: int
    missing: int
    wrong_type: int
    out_of_range: int | None
    new_category: int | None
    reference_missing_share: float = 0.0

    @property
    def present(self) -> int:
        return self.rows - self.missing

    def shares(self) -> dict[str, float]:
        """{kind: share}, for the kinds that apply to this feature and have a denominator."""
        out: dict[str, float] = {}
        if self.rows:
            out["missing"] = self.missing / self.rows
        if self.present:
            out["wrong_type"] = self.wrong_type / self.present
            checked = self.present - self.wrong_type
            if checked:
                if self.out_of_range is not None:
                    out["out_of_range"] = self.out_of_range / checked
                if self.new_category is not None:
                    out["new_category"] = self.new_category / checked
        return out

    def metrics(self) -> dict[str, float]:
        """Sample values by metric name: `missing:age` …"""
        return {quality_metric(kind, self.feature): share for kind, share in self.shares().items()}

    @property
    def flagged(self) -> tuple[str, ...]:
        """The kinds that fail Evidently's default test against the reference."""
        out = []
        for kind, share in self.shares().items():
            limit = self.reference_missing_share * (1 + RELATIVE_TOLERANCE) if kind == "missing" else 0.0
            if share > limit:
                out.append(kind)
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "kind": self.kind, "rows": self.rows, "missing": self.missing,
                "wrong_type": self.wrong_type, "out_of_range": self.out_of_range,
                "new_category": self.new_category, "shares": self.shares(), "flagged": list(self.flagged)}


# ---------------------------------------------------------------- value types


def _type_classes(values: pd.Series) -> pd.Series:
    """'number', 'bool' or 'text' per value of an object column (missing values excluded)."""
    is_bool = values.map(lambda v: isinstance(v, (bool, np.bool_)))
    numeric = pd.to_numeric(values.where(~is_bool), errors="coerce").notna()
    return pd.Series(np.where(is_bool, "bool", np.where(numeric, "number", "text")), index=values.index)


def _dominant_class(reference: pd.Series) -> str:
    present = reference[reference.notna()]
    if present.empty:
        return "text"
    dtype = present.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    counts = present.astype(object).value_counts()  # classify each distinct value once
    classes = _type_classes(pd.Series(counts.index, dtype=object))
    return str(pd.Series(counts.to_numpy(), index=classes.to_numpy()).groupby(level=0).sum().idxmax())


def _category_key(value: Any) -> Any:
    """Categories compare by value across readers: 1, 1.0 and "1" are one category."""
    value = plain_scalar(value)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", float(value))
    text = str(value)
    try:
        return ("number", float(text))
    except ValueError:
        return ("text", text)


# ---------------------------------------------------------------- accumulating


class DataQualityAccumulator:
    """Counts for one feature, chunk by chunk; the reference fixes its kind, type and bounds."""

    def __init__(self, name: str, reference: Any, kind: Kind | None = None) -> None:
        ref = reference if isinstance(reference, pd.Series) else pd.Series(to_numpy(reference))
        self.name = name
        self.kind: Kind = kind or infer_kind(ref.dropna() if ref.dtype.kind == "O" else ref)
        present = ref[ref.notna()]
        self.reference_missing_share = float(1 - len(present) / len(ref)) if len(ref) else 0.0
        self.expected = _dominant_class(ref)
        self.rows = self.missing = self.wrong = self.outside = 0
        if self.kind == "numerical":
            numbers = pd.to_numeric(present, errors="coerce").dropna().to_numpy(dtype=np.float64)
            if len(numbers) == 0:
                raise InvalidInput(f"reference[{name}] holds no numbers to take a range from.")
            self.lo, self.hi = float(numbers.min()), float(numbers.max())
        else:
            self.categories = {_category_key(v) for v in present.unique()}

    def update(self, column: Any) -> None:
        series = column.to_pandas() if is_arrow(column) else (
            column if isinstance(column, pd.Series) else pd.Series(to_numpy(column)))
        n = len(series)
        if n == 0:
            return
        self.rows += n
        missing = series.isna().to_numpy()
        self.missing += int(missing.sum())
        present = series[~missing]
        if present.empty:
            return
        if self.kind == "numerical":
            self._numeric(present)
        else:
            self._categorical(present)

    def fresh(self) -> DataQualityAccumulator:
        """Empty counts for another window; the reference's profile is shared."""
        new = copy.copy(self)
        new.rows = new.missing = new.wrong = new.outside = 0
        return new

    def add_counts(self, rows: int, *, missing: int, outside: int | None = None,
                   values: Mapping[Any, int] | None = None) -> None:
        """Counts computed elsewhere (a database): a numeric column's rows, missing values and values
        outside the reference's range, or a categorical column's value counts."""
        self.rows += rows
        self.missing += missing
        if outside is not None:
            self.outside += outside
        self._count_values((values or {}).items())

    def _numeric(self, present: pd.Series) -> None:
        if pd.api.types.is_bool_dtype(present.dtype):
            self.wrong += len(present)
            return
        if pd.api.types.is_numeric_dtype(present.dtype):
            x = present.to_numpy(dtype=np.float64)
        else:
            classes = _type_classes(present.astype(object))
            right = (classes == "number").to_numpy()
            self.wrong += int((~right).sum())
            x = pd.to_numeric(present[right]).to_numpy(dtype=np.float64)
        self.outside += int(np.count_nonzero((x < self.lo) | (x > self.hi)))

    def _categorical(self, present: pd.Series) -> None:
        self._count_values(present.value_counts(dropna=True).items())

    def _count_values(self, counts: Iterable[tuple[Any, int]]) -> None:
        for value, count in counts:
            key = _category_key(value)
            if key[0] != self.expected:
                self.wrong += int(count)
            elif key not in self.categories:
                self.outside += int(count)

    def result(self) -> DataQuality:
        numeric = self.kind == "numerical"
        return DataQuality(
            feature=self.name, kind=self.kind, rows=self.rows, missing=self.missing, wrong_type=self.wrong,
            out_of_range=self.outside if numeric else None, new_category=None if numeric else self.outside,
            reference_missing_share=self.reference_missing_share,
        )


def data_quality_report(
    reference: pd.DataFrame, current: pd.DataFrame, features: Iterable[str] | None = None,
    kinds: Mapping[str, Kind] | None = None,
) -> list[DataQuality]:
    """Every feature's data quality (default: the reference's columns) in one window."""
    names = list(features) if features is not None else list(reference.columns)
    absent = [f for f in names if f not in reference.columns or f not in current.columns]
    if absent:
        raise InvalidInput(f"Features missing from the reference or the current data: {absent}.")
    out = []
    for name in names:
        acc = DataQualityAccumulator(name, reference[name], (kinds or {}).get(name))
        acc.update(current[name])
        out.append(acc.result())
    return out
