"""`/model status` end to end through the shared grammar and dispatcher, rendered as Slack sees
it (Block Kit, ≤ 50 blocks) and as the shell shows it; user text is escaped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import commands, handlers
from bot.blocks.base import MAX_MESSAGE_BLOCKS
from bot.blocks.text import render
from bot.blocks.textfmt import duration
from bot.config.settings import Settings
from bot.domain.errors import NotFound
from bot.domain.monitoring.recording import record_failure
from bot.domain.monitoring.samples import SampleIn, Samples
from bot.domain.registry import NewVersion
from bot.services import Services, open_services

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
ME = handlers.Actor("U0ALICE", "C0CHAN")
HOSTILE = "<!channel> & <@U123>"
POLICY = """
[[sources]]
name = "churn-health"
type = "probe"
model = "churn"
targets = { production = "http://churn/healthz" }
"""


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    config = tmp_path / "modelbot.toml"
    config.write_text(POLICY)
    svc = open_services(Settings(database_url=database_url, config_path=config), clock=lambda: NOW)
    for _ in range(2):
        svc.registry.register(NewVersion(model="churn", artifact_uri="s3://m/churn", actor="ci"))
    svc.registry.register(NewVersion(model="fraud", artifact_uri="s3://m/fraud", actor="ci"))
    svc.registry.promote("churn", "1", "production", actor="alice")
    svc.registry.promote("churn", "2", "production", actor="alice")
    Samples(svc.registry).record([
        SampleIn("churn", "production", metric, value, at, version=v)
        for metric, value, at, v in [
            ("accuracy", 0.85, NOW - 30 * H, 2), ("accuracy", 0.91, NOW - 2 * H, 2), ("accuracy", 0.80, NOW - 50 * H, 1),
            ("latency_p95_ms", 100.0, NOW - 30 * H, 2), ("latency_p95_ms", 130.0, NOW - 2 * H, 2),
            ("psi:age", 0.4, NOW - H, 2), ("drift_share", 1.0, NOW - H, 2), ("dataset_drift", 1.0, NOW - H, 2),
            ("up", 1.0, NOW - 20 * H, 2), ("up", 0.0, NOW - 10 * H, 2), ("up", 1.0, NOW - 9 * H, 2),
        ]
    ], source="test")
    record_failure(svc.registry, "churn-health", now=NOW - H, error=f"answered 500: {HOSTILE}")
    yield svc
    svc.close()


def shown(message: object) -> str:
    return render(message.blocks, fallback=message.text).text  # type: ignore[attr-defined]


def test_one_model_in_detail(services: Services) -> None:
    message = handlers.run_text(services, ME, "status churn")
    assert len(message.blocks) <= MAX_MESSAGE_BLOCKS and not message.in_channel
    text = shown(message)
    assert "churn: status, last 24h" in text
    assert "production  v2 since 10 Nov 12:00 (previous v1)" in text
    assert "metric          v2 latest  Δ24h     v1 before  Δprev" in text
    assert "accuracy        0.91       +0.06 ▲  0.8        +0.11 ▲" in text  # window mean 0.91 vs 0.85; v1 0.80
    assert "latency_p95_ms  130        +30 ▼    –          –" in text  # lower is better
    assert "psi:age" not in text.split("Drift")[0]  # per-feature drift is summarised, not a metric row
    assert "Drift · 100% of features · ⚠️ dataset drift · age psi 0.4" in text
    assert "Availability 95.00% · 1 incident · MTTR 1h · MTBF 19h" in text
    assert "staging  nothing serves  no data\nno samples yet for this environment.\n" in text  # the probe is prod's
    raw = json.dumps(message.blocks)
    assert "<!channel>" not in raw and "&lt;!channel&gt; &amp; &lt;@U123&gt;" in raw
    assert f"source churn-health: no data yet: answered 500: {HOSTILE}" in text


def test_one_environment(services: Services) -> None:
    message = handlers.run_text(services, ME, "status churn @production share")
    assert message.in_channel and "staging" not in shown(message)


def test_every_model_on_a_line(services: Services) -> None:
    text = shown(handlers.run_text(services, ME, "st"))
    assert "Model status, last 24h" in text
    assert "production v2 · accuracy 0.91 · p95 130 ms · drift 100%  ⚠️ up 95.0%  ⚠️ drift" in text
    assert "fraud\nnothing deployed, no data" in text


def test_many_metrics_stay_within_limits(services: Services) -> None:
    Samples(services.registry).record(
        [SampleIn("churn", env, f"metric_{i:02d}", float(i), NOW - H) for i in range(60)
         for env in ("production", "staging")], source="test")
    message = handlers.run_text(services, ME, "status churn")
    assert len(message.blocks) <= MAX_MESSAGE_BLOCKS
    assert "… 47 more metrics" in shown(message)  # 62 plain metrics in production, 15 shown


def test_grammar_and_errors(services: Services) -> None:
    assert commands.parse("status") == commands.parse("st")
    assert any(usage == "/model status [MODEL] [ENV]" for usage, _ in commands.help_lines())
    with pytest.raises(commands.UsageError, match="Too many arguments"):
        commands.parse("status churn production extra")
    with pytest.raises(NotFound):
        handlers.run_text(services, ME, "status nope")


@pytest.mark.parametrize(("seconds", "text"), [(86400, "24h"), (7 * 86400, "7d"), (5400, "90m"), (150, "2m 30s"),
                                               (3600 * 25 + 60 * 7 + 5, "25h 7m"), (0, "0s")])
def test_durations_read_naturally(seconds: int, text: str) -> None:
    assert duration(timedelta(seconds=seconds)) == text
