"""Alert evaluation with a controlled clock: pending/firing/resolved, grouping, silences,
inhibition, repeat, canary abort and anomalies (both backends)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.domain.alerting.actions import AlertActions
from bot.domain.alerting.engine import AlertEngine, AlertSettings
from bot.domain.alerting.rules import AlertRules, parse_rule
from bot.domain.errors import InvalidInput
from bot.domain.monitoring.samples import SampleIn, Samples
from bot.domain.policy import default_policy
from bot.domain.registry import NewVersion, Registry
from storage.models import AlertRule, OutboxMessage

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def world(registry: Registry, clock: Clock):  # type: ignore[no-untyped-def]
    registry.clock = clock
    for _ in range(2):
        registry.register(NewVersion(model="churn", artifact_uri="s3://x", actor="ci", metrics={"auc": 0.9}))
    registry.promote("churn", "1", "production", actor="ci")
    aborted: list[tuple[str, str, str]] = []
    engine = AlertEngine(registry, AlertSettings(default_channel="C0ALERTS"), clock=clock,
                         abort_canary=lambda m, e, why: aborted.append((m, e, why)))
    return registry, engine, AlertRules(registry, default_policy()), Samples(registry), aborted


def outbox_rows(registry: Registry) -> list[tuple[str, str]]:
    with registry.reading() as session:
        return [(k, t) for k, t in session.execute(
            sa.select(OutboxMessage.kind, OutboxMessage.template).order_by(OutboxMessage.id)).all()]


def observe(samples: Samples, clock: Clock, metric: str, value: float, version: int | None = None) -> None:
    samples.record([SampleIn("churn", "production", metric, value, clock.now, version=version)], source="test")


def test_short_breach_never_notifies_long_one_once_then_repeat_then_resolved(world, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    registry, engine, rules, samples, _ = world
    rules.add(parse_rule("churn", "production", "error_rate", op=">", threshold="0.05", for_="5m"), actor="U1",
              now=clock.now)
    for _minute in range(4):  # over the threshold for 4 minutes only
        observe(samples, clock, "error_rate", 0.09)
        engine.evaluate()
        clock.advance(minutes=1)
    observe(samples, clock, "error_rate", 0.01)
    engine.evaluate()
    assert outbox_rows(registry) == []
    for _ in range(8):  # now it stays over
        clock.advance(minutes=1)
        observe(samples, clock, "error_rate", 0.09)
        engine.evaluate()
    assert outbox_rows(registry) == [("post", "alert_card")]
    clock.advance(hours=4)
    observe(samples, clock, "error_rate", 0.08)
    engine.evaluate()
    assert outbox_rows(registry)[-2:] == [("update", "alert_card"), ("thread", "alert_repeat")]
    clock.advance(minutes=1)
    observe(samples, clock, "error_rate", 0.01)
    engine.evaluate()
    assert outbox_rows(registry)[-2:] == [("update", "alert_card"), ("thread", "alert_resolved")]
    with registry.reading() as session:
        data = session.execute(sa.select(OutboxMessage.data).order_by(OutboxMessage.id.desc())).scalars().first()
    assert data["status"] == "resolved" and data["duration_seconds"] >= 4 * 3600


def test_five_rules_one_message_and_critical_inhibits_warnings(world, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    registry, engine, rules, samples, _ = world
    metrics = ["m1", "m2", "m3", "m4", "m5"]
    for i, metric in enumerate(metrics):
        rules.add(parse_rule("churn", "production", metric, op=">", threshold="1",
                           severity="critical" if i == 0 else "warning"), actor="U1", now=clock.now)
    for metric in metrics:  # they fire within 30 s of each other
        observe(samples, clock, metric, 5.0)
        engine.evaluate()
        clock.advance(seconds=6)
    clock.advance(seconds=30)
    engine.evaluate()
    rows = outbox_rows(registry)
    assert rows == [("post", "alert_card")]
    with registry.reading() as session:
        data = session.execute(sa.select(OutboxMessage.data)).scalars().one()
    assert len(data["alerts"]) == 5
    assert sorted(a["metric"] for a in data["alerts"] if a["inhibited"]) == ["m2", "m3", "m4", "m5"]


def test_silence_mutes_until_it_expires(world, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    registry, engine, rules, samples, _ = world
    rules.add(parse_rule("churn", "production", "latency_p95_ms", op=">", threshold="250"), actor="U1", now=clock.now)
    AlertActions(registry, default_policy()).silence("churn", "production", timedelta(hours=1), actor="U2", now=clock.now,
                                   reason="deploying")
    for _ in range(30):
        observe(samples, clock, "latency_p95_ms", 400.0)
        engine.evaluate()
        clock.advance(minutes=1)
    assert outbox_rows(registry) == []
    assert AlertActions(registry).overview(clock.now)["silenced"]
    clock.advance(minutes=31)
    observe(samples, clock, "latency_p95_ms", 400.0)
    engine.evaluate()
    assert outbox_rows(registry) == [("post", "alert_card")]


def test_canary_breach_aborts_after_failure_limit(world, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    registry, engine, rules, samples, aborted = world
    with registry.writing() as session:
        session.execute(sa.text("UPDATE deployments SET canary_version = 2, canary_weight = 10"))
    rules.add(parse_rule("churn", "production", "error_rate", op=">", threshold="0.02", severity="critical",
                       target="canary", failure_limit=3), actor="U1", now=clock.now)
    for i in range(3):
        observe(samples, clock, "error_rate", 0.01, version=1)
        observe(samples, clock, "error_rate", 0.2, version=2)
        engine.evaluate()
        assert len(aborted) == (1 if i == 2 else 0)
        clock.advance(minutes=1)
    model, env, why = aborted[0]
    assert (model, env) == ("churn", "production") and "0.2" in why and "failure limit 3" in why
    # once the canary is gone its series is over: the alert resolves instead of firing for ever
    with registry.writing() as session:
        session.execute(sa.text("UPDATE deployments SET canary_version = NULL, canary_weight = 0"))
    report = engine.evaluate()
    assert report.transitions.get("resolved") == 1
    assert AlertActions(registry).overview(clock.now)["firing"] == []


def test_anomaly_ignores_daily_cycle_and_fires_on_step(world, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    _registry, engine, rules, samples, _ = world
    start = clock.now - timedelta(days=7)
    points = []
    for i in range(7 * 24 * 4):  # every 15 minutes for a week, a daily cycle around 100 ms
        at = start + timedelta(minutes=15 * i)
        value = 100 + 40 * math.sin(2 * math.pi * (at.hour + at.minute / 60) / 24) + (i % 3)
        points.append(SampleIn("churn", "production", "latency_p95_ms", value, at))
    samples.record(points, source="test")
    rules.add(parse_rule("churn", "production", "latency_p95_ms", kind="anomaly", anomaly_k=4, anomaly_window="7d"),
              actor="U1", now=clock.now)
    for hour in range(24):  # the normal cycle continues for a day: nothing fires
        at_value = 100 + 40 * math.sin(2 * math.pi * clock.now.hour / 24) + 1
        observe(samples, clock, "latency_p95_ms", at_value)
        report = engine.evaluate()
        assert report.transitions.get("firing", 0) == 0, hour
        clock.advance(hours=1)
    observe(samples, clock, "latency_p95_ms", 100 + 40 * math.sin(2 * math.pi * clock.now.hour / 24) + 80)
    assert engine.evaluate().transitions.get("firing") == 1


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ({"op": "=>", "threshold": "0.8"}, "not a comparison"),
        ({"op": "<", "threshold": "NaN"}, "finite"),
        ({"op": "<", "threshold": "inf"}, "finite"),
        ({"op": "<", "threshold": "abc"}, "not a threshold"),
        ({"op": "<", "threshold": "0.8", "for_": "abc"}, "duration"),
        ({"op": "<", "threshold": "0.8", "for_": "91d"}, "more than 90 days"),
        ({"op": "<", "threshold": "0.8", "channel": "#nope!"}, "a channel name I have not looked up"),
        ({"op": "<", "threshold": "0.8", "channel": "nope"}, "not a channel"),
        ({"environment": "moon", "op": "<", "threshold": "0.8"}, "no environment"),
        ({"op": "<", "threshold": "0.8", "severity": "fatal"}, "warning or critical"),
    ],
)
def test_bad_rules_store_nothing(world, clock: Clock, words: dict[str, str], message: str) -> None:  # type: ignore[no-untyped-def]
    registry, _, rules, _, _ = world
    words = dict(words)  # parametrize shares the dict between backends
    environment = words.pop("environment", "production")
    with pytest.raises(InvalidInput, match=message):
        rules.add(parse_rule("churn", environment, "auc", **words), actor="U1", now=clock.now)  # type: ignore[arg-type]
    with registry.reading() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(AlertRule)).scalar_one() == 0


def test_previous_version_baseline(world, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    registry, engine, rules, samples, _ = world
    registry.promote("churn", "2", "production", actor="ci")  # previous = 1, registered auc 0.9
    rules.add(parse_rule("churn", "production", "auc", op="<", threshold="previous-0.02"), actor="U1", now=clock.now)
    observe(samples, clock, "auc", 0.89, version=2)
    assert engine.evaluate().transitions.get("firing") is None
    clock.advance(minutes=1)
    observe(samples, clock, "auc", 0.85, version=2)
    assert engine.evaluate().transitions.get("firing") == 1
