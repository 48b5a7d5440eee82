"""What a digest says about a period: only pointer moves, once each, however much else the audit
log holds; chart markers merged to a readable handful; alert thresholds carried to the chart;
and each version's own numbers (both database backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.blocks.digest_chart import render_png
from bot.blocks.templates import render
from bot.domain.alerting.rules import AlertRules, parse_rule
from bot.domain.deployments import Deployments
from bot.domain.monitoring import digest
from bot.domain.monitoring.samples import SampleIn, Samples
from bot.domain.policy import EnvironmentPolicy, Members, Policy, default_policy
from bot.domain.registry import NewVersion, Registry
from bot.domain.schedule import Period, Schedule
from bot.domain.subscriptions import SubscriptionView
from storage.db import Database

END = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
POLICY = Policy(environments={
    "staging": EnvironmentPolicy("staging"),
    "production": EnvironmentPolicy("production", approvals=1, approvers=Members(("bob", "carol"))),
})


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def busy_day(db: Database) -> tuple[Registry, Clock]:
    """A day with 28 audit events, of which 7 move a pointer of production."""
    clock = Clock(END - 30 * H)
    registry = Registry(db, clock=clock)
    deployments = Deployments(registry, POLICY, clock=clock)
    for _ in range(5):
        registry.register(NewVersion(model="churn", artifact_uri="s3://m/churn", actor="ci"))
    registry.promote("churn", "1", "production", actor="alice")  # before the period

    def at(hours_before_end: float) -> None:
        clock.now = END - hours_before_end * H

    at(22)
    first = deployments.request_promotion("churn", "2", "production", requester="alice").request
    assert first is not None
    deployments.vote(first.id, "bob", "reject", reason="not yet")  # reject: no move
    at(20)
    second = deployments.request_promotion("churn", "2", "production", requester="alice").request
    assert second is not None
    deployments.vote(second.id, "carol", "approve")  # the approval that moves v1 → v2
    at(19.5)
    deployments.request_promotion("churn", "4", "production", requester="alice")  # stays pending
    at(12)
    deployments.set_canary("churn", "3", "production", 5, actor="alice")
    at(11.9)
    deployments.set_canary("churn", None, "production", 25, actor="alice")
    at(11.8)
    deployments.abort_canary("churn", "production", actor="alice")
    at(6)
    registry.promote("churn", "3", "production", actor="alice")
    at(5.9)
    registry.rollback("churn", "production", actor="alice")
    at(2)
    registry.promote("churn", "1", "staging", actor="alice")
    clock.now = END
    Samples(registry).record(
        [SampleIn("churn", "production", "accuracy", 0.80 + i / 100, END - (20 - i) * H) for i in range(20)],
        source="test")
    AlertRules(registry, default_policy()).add(parse_rule("churn", "production", "accuracy", op="<", threshold="0.85"), actor="alice",
                             now=END)
    return registry, clock


def build(registry: Registry) -> digest.Digest:
    sub = SubscriptionView(1, "C0GENERAL", "churn", None, Schedule("daily", "09:00", 0, "UTC"), "alice",
                           END - 48 * H, None)
    return digest.build(registry, POLICY, sub, Period(END, END - 24 * H, END - 48 * H))


def test_only_pointer_moves_once_each(busy_day: tuple[Registry, Clock]) -> None:
    """Defect: "↪ approve nothing → v1", "↪ reject nothing → v5" … 28 lines in one digest."""
    registry, _ = busy_day
    built = build(registry)
    production = next(e for e in built.facts["models"][0]["environments"] if e["environment"] == "production")
    assert [(c["action"], c["from_version"], c["version"]) for c in production["changes"]] == [
        ("promote", 1, 2), ("canary_start", 2, 3), ("canary_weight", 2, 3), ("canary_abort", 3, 2),
        ("promote", 2, 3), ("rollback", 3, 2)]
    text = str(render("digest", built.facts).blocks)
    assert text.count("↪") == 7  # the six above and staging's promotion
    assert "approve" not in text and "reject" not in text and "requested" not in text


def test_chart_markers_are_merged_to_a_readable_handful(busy_day: tuple[Registry, Clock]) -> None:
    registry, _ = busy_day
    chart = build(registry).chart
    production = [m for m in chart.markers if m.series == "churn · production"]
    assert len(production) == 3  # 20 h before; the canary's three steps; promote and rollback 6 min apart
    assert production[0].text == "v1 → v2"
    assert production[1].text == "canary v3 5%; canary v3 25%; canary v3 aborted"
    assert production[2].text == "v2 → v3 → v2"
    assert [(t.metric, t.value) for t in chart.thresholds] == [("accuracy", 0.85)]
    png = render_png(chart)
    assert png is not None and png.startswith(b"\x89PNG")


def test_never_more_than_a_handful_of_markers() -> None:
    period = Period(END, END - 24 * H, END - 48 * H)
    moves = [(END - (23 - i) * H, f"v{i} → v{i + 1}") for i in range(20)]
    merged = digest.merge_markers(moves, "m · production", period)
    assert [m.text for m in merged] == [f"v{i} → v{i + 1} … (6 moves)" for i in (0, 6, 12)] + ["v18 → v19 → v20"]
    assert [m.at for m in merged] == [moves[i][0] for i in (0, 6, 12, 18)]
