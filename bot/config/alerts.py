"""`[alerts]` and `[[alerts.rules]]` in modelbot.toml: parsed at start-up, errors at file:line.

    [alerts]
    channel = "C0ALERTS"            # where alert cards go when a rule names no channel
    group_wait = "30s"              # wait this long so alerts firing together arrive as one card
    group_interval = "5m"           # a changed set of alerts is announced at most this often
    repeat_interval = "4h"          # an unchanged firing incident is repeated this often
    evaluation_interval = "1m"      # how often the scheduler evaluates every rule
    charts = true                   # a PNG of the metric around the breach in the card's thread

    [[alerts.rules]]                # the same fields as `/model alert add`
    model = "churn"
    environment = "production"      # default production
    metric = "error_rate"
    op = ">"                        # < <= > >= == !=
    threshold = 0.05                # or "previous-0.02": against the previous version
    for = "5m"
    severity = "critical"           # warning (default) | critical
    channel = "C0ONCALL"
    target = "canary"               # stable (default) | canary | both
    no_data = "keep"                # keep (default) | alert | ok
    keep_firing_for = "10m"
    failure_limit = 3               # canary: consecutive failing evaluations before the abort
    # min_coverage = "50%"          # quality metrics: judge the newest window with ≥ 50 % labels back

    [[alerts.rules]]                # an anomaly rule instead of a threshold
    model = "churn"
    metric = "latency_p95_ms"
    anomalous = true
    k = 4
    window = "7d"

Each `[[alerts.rules]]` table becomes the domain's one rule shape (`bot.domain.alerting.rules.
Rule`, through `parse_rule`, the same function `/model alert add` uses), so the file and the
command cannot drift apart. Why the file is checked here and not only when rules are stored: `load_policy` calls
`parse_alerts` before the database is touched, so a typo stops start-up with the line to fix
instead of an alert that silently never fires. What needs the database (does the model
exist?) is checked when the rules are synced into `alert_rules` (origin `config`), which
happens at the start of every evaluation cycle: the same file gives the same rows (no
writes), a rule removed from the file is disabled, and a rule whose model is registered
later is added on the first cycle after it exists.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.config.settings import ConfigError
from bot.config.toml_file import KeyPath, PolicyFile, config_error
from bot.domain import names
from bot.domain.alerting.engine import AlertSettings
from bot.domain.alerting.rules import (
    CONFIG_ORIGIN,
    MAX_DURATION,
    NO_DATA,
    OPS,
    SEVERITIES,
    TARGETS,
    AlertRules,
    Rule,
    parse_coverage,
    parse_rule,
    parse_threshold,
)
from bot.domain.channels import CHANNEL_ID
from bot.domain.durations import parse_duration, whole_seconds
from bot.domain.errors import InvalidInput, NotFound
from bot.domain.policy import Policy
from bot.domain.registry import Registry

log = logging.getLogger("modelbot.alerts")

SETTINGS_KEYS = {"channel", "group_wait", "group_interval", "repeat_interval", "evaluation_interval", "charts",
                 "rules"}
RULE_KEYS = {"name", "model", "environment", "metric", "op", "threshold", "anomalous", "k", "window", "for",
             "severity", "channel", "target", "no_data", "keep_firing_for", "failure_limit",
             "min_coverage"}
DEFAULT_ENVIRONMENT = "production"
CONFIG_ACTOR = "modelbot.toml"
MIN_EVALUATION_INTERVAL = timedelta(seconds=10)
_CHANNEL_HINT = "channel must be a Slack channel id like \"C0123ABCD\" (open the channel's details to copy it)."


@dataclass(frozen=True)
class AlertConfig:
    settings: AlertSettings = field(default_factory=AlertSettings)
    rules: tuple[Rule, ...] = ()
    charts: bool = True


def alert_config(policy: Policy) -> AlertConfig:
    """The alert settings and rules of an already loaded (so already validated) policy."""
    return parse_alerts(policy.sections.get("alerts"), None, environments=policy.environment_names)


def parse_alerts(raw: Any, file: PolicyFile | None, *, environments: Sequence[str]) -> AlertConfig:
    """Validate `[alerts]`; a ConfigError names the file and the line of the offending key."""
    if raw is None:
        return AlertConfig()

    def error(message: str, key: str | None = None) -> ConfigError:
        return config_error(file, message, ("alerts", key) if key else ("alerts",), "[alerts]")

    if not isinstance(raw, dict):
        raise error("[alerts] must be a table.")
    for key in raw:
        if key not in SETTINGS_KEYS:
            raise error(f"unknown key '{key}' in [alerts]; known: {', '.join(sorted(SETTINGS_KEYS))}.", key)
    channel = raw.get("channel")
    if channel is not None and (not isinstance(channel, str) or not CHANNEL_ID.match(channel)):
        raise error(_CHANNEL_HINT, "channel")
    defaults = AlertSettings()
    durations = {}
    for key in ("group_wait", "group_interval", "repeat_interval", "evaluation_interval"):
        value = raw.get(key)
        if value is None:
            durations[key] = getattr(defaults, key)
            continue
        if not isinstance(value, str):
            raise error(f"{key} must be a duration in quotes, like \"5m\".", key)
        try:
            durations[key] = parse_duration(value, key)
        except InvalidInput as exc:
            raise error(exc.message, key) from None
    if durations["evaluation_interval"] < MIN_EVALUATION_INTERVAL:
        raise error("evaluation_interval must be at least 10s; every cycle reads every rule.", "evaluation_interval")
    charts = raw.get("charts", True)
    if not isinstance(charts, bool):
        raise error("charts must be true or false.", "charts")
    rules_raw = raw.get("rules", [])
    if not isinstance(rules_raw, list):
        raise error("rules must be a list of [[alerts.rules]] tables.", "rules")
    rules: list[Rule] = []
    seen: dict[tuple[Any, ...], int] = {}
    for index, table in enumerate(rules_raw):
        at = _At(file, index)
        if not isinstance(table, dict):
            raise at.error("each [[alerts.rules]] entry must be a table with model, metric, op and threshold.")
        rule = _rule(table, at, tuple(environments))
        identity = rule.identity()
        if identity in seen:
            raise at.error(f"this rule repeats [[alerts.rules]] #{seen[identity] + 1}; remove one of them.")
        seen[identity] = index
        rules.append(rule)
    settings = AlertSettings(default_channel=channel, **durations)
    return AlertConfig(settings=settings, rules=tuple(rules), charts=charts)


def _rule(table: dict[str, Any], at: _At, environments: tuple[str, ...]) -> Rule:
    """Each key checked where it is written (for its line), then the one rule shape built."""
    for key in table:
        if key not in RULE_KEYS:
            raise at.error(f"unknown key '{key}'; known: {', '.join(sorted(RULE_KEYS))}.", key)
    model = _string(table, "model", at, required=True)
    assert model is not None
    at.check(names.model_name, model, "model")
    environment = _string(table, "environment", at) or DEFAULT_ENVIRONMENT
    if environment not in environments:
        raise at.error(f"environment \"{environment}\" is not in the policy; use one of {', '.join(environments)}.",
                       "environment")
    metric = _string(table, "metric", at, required=True)
    assert metric is not None
    at.check(lambda m: names.key(m, "metric"), metric, "metric")
    anomalous = table.get("anomalous", False)
    if not isinstance(anomalous, bool):
        raise at.error("anomalous must be true or false.", "anomalous")
    op, threshold = ">", "0"
    if anomalous:
        for key in ("op", "threshold"):
            if key in table:
                raise at.error(f"an anomaly rule has no {key}: it fires when the value leaves its own baseline.",
                               key)
    else:
        for key in ("k", "window"):
            if key in table:
                raise at.error(f"{key} belongs to anomaly rules; add anomalous = true, or remove it.", key)
        op = _string(table, "op", at, required=True) or ""
        if op not in OPS:
            raise at.error(f"op must be one of {' '.join(OPS)}, not \"{names.preview(op)}\".", "op")
        raw_threshold = table.get("threshold")
        if isinstance(raw_threshold, bool) or not isinstance(raw_threshold, (int, float, str)):
            raise at.error("threshold must be a number like 0.05, or \"previous-0.02\" to compare with the previous "
                           "version.", "threshold")
        threshold = str(raw_threshold)
        at.check(parse_threshold, threshold, "threshold")
    k = table.get("k", 4.0)
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not math.isfinite(k) or not 0 < k <= 100:
        raise at.error("k must be a number between 0 and 100, like 4.", "k")
    window = _duration_text(table, "window", at, "7d")
    if anomalous and parse_duration(window) < timedelta(hours=1):
        raise at.error("an anomaly window shorter than 1h has no baseline to speak of: use for example 7d.", "window")
    for_ = _duration_text(table, "for", at, None)
    keep = _duration_text(table, "keep_firing_for", at, None)
    severity = _choice(table, "severity", SEVERITIES, at, "warning")
    target = _choice(table, "target", TARGETS, at, "stable")
    no_data = _choice(table, "no_data", NO_DATA, at, "keep")
    channel = _string(table, "channel", at)
    if channel is not None and not CHANNEL_ID.match(channel):
        raise at.error(_CHANNEL_HINT, "channel")
    limit = table.get("failure_limit", 3)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
        raise at.error("failure_limit must be a whole number from 1 to 100.", "failure_limit")
    name = _string(table, "name", at)
    if name is not None and (len(name) > 128 or "\n" in name):
        raise at.error("name must be one line of at most 128 characters.", "name")
    coverage = table.get("min_coverage")
    if coverage is not None:
        coverage = str(coverage)
        try:
            parse_coverage(coverage, metric)
        except InvalidInput as exc:
            raise at.error(exc.message, "min_coverage") from None
    try:
        rule = parse_rule(model, environment, metric, kind="anomaly" if anomalous else "threshold", op=op,
                          threshold=threshold, for_=for_, keep_firing_for=keep, severity=severity, channel=channel,
                          target=target, no_data=no_data, anomaly_k=float(k), anomaly_window=window or "7d",
                          failure_limit=limit, name=name, min_coverage=coverage)
    except InvalidInput as exc:
        raise at.error(exc.message) from None
    rule.origin = CONFIG_ORIGIN
    return rule


def _string(table: dict[str, Any], key: str, at: _At, *, required: bool = False) -> str | None:
    value = table.get(key)
    if value is None:
        if required:
            raise at.error(f"missing {key} = \"…\".")
        return None
    if not isinstance(value, str) or not value.strip():
        raise at.error(f"{key} must be text in quotes.", key)
    return value.strip()


def _choice(table: dict[str, Any], key: str, choices: Sequence[str], at: _At, default: str) -> str:
    value = table.get(key, default)
    if value not in choices:
        raise at.error(f"{key} must be one of {', '.join(choices)}.", key)
    return str(value)


def _duration_text(table: dict[str, Any], key: str, at: _At, default: str | None) -> str | None:
    value = table.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise at.error(f"{key} must be a duration in quotes, like \"5m\".", key)
    at.check(lambda v: whole_seconds(v, f"`{key}` duration", at_most=MAX_DURATION), value, key)
    return value.strip()


# ---- sync -----------------------------------------------------------------------------------------


@dataclass
class SyncReport:
    added: list[int] = field(default_factory=list)
    disabled: list[int] = field(default_factory=list)
    kept: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.disabled)


def sync_rules(registry: Registry, config: AlertConfig, now: datetime) -> SyncReport:
    """Make the enabled `config` rules in the table equal the file's rules; touch nothing else.

    A changed rule is a different rule: the old row is disabled (its states go with it) and a
    new one added, each audited with the file as the actor. Rules of models that are not
    registered yet are skipped with a log line and picked up by a later cycle.
    """
    report = SyncReport()
    wanted = {rule.identity(): rule for rule in config.rules}
    rules = AlertRules(registry)
    existing: dict[tuple[Any, ...], int] = {}
    duplicates: list[int] = []
    for stored in rules.list(origin=CONFIG_ORIGIN):
        assert stored.id is not None
        if stored.identity() in existing:
            duplicates.append(stored.id)  # two replicas synced at once: keep one
        else:
            existing[stored.identity()] = stored.id
    for identity, rule_id in existing.items():
        if identity not in wanted:
            rules.retire(rule_id, actor=CONFIG_ACTOR, now=now)
            report.disabled.append(rule_id)
        else:
            report.kept += 1
    for rule_id in duplicates:
        rules.retire(rule_id, actor=CONFIG_ACTOR, now=now)
        report.disabled.append(rule_id)
    for identity, rule in wanted.items():
        if identity in existing:
            continue
        try:
            stored = rules.add(rule, actor=CONFIG_ACTOR, now=now)
        except (NotFound, InvalidInput) as exc:
            report.skipped.append(f"{rule.model}@{rule.environment} {rule.metric}: {exc.message}")
            continue
        assert stored.id is not None
        report.added.append(stored.id)
    if report.changed:
        log.info("alert rules from modelbot.toml: added %s, disabled %s, unchanged %d", report.added or "none",
                 report.disabled or "none", report.kept)
    for line in report.skipped:
        log.warning("alert rule from modelbot.toml not stored yet: %s", line)
    return report


# ---- where in the file ----------------------------------------------------------------------------


class _At:
    """One [[alerts.rules]] entry: errors say which one, at the line of the key."""

    def __init__(self, file: PolicyFile | None, index: int) -> None:
        self.file = file
        self.index = index

    def error(self, message: str, key: str | None = None) -> ConfigError:
        path: KeyPath = ("alerts", "rules", self.index, key) if key else ("alerts", "rules", self.index)
        return config_error(self.file, f"[[alerts.rules]] #{self.index + 1}: {message}", path, "[[alerts.rules]]")

    def check(self, parse: Any, value: Any, key: str) -> None:
        """`parse(value)`, its InvalidInput turned into an error at `key`'s line."""
        try:
            parse(value)
        except InvalidInput as exc:
            raise self.error(exc.message, key) from None
