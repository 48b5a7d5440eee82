"""Side-by-side comparison of versions: metrics with deltas and better/worse, differing params and tags.

Plain Python on purpose: a comparison holds at most ten versions of a few dozen metrics, and
`modelbot compare` must start fast (importing pandas alone costs more than the whole command).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bot.domain.entities import Version
from bot.domain.errors import InvalidInput

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
class Delta:
    """One version's metric against the baseline's: `relative` is a fraction (None when the
    baseline is 0), `verdict` None when either value is missing."""

    absolute: float | None
    relative: float | None
    verdict: Verdict | None


@dataclass(frozen=True)
class MetricRow:
    """A metric across the versions: `values` by label (`v3`, None = not recorded), `deltas` by
    the label of each version after the baseline."""

    metric: str
    direction: Direction
    values: dict[str, float | None]
    deltas: dict[str, Delta]


@dataclass(frozen=True)
class Difference:
    """A param or tag whose value differs between the versions (None = absent)."""

    key: str
    values: dict[str, str | None]

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "values": dict(self.values)}


@dataclass(frozen=True)
class Comparison:
    """Metrics sorted by name; `params`/`tags` hold only the keys whose values differ."""

    model: str
    versions: tuple[Version, ...]
    metrics: tuple[MetricRow, ...]
    params: tuple[Difference, ...]
    tags: tuple[Difference, ...]

    @property
    def labels(self) -> list[str]:
        return [f"v{v.version}" for v in self.versions]

    @property
    def baseline(self) -> Version:
        return self.versions[0]

    def metric(self, name: str) -> MetricRow:
        return next(m for m in self.metrics if m.metric == name)

    def to_dict(self) -> dict[str, Any]:
        labels = self.labels
        return {
            "model": self.model,
            "baseline": labels[0],
            "versions": labels,
            "metrics": [
                {"metric": m.metric, "direction": m.direction, "values": dict(m.values),
                 "deltas": {label: {"absolute": d.absolute, "relative": d.relative, "verdict": d.verdict}
                            for label, d in m.deltas.items()}}
                for m in self.metrics
            ],
            "params": [d.to_dict() for d in self.params],
            "tags": [d.to_dict() for d in self.tags],
        }


def compare(
    versions: Sequence[Version], *, directions: Mapping[str, Direction] | None = None
) -> Comparison:
    if len(versions) < 2:
        raise InvalidInput("Compare needs at least two versions: for example `compare churn 2 3`.")
    if len(versions) > MAX_VERSIONS:
        raise InvalidInput(f"Compare at most {MAX_VERSIONS} versions at once.")
    labels = [f"v{v.version}" for v in versions]
    if len(set(labels)) != len(labels):
        raise InvalidInput("Each version may appear only once in a comparison.")
    rows = []
    for name in sorted({name for v in versions for name in v.metrics}):
        direction = metric_direction(name, directions)
        values = {label: _number(v.metrics.get(name)) for label, v in zip(labels, versions, strict=True)}
        base = values[labels[0]]
        rows.append(MetricRow(name, direction, values,
                              {label: _delta(base, values[label], direction) for label in labels[1:]}))
    return Comparison(
        model=versions[0].model,
        versions=tuple(versions),
        metrics=tuple(rows),
        params=_differing(labels, [v.params for v in versions]),
        tags=_differing(labels, [v.tags for v in versions]),
    )


def _delta(base: float | None, value: float | None, direction: Direction) -> Delta:
    if base is None or value is None:
        return Delta(None, None, None)
    absolute = value - base
    return Delta(absolute, absolute / base if base != 0 else None, verdict(absolute, direction))


def _differing(labels: list[str], maps: list[Mapping[str, str]]) -> tuple[Difference, ...]:
    keys = sorted({k for m in maps for k in m})
    return tuple(
        Difference(k, {label: m.get(k) for label, m in zip(labels, maps, strict=True)})
        for k in keys if len({m.get(k) for m in maps}) > 1
    )


def _number(value: Any) -> float | None:
    """A metric value as a float; None for a missing or NaN one (NaN compares as nothing)."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number
