"""`[alerts]` in modelbot.toml: errors name file:line, and the rules sync idempotently into the table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.config.alerts import CONFIG_ACTOR, alert_config, sync_rules
from bot.config.policy_file import load_policy
from bot.config.settings import ConfigError
from bot.domain.alerting.rules import AlertRules
from bot.domain.errors import InvalidInput
from bot.domain.registry import NewVersion, Registry
from storage.models import AlertRule

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
GOOD = """\
[alerts]
channel = "C0ALERTS"
group_wait = "10s"
repeat_interval = "2h"
evaluation_interval = "30s"

[[alerts.rules]]
model = "churn"
metric = "error_rate"
op = ">"
threshold = 0.05
for = "5m"
severity = "critical"
target = "both"
failure_limit = 2

[[alerts.rules]]
model = "churn"
environment = "staging"
metric = "auc"
op = "<"
threshold = "previous-0.02"

[[alerts.rules]]
model = "churn"
metric = "latency_p95_ms"
anomalous = true
k = 3
window = "3d"
channel = "C0ONCALL"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "modelbot.toml"
    path.write_text(text)
    return path


def test_settings_and_rules_parse(tmp_path: Path) -> None:
    config = alert_config(load_policy(write(tmp_path, GOOD)))
    s = config.settings
    assert (s.default_channel, s.group_wait, s.group_interval, s.repeat_interval, s.evaluation_interval) == (
        "C0ALERTS", timedelta(seconds=10), timedelta(minutes=5), timedelta(hours=2), timedelta(seconds=30))
    first, second, third = config.rules
    assert (first.op, first.threshold, first.for_seconds, first.severity, first.target, first.failure_limit) == (
        ">", 0.05, 300, "critical", "both", 2)
    assert (second.environment, second.baseline, second.threshold) == ("staging", "previous", -0.02)
    assert (third.kind, third.anomaly_k, third.anomaly_window_seconds, third.channel) == (
        "anomaly", 3.0, 3 * 86400, "C0ONCALL")
    assert {rule.origin for rule in config.rules} == {"config"}


def test_the_file_and_the_command_make_the_same_rule(tmp_path: Path) -> None:
    """One rule shape: `[[alerts.rules]]` and `/model alert add` say the same rule the same way."""
    from bot import commands

    first, second, third = alert_config(load_policy(write(tmp_path, GOOD))).rules
    typed = [commands.parse(text).rule for text in (  # type: ignore[attr-defined]
        "alert add churn error_rate > 0.05 for 5m critical both failure-limit 2",
        "alert add churn@staging auc < previous - 0.02",
        "alert add churn latency_p95_ms anomalous k 3 window 3d C0ONCALL")]
    assert [r.identity() for r in typed] == [first.identity(), second.identity(), third.identity()]


def test_min_coverage_reads_the_same_from_the_file_and_the_command(tmp_path: Path) -> None:
    from bot import commands

    text = GOOD.replace("failure_limit = 2", 'failure_limit = 2\nmin_coverage = "50%"', 1)
    first = alert_config(load_policy(write(tmp_path, text))).rules[0]
    typed = commands.parse(  # type: ignore[attr-defined]
        "alert add churn error_rate > 0.05 for 5m critical both failure-limit 2 min-coverage 50%").rule
    assert first.min_coverage == 0.5 and typed.identity() == first.identity()
    with pytest.raises(InvalidInput, match="is not a coverage"):
        commands.parse("alert add churn error_rate > 0.05 min-coverage lots")


def test_no_alerts_section_means_defaults(tmp_path: Path) -> None:
    config = alert_config(load_policy(write(tmp_path, "[roles]\nadmins = [\"U0ADMIN\"]\n")))
    assert config.rules == () and config.settings.group_wait == timedelta(seconds=30) and config.charts


@pytest.mark.parametrize(
    ("replace", "by", "line", "message"),
    [
        ('op = ">"', 'op = "=>"', 10, "op must be one of < <= > >= == !="),
        ("threshold = 0.05", "threshold = nan", 11, "finite"),
        ("threshold = 0.05", "threshold = inf", 11, "finite"),
        ("threshold = 0.05", 'threshold = "lots"', 11, "not a threshold"),
        ('for = "5m"', 'for = "abc"', 12, "not a `for` duration"),
        ('severity = "critical"', 'severity = "fatal"', 13, "severity must be one of warning, critical"),
        ("failure_limit = 2", "failure_limit = 0", 15, "failure_limit must be a whole number from 1 to 100"),
        ('channel = "C0ONCALL"', 'channel = "#oncall"', 30, "channel must be a Slack channel id"),
        ("k = 3", "k = -1", 28, "k must be a number between 0 and 100"),
        ('window = "3d"', 'window = "30m"', 29, "shorter than 1h"),
        ('environment = "staging"', 'environment = "moon"', 19, "environment \"moon\" is not in the policy"),
        ('group_wait = "10s"', 'group_wait = "soon"', 3, "'soon' is not a group_wait"),
        ('evaluation_interval = "30s"', 'evaluation_interval = "1s"', 5, "at least 10s"),
        ('channel = "C0ALERTS"', 'chanel = "C0ALERTS"', 2, "unknown key 'chanel' in [alerts]"),
        ('target = "both"', 'targets = "both"', 14, "[[alerts.rules]] #1: unknown key 'targets'"),
        ('metric = "auc"', 'metric = "auc score"', 20, "not a valid metric name"),
        ("failure_limit = 2", 'failure_limit = 2\nmin_coverage = "150%"', 16, "'150%' is not a coverage"),
        ('window = "3d"', 'window = "3d"\nmin_coverage = "50%"', 30, "min-coverage applies to quality metrics"),
    ],
)
def test_mistakes_name_the_file_and_line(tmp_path: Path, replace: str, by: str, line: int, message: str) -> None:
    assert replace in GOOD
    path = write(tmp_path, GOOD.replace(replace, by, 1))
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    text = str(caught.value)
    assert text.startswith(f"{path}:{line}: "), text
    assert message in text, text


def test_anomaly_rule_with_a_threshold_and_duplicates_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("anomalous = true", "anomalous = true\nop = \">\""))
    with pytest.raises(ConfigError, match=r":28: \[\[alerts.rules\]\] #3: an anomaly rule has no op"):
        load_policy(path)
    first = GOOD.index("[[alerts.rules]]")
    twice = GOOD + "\n" + GOOD[first:GOOD.index("[[alerts.rules]]", first + 1)]
    with pytest.raises(ConfigError, match=r"#4: this rule repeats \[\[alerts.rules\]\] #1"):
        load_policy(write(tmp_path, twice))


def rule_rows(registry: Registry) -> list[tuple[int, str, bool, str]]:
    with registry.reading() as session:
        return [tuple(r) for r in session.execute(sa.select(AlertRule.id, AlertRule.metric, AlertRule.enabled,
                                                            AlertRule.origin).order_by(AlertRule.id))]  # type: ignore[misc]


def test_sync_is_idempotent_disables_removed_rules_and_waits_for_models(registry: Registry, tmp_path: Path) -> None:
    registry.register(NewVersion(model="churn", artifact_uri="s3://x", actor="ci"))
    config = alert_config(load_policy(write(tmp_path, GOOD)))
    first = sync_rules(registry, config, NOW)
    assert len(first.added) == 3 and not first.disabled
    again = sync_rules(registry, config, NOW + timedelta(minutes=1))
    assert not again.changed and again.kept == 3  # same file, no writes
    assert {r.created_by for r in AlertRules(registry).list()} == {CONFIG_ACTOR}

    # the anomaly rule is removed from the file, the auc rule changes, a rule for a model not registered yet appears
    edited = GOOD[:GOOD.rindex("[[alerts.rules]]")].replace("previous-0.02", "previous-0.05")
    edited += '[[alerts.rules]]\nmodel = "fraud"\nmetric = "recall"\nop = "<"\nthreshold = 0.5\n'
    config = alert_config(load_policy(write(tmp_path, edited)))
    report = sync_rules(registry, config, NOW + timedelta(minutes=2))
    assert sorted(report.disabled) == [2, 3] and len(report.added) == 1 and report.kept == 1
    assert report.skipped and "fraud" in report.skipped[0]
    registry.register(NewVersion(model="fraud", artifact_uri="s3://y", actor="ci"))
    later = sync_rules(registry, config, NOW + timedelta(minutes=3))
    assert len(later.added) == 1 and not later.disabled
    enabled = [(m, o) for _, m, e, o in rule_rows(registry) if e]
    assert sorted(enabled) == [("auc", "config"), ("error_rate", "config"), ("recall", "config")]
