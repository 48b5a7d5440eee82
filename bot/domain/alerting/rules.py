"""Alert rules: validation and storage. Bad input changes nothing and says what to type."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from bot.domain import names
from bot.domain.entities import as_utc, iso
from bot.domain.errors import InvalidInput, NotFound
from bot.domain.registry import Registry
from storage.models import AlertRule, AlertState, RegisteredModel

OPS = ("<", "<=", ">", ">=", "==", "!=")
SEVERITIES = ("warning", "critical")
TARGETS = ("stable", "canary", "both")
NO_DATA = ("keep", "alert", "ok")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PREVIOUS = re.compile(r"^previous(?:\.([A-Za-z_][A-Za-z0-9_.:/-]*))?(?:([-+])(\d+(?:\.\d+)?))?$")
_CHANNEL = re.compile(r"^(?:<#([CG][A-Z0-9]+)(?:\|[^>]*)?>|#?([CG][A-Z0-9]{2,}))$")
MAX_RULES_PER_MODEL = 500


def parse_duration(text: str, what: str = "duration") -> int:
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise InvalidInput(f"'{names.preview(text)}' is not a {what}: write a number and a unit, like 5m, 1h or 7d.")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds > 90 * 86400:
        raise InvalidInput(f"A {what} of more than 90 days is not useful here.")
    return int(seconds)


def parse_threshold(text: str) -> tuple[str, float]:
    """`0.8` → constant 0.8; `previous-0.02` → the previous version's value minus 0.02."""
    raw = text.strip().replace(" ", "")
    match = _PREVIOUS.match(raw)
    if match:
        offset = float(match.group(3) or 0.0) * (-1 if match.group(2) == "-" else 1)
        return "previous", offset
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"'{names.preview(text)}' is not a threshold: write a number like 0.85, or previous-0.02 "
                           "to compare with the previous version.") from None
    if not math.isfinite(value):
        raise InvalidInput(f"The threshold must be a finite number, not {names.preview(text)}.")
    return "constant", value


def parse_channel(text: str) -> str:
    match = _CHANNEL.match(text.strip())
    if not match:
        raise InvalidInput(f"'{names.preview(text)}' is not a channel: pick one with # in Slack, or write its id "
                           "like C0123ABCD.")
    return match.group(1) or match.group(2)


@dataclass(frozen=True)
class RuleSpec:
    """A rule as typed, before validation against the registry."""

    model: str
    environment: str
    metric: str
    kind: str = "threshold"
    op: str = ">"
    threshold: str = "0"
    for_: str | None = None
    keep_firing_for: str | None = None
    severity: str = "warning"
    channel: str | None = None
    target: str = "stable"
    no_data: str = "keep"
    anomaly_k: float = 4.0
    anomaly_window: str = "7d"
    failure_limit: int = 3
    name: str | None = None


@dataclass(frozen=True)
class RuleView:
    id: int
    model: str
    environment: str
    metric: str
    kind: str
    op: str
    threshold: float | None
    baseline: str
    for_seconds: int
    keep_firing_for_seconds: int
    severity: str
    channel: str | None
    target: str
    no_data: str
    anomaly_k: float
    anomaly_window_seconds: int
    failure_limit: int
    created_by: str
    created_at: datetime
    origin: str

    def describe(self) -> str:
        if self.kind == "anomaly":
            what = f"{self.metric} anomalous (k {self.anomaly_k:g}, window {_human(self.anomaly_window_seconds)})"
        elif self.baseline == "previous":
            offset = self.threshold or 0.0
            what = f"{self.metric} {self.op} previous{'' if offset == 0 else f'{offset:+g}'}"
        else:
            what = f"{self.metric} {self.op} {self.threshold:g}"
        extra = f" for {_human(self.for_seconds)}" if self.for_seconds else ""
        return f"{what}{extra}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "model": self.model, "environment": self.environment, "metric": self.metric,
            "kind": self.kind, "op": self.op, "threshold": self.threshold, "baseline": self.baseline,
            "for_seconds": self.for_seconds, "keep_firing_for_seconds": self.keep_firing_for_seconds,
            "severity": self.severity, "channel": self.channel, "target": self.target, "no_data": self.no_data,
            "anomaly_k": self.anomaly_k, "anomaly_window_seconds": self.anomaly_window_seconds,
            "failure_limit": self.failure_limit, "created_by": self.created_by, "created_at": iso(self.created_at),
            "origin": self.origin, "description": self.describe(),
        }


def _human(seconds: int) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class AlertRules:
    def __init__(self, registry: Registry, *, known_metrics: frozenset[str] | None = None) -> None:
        self.registry = registry
        self.known_metrics = known_metrics

    def add(self, spec: RuleSpec, *, actor: str, now: datetime, origin: str = "slack") -> RuleView:
        actor = names.actor(actor)
        env = names.environment(spec.environment, self.registry.environments)
        names.key(spec.metric, "metric")
        if spec.kind not in ("threshold", "anomaly"):
            raise InvalidInput("A rule is a threshold (METRIC OP THRESHOLD) or `anomalous`.")
        if spec.op not in OPS:
            raise InvalidInput(f"'{names.preview(spec.op)}' is not a comparison: use one of {' '.join(OPS)}.")
        baseline, threshold = ("constant", None) if spec.kind == "anomaly" else parse_threshold(spec.threshold)
        for_seconds = parse_duration(spec.for_, "`for` duration") if spec.for_ else 0
        keep = parse_duration(spec.keep_firing_for, "keep_firing_for duration") if spec.keep_firing_for else 0
        if spec.severity not in SEVERITIES:
            raise InvalidInput(f"Severity is warning or critical, not '{names.preview(spec.severity)}'.")
        if spec.target not in TARGETS:
            raise InvalidInput("A rule watches the stable version, the canary, or both.")
        if spec.no_data not in NO_DATA:
            raise InvalidInput("no-data is keep, alert or ok.")
        channel = parse_channel(spec.channel) if spec.channel else None
        if not (math.isfinite(spec.anomaly_k) and 0 < spec.anomaly_k <= 100):
            raise InvalidInput("k must be a number between 0 and 100, like 4.")
        window = parse_duration(spec.anomaly_window, "window")
        if spec.kind == "anomaly" and window < 3600:
            raise InvalidInput("An anomaly window shorter than 1h has no baseline to speak of: use for example 7d.")
        if not 1 <= spec.failure_limit <= 100:
            raise InvalidInput("failure-limit must be between 1 and 100.")
        if self.known_metrics is not None and spec.metric not in self.known_metrics:
            raise InvalidInput(f"No source reports a metric named {names.preview(spec.metric)}: known metrics are "
                               f"{', '.join(sorted(self.known_metrics)[:20])}.")
        with self.registry.writing() as session:
            model = self.registry.model_row(session, spec.model)
            count = len(session.exec(select(AlertRule.id).where(AlertRule.model_id == model.id)).all())
            if count >= MAX_RULES_PER_MODEL:
                raise InvalidInput(f"{model.name} already has {count} rules; remove some first.")
            row = AlertRule(
                name=names.short(spec.name, "rule name", 128), model_id=model.id, environment=env,  # type: ignore[arg-type]
                metric=spec.metric, kind=spec.kind, op=spec.op if spec.kind == "threshold" else ">",
                threshold=threshold, baseline=baseline, for_seconds=for_seconds, keep_firing_for_seconds=keep,
                severity=spec.severity, channel=channel, target=spec.target, no_data=spec.no_data,
                anomaly_k=spec.anomaly_k, anomaly_window_seconds=window, failure_limit=spec.failure_limit,
                origin=origin, created_by=actor, created_at=now,
            )
            session.add(row)
            session.flush()
            return _view(row, model.name)

    def remove(self, rule_id: int | str) -> RuleView:
        number = _rule_number(rule_id)
        with self.registry.writing() as session:
            row = session.get(AlertRule, number)
            if row is None:
                raise NotFound(f"There is no alert rule {number}: `/model alert list` shows them.")
            model = session.get(RegisteredModel, row.model_id)
            view = _view(row, model.name if model else "?")
            for state in session.exec(select(AlertState).where(AlertState.rule_id == number)).all():
                session.delete(state)
            session.flush()
            row.enabled = False
            session.add(row)
            return view

    def list(self, model: str | None = None) -> list[RuleView]:
        with self.registry.reading() as session:
            query = select(AlertRule, RegisteredModel.name).join(
                RegisteredModel, RegisteredModel.id == AlertRule.model_id  # type: ignore[arg-type]
            ).where(AlertRule.enabled == True)  # noqa: E712
            if model is not None:
                query = query.where(AlertRule.model_id == self.registry.model_row(session, model).id)
            return [_view(r, n) for r, n in session.exec(query.order_by(col(AlertRule.id))).all()]


def _rule_number(raw: int | str) -> int:
    text = str(raw).strip().lstrip("#")
    if not text.isdigit() or len(text) > 12:
        raise InvalidInput(f"'{names.preview(str(raw))}' is not a rule id: use the number from `/model alert list`.")
    return int(text)


def _view(row: AlertRule, model: str) -> RuleView:
    return RuleView(
        id=row.id or 0, model=model, environment=row.environment, metric=row.metric, kind=row.kind, op=row.op,
        threshold=row.threshold, baseline=row.baseline, for_seconds=row.for_seconds,
        keep_firing_for_seconds=row.keep_firing_for_seconds, severity=row.severity, channel=row.channel,
        target=row.target, no_data=row.no_data, anomaly_k=row.anomaly_k,
        anomaly_window_seconds=row.anomaly_window_seconds, failure_limit=row.failure_limit,
        created_by=row.created_by, created_at=as_utc(row.created_at), origin=row.origin,
    )



