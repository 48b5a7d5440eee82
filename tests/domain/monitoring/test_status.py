"""Model status: per-version truth (each number under the version that produced it), changes
against the previous window and the previous version, canary beside stable, drift, data
quality, label coverage, availability, source health and firing alerts — and the documented
JSON keys."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.deployments import Deployments
from bot.domain.monitoring import status
from bot.domain.monitoring.recording import record_failure, record_pull
from bot.domain.monitoring.samples import SampleIn, Samples
from bot.domain.policy import default_policy
from bot.domain.registry import NewVersion, Registry
from storage.db import Database

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW - 10 * 24 * H)


@pytest.fixture
def seeded(db: Database, clock: Clock) -> Registry:
    """churn: v1 serves production from NOW−10d, v2 from NOW−3d (v1 then previous); samples of both."""
    registry = Registry(db, clock=clock)
    for _ in range(2):
        registry.register(NewVersion(model="churn", artifact_uri="s3://m/churn", actor="ci"))
    registry.register(NewVersion(model="fraud", artifact_uri="s3://m/fraud", actor="ci"))
    registry.promote("churn", "1", "production", actor="alice")
    clock.now = NOW - 3 * 24 * H
    registry.promote("churn", "2", "production", actor="alice")
    clock.now = NOW

    def s(metric: str, value: float, at: datetime, version: int | None = 2) -> SampleIn:
        return SampleIn("churn", "production", metric, value, at, version=version)

    Samples(registry).record([
        s("accuracy", 0.80, NOW - 5 * 24 * H, version=1),   # the previous version, days ago
        s("accuracy", 0.82, NOW - 4 * 24 * H, version=1),
        s("accuracy", 0.85, NOW - 30 * H),                   # the previous window
        s("accuracy", 0.90, NOW - 10 * H),                   # this window
        s("accuracy", 0.92, NOW - 2 * H),
        s("latency_p95_ms", 100.0, NOW - 30 * H),
        s("latency_p95_ms", 120.0, NOW - 2 * H),
        s("psi:age", 0.31, NOW - H), s("psi:country", 0.04, NOW - H), s("ks_p:income", 0.01, NOW - H),
        s("drift_share", 2 / 3, NOW - H), s("dataset_drift", 1.0, NOW - H),
        # probes: up from -24h, down at -6h, back at -5h → 1 incident of 1 h
        s("up", 1.0, NOW - 24 * H), s("up", 0.0, NOW - 6 * H), s("up", 1.0, NOW - 5 * H),
    ], source="test")
    return registry


@pytest.fixture
def no_provider() -> Iterator[None]:
    yield
    status.set_firing_provider(None)


def query(**kw: object) -> status.StatusQuery:
    return status.StatusQuery(now=NOW, **kw)  # type: ignore[arg-type]


def test_changes_against_the_previous_window_and_version(seeded: Registry) -> None:
    result = status.model_status(seeded, "CHURN", "production", query())
    assert result.model == "churn"
    (env,) = result.environments
    accuracy = env.metrics["accuracy"]
    assert (accuracy.value, accuracy.at, accuracy.version) == (0.92, NOW - 2 * H, 2)
    assert accuracy.window == status.Stats(pytest.approx(0.91), 2, 2)  # type: ignore[arg-type]
    assert accuracy.change_vs_previous_window == pytest.approx(0.91 - 0.85)
    assert accuracy.previous is not None and accuracy.previous.version == 1
    assert accuracy.previous.stats == status.Stats(pytest.approx(0.81), 2, 1)  # type: ignore[arg-type]
    assert accuracy.change_vs_previous_version == pytest.approx(0.91 - 0.81)
    latency = env.metrics["latency_p95_ms"]
    assert latency.direction == "lower" and latency.change_vs_previous_window == pytest.approx(20.0)
    assert latency.change_vs_previous_version is None  # no v1 latency samples


def test_drift_and_availability(seeded: Registry) -> None:
    env = status.model_status(seeded, "churn", "production", query()).environments[0]
    assert env.drift is not None
    assert env.drift.drift_share == pytest.approx(2 / 3) and env.drift.dataset_drift is True
    assert [(f.feature, f.method, f.drifting) for f in env.drift.features] == [
        ("income", "ks", True), ("age", "psi", True), ("country", "psi", False)]  # 0.05/0.01 = 5 > 0.31/0.1
    a = env.availability
    assert a is not None and a.uptime == pytest.approx(23 / 24, abs=1e-9)  # 1 h down of 24 observed
    assert len(a.incidents) == 1 and a.mttr == H and a.mtbf == 23 * H


def test_json_keys_are_the_documented_ones(seeded: Registry) -> None:
    doc = status.model_status(seeded, "churn", None, query()).to_dict()
    assert set(doc) == {"model", "generated_at", "window", "environments"}
    assert doc["generated_at"] == "2026-11-10T12:00:00Z"
    assert doc["window"] == {"seconds": 86400.0, "start": "2026-11-09T12:00:00Z", "end": "2026-11-10T12:00:00Z"}
    staging, production = doc["environments"]
    assert staging["environment"] == "staging" and staging["metrics"] == {} and staging["notes"] == [
        "no samples yet for this environment."]
    assert set(production) == {"environment", "serving", "metrics", "drift", "data_quality", "label_coverage",
                               "availability", "firing", "sources", "notes"}
    assert production["serving"] == {"stable": 2, "previous": 1, "canary": None, "canary_weight": 0,
                                      "stable_since": "2026-11-07T12:00:00Z", "canary_since": None}
    assert set(production["metrics"]["accuracy"]) == {
        "value", "at", "version", "direction", "window", "previous_window", "change_vs_previous_window",
        "previous_version", "change_vs_previous_version", "canary", "unattributed"}
    accuracy = production["metrics"]["accuracy"]
    assert (accuracy["version"], accuracy["window"]["version"], accuracy["previous_window"]["version"]) == (2, 2, 2)
    assert accuracy["previous_version"] == {
        "version": 1, "mean": pytest.approx(0.81), "count": 2, "last": 0.82, "last_at": "2026-11-06T12:00:00Z",
        "start": "2026-10-08T12:00:00Z", "end": "2026-11-07T12:00:00Z"}
    assert set(production["drift"]) == {"version", "drift_share", "dataset_drift", "at", "features_checked",
                                        "drifting_features", "drifting_count"}
    assert set(production["drift"]["drifting_features"][0]) == {"feature", "method", "metric", "value",
                                                                "threshold", "drifting", "at"}
    assert set(production["availability"]) == {"uptime", "probes", "down_probes", "observed_seconds",
                                                "down_seconds", "incidents", "ongoing", "up_now", "mttr_seconds",
                                                "mtbf_seconds", "incident_list"}
    assert production["availability"]["mttr_seconds"] == 3600.0


def test_sources_and_firing(seeded: Registry, no_provider: None) -> None:
    record_pull(seeded, "churn-health", [SampleIn("churn", "production", "up", 1.0, NOW - 3 * H)],
                now=NOW - 3 * H, error=None)
    record_failure(seeded, "churn-health", now=NOW - H, error="health endpoint at http://x/healthz answered 500.")
    status.set_firing_provider(lambda model, env: [{"name": "accuracy_low", "severity": "page"}]
                               if env == "production" else [])
    refs = [status.SourceRef("churn-health", "probe"), status.SourceRef("never-pulled", "json")]
    env = status.model_status(seeded, "churn", "production", query(sources=refs)).environments[0]
    assert [f["name"] for f in env.firing] == ["accuracy_low"]
    health, never = env.sources
    assert not health.healthy and health.last_success_at == NOW - 3 * H
    assert never.last_attempt_at is None
    assert env.notes == ("source churn-health: no data since 2026-11-10T09:00:00Z: health endpoint at "
                         "http://x/healthz answered 500.", "source never-pulled: never pulled")
    doc = env.to_dict()
    assert doc["sources"][0] == {"name": "churn-health", "type": "probe", "healthy": False,
                                 "last_attempt_at": "2026-11-10T11:00:00Z", "last_success_at": "2026-11-10T09:00:00Z",
                                 "last_error": "health endpoint at http://x/healthz answered 500.",
                                 "samples_last_pull": 0}


def test_old_data_says_since_when(seeded: Registry) -> None:
    later = query()
    later.now = NOW + 3 * 24 * H
    env = status.model_status(seeded, "churn", "production", later).environments[0]
    assert env.metrics["accuracy"].window is None
    assert "no data since 2026-11-10T11:00:00Z." in env.notes


def test_overview_has_a_line_per_model(seeded: Registry) -> None:
    o = status.overview(seeded, query())
    assert [m.model for m in o.models] == ["churn", "fraud"] and o.total == 2
    (production,) = o.models[0].environments
    assert production.quality == ("accuracy", 0.92) and production.latency == ("latency_p95_ms", 120.0)
    assert production.uptime == pytest.approx(23 / 24) and production.dataset_drift is True
    assert not production.stale and o.models[1].environments == ()
    assert o.to_dict()["models"][0]["environments"][0]["quality"] == {"metric": "accuracy", "value": 0.92}


# ---- per-version truth ------------------------------------------------------------------------------


def test_right_after_a_promotion_the_new_version_has_no_data_and_the_old_one_is_labelled(
    seeded: Registry, clock: Clock
) -> None:
    """Defect: after promoting v3 (no v3 data), status showed v2's numbers as "latest" under v3 and
    compared v2 with itself."""
    seeded.register(NewVersion(model="churn", artifact_uri="s3://m/churn", actor="ci"))
    clock.now = NOW - 20 * 60 * timedelta(seconds=1)
    seeded.promote("churn", "3", "production", actor="alice")
    env = status.model_status(seeded, "churn", "production", query()).environments[0]
    assert env.stable_has_no_data and env.stable_since == clock.now
    accuracy = env.metrics["accuracy"]
    assert (accuracy.version, accuracy.value, accuracy.window, accuracy.change_vs_previous_version) == (
        3, None, None, None)
    assert accuracy.previous is not None and accuracy.previous.version == 2
    assert accuracy.previous.stats.mean == pytest.approx((0.85 + 0.90 + 0.92) / 3)
    assert "v3: no data yet (serving since 2026-11-10T11:40:00Z)." in env.notes
    doc = env.to_dict()["metrics"]["accuracy"]
    assert doc["version"] == 3 and doc["value"] is None and doc["window"] is None
    assert doc["previous_version"]["version"] == 2 and doc["change_vs_previous_version"] is None
    assert env.drift is None and not env.has_data  # v2's drift is not shown as v3's


def test_a_running_canary_shows_beside_the_stable(seeded: Registry, clock: Clock) -> None:
    seeded.register(NewVersion(model="churn", artifact_uri="s3://m/churn", actor="ci"))
    clock.now = NOW - 5 * H
    Deployments(seeded, default_policy()).set_canary("churn", "3", "production", 25, actor="alice")
    clock.now = NOW
    Samples(seeded).record([SampleIn("churn", "production", "accuracy", 0.95, NOW - 4 * H, version=3),
                            SampleIn("churn", "production", "accuracy", 0.93, NOW - 3 * H, version=3),
                            SampleIn("churn", "production", "accuracy", 0.50, NOW - 2 * H)], source="test")
    env = status.model_status(seeded, "churn", "production", query()).environments[0]
    accuracy = env.metrics["accuracy"]
    assert accuracy.canary is not None and accuracy.canary.version == 3 and accuracy.canary.value == 0.93
    assert accuracy.canary.window == status.Stats(pytest.approx(0.94), 2, 3)  # type: ignore[arg-type]
    assert accuracy.window == status.Stats(pytest.approx(0.91), 2, 2)  # type: ignore[arg-type]
    assert accuracy.canary_vs_stable == pytest.approx(0.03)
    # measured while the canary took 25 %: a mix, so neither version's
    assert accuracy.unattributed == status.Stats(0.50, 1, None)
    assert env.canary_since == NOW - 5 * H
    assert any("name no version" in n for n in env.notes)
    doc = env.to_dict()["metrics"]["accuracy"]
    assert doc["canary"]["version"] == 3 and doc["canary"]["change_vs_stable"] == pytest.approx(0.03)


def test_samples_without_a_version_are_attributed_from_the_deployment_history(seeded: Registry) -> None:
    Samples(seeded).record([
        SampleIn("churn", "production", "f1", 0.7, NOW - 5 * 24 * H),  # v1 served then
        SampleIn("churn", "production", "f1", 0.8, NOW - H),           # v2 serves now
        SampleIn("churn", "staging", "f1", 0.6, NOW - H),              # nothing ever served staging
    ], source="test")
    by_version = Samples(seeded).latest_by_version("churn", "production", metrics=["f1"])
    assert {v: p.value for (_, v), p in by_version.items()} == {1: 0.7, 2: 0.8}
    assert Samples(seeded).latest("churn", "staging")["f1"].version is None


def test_overview_and_detail_agree_on_drift(seeded: Registry) -> None:
    """Defect: the summary showed drift "–" where the per-model view said 67 %."""
    line = status.overview(seeded, query()).models[0].environments[0]
    detail = status.model_status(seeded, "churn", "production", query()).environments[0]
    assert detail.drift is not None and line.drift_share == detail.drift.drift_share == pytest.approx(2 / 3)
