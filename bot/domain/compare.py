"""Side-by-side comparison of versions: metrics with deltas and better/worse, differing params and tags.

pandas is imported on first use only, so a cold `modelbot show` does not pay for it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from bot.domain.entities import Version
from bot.domain.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

Direction = Literal["higher", "lower"]
Verdict = Literal["better", "worse", "same"]

# Tokens that mark a metric where smaller numbers are better. Users override per metric
# in the policy file (`[metrics.directions]`), because names are only a hint.
LOWER_IS_BETTER = frozenset(
    {
        "loss", "error", "errors", "err", "latency", "rmse", "mse", "mae", "mape", "smape", "logloss",
        "brier", "duration", "time", "seconds", "ms", "cost", "perplexity", "wer", "cer", "fpr", "fnr",
        "drift", "psi", "bytes", "memory",
    }
)
_TOKEN = re.compile(r"[a-z0-9]+")
MAX_VERSIONS = 10


def metric_direction(name: str, overrides: Mapping[str, Direction] | None = None) -> Direction:
    if overrides and name in overrides:
        return overrides[name]
    tokens = set(_TOKEN.findall(name.lower()))
    return "lower" if tokens & LOWER_IS_BETTER else "higher"


def verdict(delta: float, direction: Direction, tolerance: float = 1e-12) -> Verdict:
    if abs(delta) <= tolerance:
        return "same"
    improved = delta > 0 if direction == "higher" else delta < 0
    return "better" if improved else "worse"


@dataclass(frozen=True)
class Comparison:
    """`metrics` has one row per metric: a value column per version label (`v3`), and for each
    version after the baseline `delta:vN`, `rel:vN` (fraction, NaN when the baseline is 0) and
    `verdict:vN`. `params`/`tags` hold only the keys whose values differ (None = absent)."""

    model: str
    versions: tuple[Version, ...]
    metrics: pd.DataFrame
    directions: dict[str, Direction]
    params: pd.DataFrame
    tags: pd.DataFrame

    @property
    def labels(self) -> list[str]:
        return [f"v{v.version}" for v in self.versions]

    @property
    def baseline(self) -> Version:
        return self.versions[0]

    def to_dict(self) -> dict[str, Any]:
        labels = self.labels
        metrics = []
        for name, row in self.metrics.iterrows():
            entry: dict[str, Any] = {
                "metric": name,
                "direction": self.directions[str(name)],
                "values": {label: _clean(row[label]) for label in labels},
                "deltas": {},
            }
            for label in labels[1:]:
                entry["deltas"][label] = {
                    "absolute": _clean(row[f"delta:{label}"]),
                    "relative": _clean(row[f"rel:{label}"]),
                    "verdict": row[f"verdict:{label}"] or None,
                }
            metrics.append(entry)
        return {
            "model": self.model,
            "baseline": labels[0],
            "versions": labels,
            "metrics": metrics,
            "params": differences(self.params),
            "tags": differences(self.tags),
        }


def compare(
    versions: Sequence[Version], *, directions: Mapping[str, Direction] | None = None
) -> Comparison:
    import pandas as pd

    if len(versions) < 2:
        raise InvalidInput("Compare needs at least two versions: for example `compare churn 2 3`.")
    if len(versions) > MAX_VERSIONS:
        raise InvalidInput(f"Compare at most {MAX_VERSIONS} versions at once.")
    labels = [f"v{v.version}" for v in versions]
    if len(set(labels)) != len(labels):
        raise InvalidInput("Each version may appear only once in a comparison.")
    import numpy as np

    metric_names = sorted({name for v in versions for name in v.metrics})
    metric_directions = {m: metric_direction(m, directions) for m in metric_names}
    values = [np.array([v.metrics.get(m, math.nan) for m in metric_names], dtype="float64") for v in versions]
    columns: dict[str, Any] = dict(zip(labels, values, strict=True))
    index = pd.Index(metric_names, name="metric")
    base = values[0]
    base_or_nan = np.where(base != 0, base, math.nan)
    for label, value in zip(labels[1:], values[1:], strict=True):
        delta = value - base
        columns[f"delta:{label}"] = delta
        columns[f"rel:{label}"] = delta / base_or_nan
        # an explicit object Series: pandas would otherwise infer its string dtype
        columns[f"verdict:{label}"] = pd.Series(
            [None if math.isnan(d) else verdict(d, metric_directions[m])
             for m, d in zip(metric_names, delta.tolist(), strict=True)],
            index=index,
            dtype="object",
        )
    # one constructor call with every column: inserting them one by one copies the frame each time
    frame = pd.DataFrame(columns, index=index, copy=False)
    return Comparison(
        model=versions[0].model,
        versions=tuple(versions),
        metrics=frame,
        directions=metric_directions,
        params=_differing(labels, [v.params for v in versions], "param"),
        tags=_differing(labels, [v.tags for v in versions], "tag"),
    )


def _differing(labels: list[str], maps: list[Mapping[str, str]], index_name: str) -> pd.DataFrame:
    import pandas as pd

    keys = sorted({k for m in maps for k in m})
    differing = [k for k in keys if len({m.get(k) for m in maps}) > 1]
    index = pd.Index(differing, name=index_name, dtype="object")
    return pd.DataFrame(
        {label: [m.get(k) for k in differing] for label, m in zip(labels, maps, strict=True)},
        index=index,
        dtype="object",
    )


def differences(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a params/tags frame as plain dicts; avoids `iterrows`, which turns None into NaN."""
    columns = {c: frame[c].tolist() for c in frame.columns}
    return [
        {"key": key, "values": {c: values[i] for c, values in columns.items()}}
        for i, key in enumerate(frame.index.tolist())
    ]


def _clean(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number
