"""Comparison: directions, deltas, differing params/tags, several versions."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from bot.domain.compare import compare, metric_direction
from bot.domain.entities import Version
from bot.domain.errors import InvalidInput

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def v(number: int, metrics: dict[str, float], params: dict[str, str] | None = None,
      tags: dict[str, str] | None = None) -> Version:
    return Version(model="churn", version=number, artifact_uri="s3://x", created_by="ci", created_at=NOW,
                   metrics=metrics, params=params or {}, tags=tags or {})


@pytest.mark.parametrize(
    ("name", "direction"),
    [("auc", "higher"), ("f1", "higher"), ("loss", "lower"), ("val_loss", "lower"),
     ("latency_p95_ms", "lower"), ("error_rate", "lower"), ("rmse", "lower"), ("MAE", "lower"),
     ("accuracy", "higher"), ("precision", "higher")],
)
def test_direction_by_name(name: str, direction: str) -> None:
    assert metric_direction(name) == direction


def test_direction_override() -> None:
    assert metric_direction("loss", {"loss": "higher"}) == "higher"


def test_loss_down_is_better_and_auc_down_is_worse() -> None:
    c = compare([v(1, {"auc": 0.90, "loss": 0.40}), v(2, {"auc": 0.88, "loss": 0.30})])
    assert c.metric("loss").deltas["v2"].verdict == "better"
    assert c.metric("auc").deltas["v2"].verdict == "worse"
    assert c.metric("auc").deltas["v2"].absolute == pytest.approx(-0.02)
    assert c.metric("loss").deltas["v2"].relative == pytest.approx(-0.25)


def test_three_or_more_versions_and_missing_metrics() -> None:
    c = compare([v(1, {"auc": 0.9}), v(2, {"auc": 0.91, "f1": 0.5}), v(5, {"auc": 0.9})])
    assert c.labels == ["v1", "v2", "v5"]
    assert c.metric("auc").deltas["v5"].verdict == "same"
    assert c.metric("f1").values["v1"] is None
    doc = c.to_dict()
    f1 = next(m for m in doc["metrics"] if m["metric"] == "f1")
    assert f1["values"]["v1"] is None and f1["deltas"]["v2"]["verdict"] is None


def test_params_and_tags_that_differ() -> None:
    c = compare([
        v(1, {}, params={"depth": "5", "lr": "0.1"}, tags={"team": "risk"}),
        v(2, {}, params={"depth": "7", "lr": "0.1"}, tags={"team": "risk", "gpu": "yes"}),
    ])
    doc = c.to_dict()
    assert doc["params"] == [{"key": "depth", "values": {"v1": "5", "v2": "7"}}]
    assert doc["tags"] == [{"key": "gpu", "values": {"v1": None, "v2": "yes"}}]


def test_relative_delta_with_zero_baseline_is_undefined() -> None:
    c = compare([v(1, {"errors": 0.0}), v(2, {"errors": 2.0})])
    assert c.metric("errors").deltas["v2"].relative is None
    assert c.to_dict()["metrics"][0]["deltas"]["v2"]["relative"] is None


def test_a_nan_metric_compares_as_missing() -> None:
    c = compare([v(1, {"auc": math.nan}), v(2, {"auc": 0.9})])
    assert c.metric("auc").values == {"v1": None, "v2": 0.9}
    assert c.metric("auc").deltas["v2"].verdict is None


def test_needs_two_distinct_versions() -> None:
    with pytest.raises(InvalidInput):
        compare([v(1, {})])
    with pytest.raises(InvalidInput):
        compare([v(1, {}), v(1, {})])
