"""Input checks shared by the monitoring computations.

Every public function funnels its arguments through here so that bad data (nothing
to compute on, missing values, columns of different lengths) fails in one typed way,
`InvalidInput`, with a sentence a user can act on, instead of a numpy warning and a
NaN that would travel silently into a digest.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bot.domain.errors import InvalidInput

ArrayLike = Any
"""numpy arrays, pandas Series, lists: anything `np.asarray` understands as 1-D."""


def as_1d(values: ArrayLike, name: str, *, allow_empty: bool = False) -> np.ndarray:
    """Return `values` as a 1-D numpy array, rejecting empties and missing values.

    Nullable pandas dtypes (Int64, string, category with NaN) are checked with
    `isna` before conversion, because after conversion their missing marker is an
    object that numpy's own NaN checks do not see.
    """
    if isinstance(values, pd.Series):
        if values.hasnans if values.dtype.kind in "fc" else values.isna().any():
            raise InvalidInput(f"{name} has missing values (NaN/None); drop or fill them first.")
        arr = values.to_numpy()
    elif isinstance(values, pd.Index):
        arr = values.to_numpy()
    else:
        arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidInput(f"{name} must be one-dimensional, got shape {arr.shape}.")
    if arr.size == 0 and not allow_empty:
        raise InvalidInput(f"{name} is empty: there is nothing to compute on.")
    check_no_missing(arr, name)
    return arr


def check_no_missing(arr: np.ndarray, name: str) -> None:
    """Raise when `arr` holds NaN (floats) or None/NaN/NA (object arrays)."""
    if arr.dtype.kind in "fc":
        if np.isnan(arr).any():
            raise InvalidInput(f"{name} has missing values (NaN); drop or fill them first.")
    elif arr.dtype.kind == "O" and pd.isna(arr).any():
        raise InvalidInput(f"{name} has missing values (None/NaN); drop or fill them first.")


def as_numeric_1d(values: ArrayLike, name: str) -> np.ndarray:
    """Like `as_1d`, but float64 and finite: distances and quantiles need real numbers."""
    arr = as_1d(values, name)
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{name} must be numeric, got values of type {arr.dtype}.") from exc
    arr = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise InvalidInput(f"{name} has infinite values; drop them first.")
    return arr


def same_length(*named: tuple[str, np.ndarray]) -> None:
    """Raise when paired columns (labels and predictions, say) differ in length."""
    lengths = {name: len(arr) for name, arr in named}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise InvalidInput(f"Columns must have the same number of rows: {described}.")
