"""Metric samples: validation, latest, windows, stats and hourly compaction (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.errors import InvalidInput, NotFound
from bot.domain.monitoring.samples import SampleIn, Samples
from bot.domain.registry import NewVersion, Registry

T0 = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)


@pytest.fixture
def samples(registry: Registry) -> Samples:
    registry.register(NewVersion(model="churn", artifact_uri="s3://x", actor="ci"))
    return Samples(registry)


def test_latest_window_and_aggregates(samples: Samples) -> None:
    values = [0.90, 0.91, 0.89, 0.92]
    samples.record([SampleIn("churn", "production", "auc", v, T0 + timedelta(minutes=10 * i), version=1)
                    for i, v in enumerate(values)], source="test")
    samples.record([SampleIn("churn", "production", "latency_p95_ms", 120.0, T0)], source="test")
    latest = samples.latest("churn", "production")
    assert latest["auc"].value == 0.92 and latest["latency_p95_ms"].value == 120.0
    window = samples.window("churn", "production", "auc", T0, T0 + timedelta(minutes=25))
    assert [p.value for p in window] == [0.90, 0.91, 0.89]
    agg = samples.aggregates("churn", "production", T0, T0 + timedelta(hours=1))[("auc", 1)]
    assert agg.count == 4 and agg.last_at == T0 + timedelta(minutes=30) and agg.mean == pytest.approx(sum(values) / 4)


@pytest.mark.parametrize(
    ("sample", "error"),
    [
        (SampleIn("nope", "production", "auc", 1.0, T0), NotFound),
        (SampleIn("churn", "moon", "auc", 1.0, T0), InvalidInput),
        (SampleIn("churn", "production", "", 1.0, T0), InvalidInput),
        (SampleIn("churn", "production", "auc", float("nan"), T0), InvalidInput),
        (SampleIn("churn", "production", "auc", float("inf"), T0), InvalidInput),
    ],
)
def test_a_bad_sample_rejects_the_whole_batch(samples: Samples, sample: SampleIn, error: type[Exception]) -> None:
    good = SampleIn("churn", "production", "auc", 0.9, T0)
    with pytest.raises(error):
        samples.record([good, sample], source="test")
    assert samples.latest("churn", "production") == {}


def test_compaction_keeps_hourly_means(samples: Samples) -> None:
    points = [SampleIn("churn", "production", "auc", 0.8 + i * 0.01, T0 + timedelta(minutes=15 * i)) for i in range(8)]
    samples.record(points, source="test")
    moved = samples.compact(keep_raw=timedelta(days=1), now=T0 + timedelta(days=3))
    assert moved == 8
    window = samples.window("churn", "production", "auc", T0, T0 + timedelta(hours=2))
    assert [round(p.value, 6) for p in window] == [round(0.815, 6), round(0.855, 6)]
