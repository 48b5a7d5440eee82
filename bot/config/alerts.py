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

Why the file is checked here and not only when rules are stored: `load_policy` calls
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
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import select

from bot.config.settings import ConfigError
from bot.config.toml_file import PolicyFile
from bot.domain import names
from bot.domain.alerting.engine import AlertSettings
from bot.domain.alerting.rules import (
    NO_DATA,
    OPS,
    SEVERITIES,
    TARGETS,
    AlertRules,
    RuleSpec,
    parse_coverage,
    parse_duration,
    parse_threshold,
)
from bot.domain.errors import InvalidInput, NotFound
from bot.domain.policy import Policy
from bot.domain.registry import Registry
from storage.models import AlertRule, RegisteredModel

log = logging.getLogger("modelbot.alerts")

SETTINGS_KEYS = {"channel", "group_wait", "group_interval", "repeat_interval", "evaluation_interval", "charts",
                 "rules"}
RULE_KEYS = {"name", "model", "environment", "metric", "op", "threshold", "anomalous", "k", "window", "for",
             "severity", "channel", "target", "no_data", "keep_firing_for", "failure_limit", "min_coverage"}
DEFAULT_ENVIRONMENT = "production"
CONFIG_ACTOR = "modelbot.toml"
MIN_EVALUATION_INTERVAL = timedelta(seconds=10)
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{6,}$")
_RULE_HEADER = re.compile(r"^\s*\[\[\s*alerts\s*\.\s*rules\s*\]\]\s*(#.*)?$")
_ANY_HEADER = re.compile(r"^\s*\[")


@dataclass(frozen=True)
class AlertConfig:
    settings: AlertSettings = field(default_factory=AlertSettings)
    rules: tuple[RuleSpec, ...] = ()
    charts: bool = True


def alert_config(policy: Policy) -> AlertConfig:
    """The alert settings and rules of an already loaded (so already validated) policy."""
    return parse_alerts(policy.sections.get("alerts"), None, environments=policy.environment_names)


def parse_alerts(raw: Any, file: PolicyFile | None, *, environments: Sequence[str]) -> AlertConfig:
    """Validate `[alerts]`; a ConfigError names the file and the line of the offending key."""
    if raw is None:
        return AlertConfig()
    where = _Locator(file)
    if not isinstance(raw, dict):
        raise where.settings_error("[alerts] must be a table.", None)
    for key in raw:
        if key not in SETTINGS_KEYS:
            raise where.settings_error(f"unknown key '{key}' in [alerts]; known: {', '.join(sorted(SETTINGS_KEYS))}.",
                                       key)
    channel = raw.get("channel")
    if channel is not None and (not isinstance(channel, str) or not _CHANNEL_ID.match(channel)):
        raise where.settings_error("channel must be a Slack channel id like \"C0123ABCD\" (open the channel's "
                                   "details to copy it).", "channel")
    defaults = AlertSettings()
    durations = {}
    for key in ("group_wait", "group_interval", "repeat_interval", "evaluation_interval"):
        durations[key] = _duration(raw, key, getattr(defaults, key), where.settings_error)
    if durations["evaluation_interval"] < MIN_EVALUATION_INTERVAL:
        raise where.settings_error("evaluation_interval must be at least 10s; every cycle reads every rule.",
                                   "evaluation_interval")
    charts = raw.get("charts", True)
    if not isinstance(charts, bool):
        raise where.settings_error("charts must be true or false.", "charts")
    rules_raw = raw.get("rules", [])
    if not isinstance(rules_raw, list):
        raise where.settings_error("rules must be a list of [[alerts.rules]] tables.", "rules")
    rules: list[RuleSpec] = []
    seen: dict[tuple[Any, ...], int] = {}
    for index, table in enumerate(rules_raw):
        at = _At(where, index)
        if not isinstance(table, dict):
            raise at.error("each [[alerts.rules]] entry must be a table with model, metric, op and threshold.")
        spec = _rule(table, at, tuple(environments))
        identity = fingerprint(spec)
        if identity in seen:
            raise at.error(f"this rule repeats [[alerts.rules]] #{seen[identity] + 1}; remove one of them.")
        seen[identity] = index
        rules.append(spec)
    settings = AlertSettings(default_channel=channel, **durations)
    return AlertConfig(settings=settings, rules=tuple(rules), charts=charts)


def _rule(table: dict[str, Any], at: _At, environments: tuple[str, ...]) -> RuleSpec:
    for key in table:
        if key not in RULE_KEYS:
            raise at.error(f"unknown key '{key}'; known: {', '.join(sorted(RULE_KEYS))}.", key)
    model = _string(table, "model", at, required=True)
    assert model is not None
    try:
        names.model_name(model)
    except InvalidInput as exc:
        raise at.error(exc.message, "model") from None
    environment = _string(table, "environment", at) or DEFAULT_ENVIRONMENT
    if environment not in environments:
        raise at.error(f"environment \"{environment}\" is not in the policy; use one of {', '.join(environments)}.",
                       "environment")
    metric = _string(table, "metric", at, required=True)
    assert metric is not None
    try:
        names.key(metric, "metric")
    except InvalidInput as exc:
        raise at.error(exc.message, "metric") from None
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
        try:
            parse_threshold(threshold)
        except InvalidInput as exc:
            raise at.error(exc.message, "threshold") from None
    k = table.get("k", 4.0)
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not math.isfinite(k) or not 0 < k <= 100:
        raise at.error("k must be a number between 0 and 100, like 4.", "k")
    window = _duration_text(table, "window", at, "7d")
    if anomalous and parse_duration(window) < 3600:
        raise at.error("an anomaly window shorter than 1h has no baseline to speak of: use for example 7d.", "window")
    for_ = _duration_text(table, "for", at, None)
    keep = _duration_text(table, "keep_firing_for", at, None)
    severity = _choice(table, "severity", SEVERITIES, at, "warning")
    target = _choice(table, "target", TARGETS, at, "stable")
    no_data = _choice(table, "no_data", NO_DATA, at, "keep")
    channel = _string(table, "channel", at)
    if channel is not None and not _CHANNEL_ID.match(channel):
        raise at.error("channel must be a Slack channel id like \"C0123ABCD\" (open the channel's details to copy it).",
                       "channel")
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
    return RuleSpec(
        model=model, environment=environment, metric=metric, kind="anomaly" if anomalous else "threshold", op=op,
        threshold=threshold, for_=for_, keep_firing_for=keep, severity=severity, channel=channel, target=target,
        no_data=no_data, anomaly_k=float(k), anomaly_window=window, failure_limit=limit, name=name,
        min_coverage=coverage,
    )


def _string(table: dict[str, Any], key: str, at: _At, *, required: bool = False) -> str | None:
    value = table.get(key)
    if value is None:
        if required:
            raise at.error(f"missing {key} = \"…\".", None)
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
    try:
        parse_duration(value, f"`{key}` duration")
    except InvalidInput as exc:
        raise at.error(exc.message, key) from None
    return value.strip()


def _duration(raw: dict[str, Any], key: str, default: timedelta, error: Any) -> timedelta:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise error(f"{key} must be a duration in quotes, like \"5m\".", key)
    try:
        return timedelta(seconds=parse_duration(value, key))
    except InvalidInput as exc:
        raise error(exc.message, key) from None


# ---- identity and sync --------------------------------------------------------------------------


def fingerprint(spec: RuleSpec) -> tuple[Any, ...]:
    """What makes two rules the same rule, in the form stored in `alert_rules` (so a row compares)."""
    if spec.kind == "anomaly":
        baseline, threshold, op = "constant", None, ">"
    else:
        baseline, value = parse_threshold(spec.threshold)
        threshold, op = value, spec.op
    return (
        spec.model.lower(), spec.environment, spec.metric, spec.kind, op, baseline, threshold,
        parse_duration(spec.for_) if spec.for_ else 0,
        parse_duration(spec.keep_firing_for) if spec.keep_firing_for else 0,
        spec.severity, spec.channel, spec.target, spec.no_data, float(spec.anomaly_k),
        parse_duration(spec.anomaly_window), spec.failure_limit, spec.name,
        parse_coverage(spec.min_coverage, spec.metric) if spec.min_coverage else None,
    )


def _row_fingerprint(row: AlertRule, model: str) -> tuple[Any, ...]:
    return (
        model.lower(), row.environment, row.metric, row.kind, row.op, row.baseline, row.threshold, row.for_seconds,
        row.keep_firing_for_seconds, row.severity, row.channel, row.target, row.no_data, float(row.anomaly_k),
        row.anomaly_window_seconds, row.failure_limit, row.name, row.min_coverage,
    )


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
    new one added. Rules of models that are not registered yet are skipped with a log line and
    picked up by a later cycle.
    """
    report = SyncReport()
    wanted = {fingerprint(spec): spec for spec in config.rules}
    with registry.reading() as session:
        rows = session.exec(
            select(AlertRule, RegisteredModel.name)
            .join(RegisteredModel, RegisteredModel.id == AlertRule.model_id)  # type: ignore[arg-type]
            .where(AlertRule.origin == "config", AlertRule.enabled == True)  # noqa: E712
        ).all()
    existing: dict[tuple[Any, ...], int] = {}
    duplicates: list[int] = []
    for row, model in rows:
        key = _row_fingerprint(row, model)
        if key in existing:
            duplicates.append(row.id or 0)  # two replicas synced at once: keep one
        else:
            existing[key] = row.id or 0
    rules = AlertRules(registry)
    for key, rule_id in existing.items():
        if key not in wanted:
            rules.remove(rule_id)
            report.disabled.append(rule_id)
        else:
            report.kept += 1
    for rule_id in duplicates:
        rules.remove(rule_id)
        report.disabled.append(rule_id)
    for key, spec in wanted.items():
        if key in existing:
            continue
        try:
            view = rules.add(spec, actor=CONFIG_ACTOR, now=now, origin="config")
        except (NotFound, InvalidInput) as exc:
            report.skipped.append(f"{spec.model}@{spec.environment} {spec.metric}: {exc.message}")
            continue
        report.added.append(view.id)
    if report.changed:
        log.info("alert rules from modelbot.toml: added %s, disabled %s, unchanged %d", report.added or "none",
                 report.disabled or "none", report.kept)
    for line in report.skipped:
        log.warning("alert rule from modelbot.toml not stored yet: %s", line)
    return report


# ---- where in the file ----------------------------------------------------------------------------


class _Locator:
    """Finds the line of a key in `[alerts]` or in the n-th `[[alerts.rules]]` table."""

    def __init__(self, file: PolicyFile | None) -> None:
        self.file = file
        self.headers = [i for i, line in enumerate(file.lines) if _RULE_HEADER.match(line)] if file else []

    def settings_error(self, message: str, key: str | None) -> ConfigError:
        if self.file is None:
            return ConfigError(f"[alerts]: {message}")
        return self.file.error(message, key, "alerts") if key else self.file.error(message, None, "alerts")

    def rule_error(self, message: str, index: int, key: str | None) -> ConfigError:
        if self.file is None:
            return ConfigError(f"[[alerts.rules]]: {message}")
        line = self._rule_line(index, key)
        where = f"{self.file.path}:{line}" if line else str(self.file.path)
        return ConfigError(f"{where}: {message}")

    def _rule_line(self, index: int, key: str | None) -> int | None:
        assert self.file is not None
        if index >= len(self.headers):  # written inline (rules = [{…}]): point at `rules`
            return self.file.line_of("rules", "alerts")
        start = self.headers[index]
        if key:
            pattern = re.compile(r"^\s*\"?" + re.escape(key) + r"\"?\s*=")
            for i in range(start + 1, len(self.file.lines)):
                line = self.file.lines[i]
                if _ANY_HEADER.match(line):
                    break
                if pattern.match(line):
                    return i + 1
        return start + 1


class _At:
    """One [[alerts.rules]] entry: errors say which one."""

    def __init__(self, locator: _Locator, index: int) -> None:
        self.locator = locator
        self.index = index

    def error(self, message: str, key: str | None = None) -> ConfigError:
        return self.locator.rule_error(f"[[alerts.rules]] #{self.index + 1}: {message}", self.index, key)
