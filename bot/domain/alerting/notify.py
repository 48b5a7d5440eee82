"""From firing series to notifications: grouping, silences, inhibition, repeat and resolve.

One incident per model and environment is one Slack card (Alertmanager `group_by`). The first
notification waits `group_wait` so alerts that fire together arrive together, and an alert
that resolves within it sends nothing; a changed set of alerts is announced at most every
`group_interval`; an unchanged one is repeated every `repeat_interval`; when everything has
resolved the card is edited and a reply says how long it lasted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from bot.domain.entities import as_utc, iso
from storage.models import AlertGroup, AlertRule, AlertState, Deployment, RegisteredModel, Silence
from storage.queries import alerting as queries
from storage.queries import outbox

if TYPE_CHECKING:
    from bot.domain.alerting.engine import AlertSettings


def topic(model_id: int, environment: str) -> str:
    return f"alerts:{model_id}:{environment}"


def card_key(group_id: int) -> str:
    return f"alertgroup:{group_id}"


def update_groups(
    session: Session,
    touched: Iterable[tuple[Any, Any, str | None]],
    models: dict[int | None, RegisteredModel],
    deployments: dict[tuple[int, str], Deployment],
    settings: AlertSettings,
    now: datetime,
    *,
    inconclusive: Iterable[str] = (),
) -> int:
    by_group: dict[tuple[int, str], list[tuple[AlertRule, AlertState]]] = {}
    for rule, state, _ in touched:
        by_group.setdefault((rule.model_id, rule.environment), []).append((rule, state))
    open_groups = queries.open_groups(session, {m for m, _ in by_group})
    silences = queries.silences_active(session, now, {m for m, _ in by_group})
    sent = 0
    for (model_id, env), members in by_group.items():
        firing = [(r, s) for r, s in members if s.state == "firing"]
        group = open_groups.get((model_id, env))
        if group is None and not firing:
            continue
        model = models[model_id]
        if group is None:
            group = queries.add(session, AlertGroup(model_id=model_id, environment=env, opened_at=now,
                                                    channel=_channel(firing, settings)))
        for _, state in members:
            if state.state == "firing" and state.group_id != group.id:
                state.group_id = group.id
                if hasattr(state, "dirty"):
                    state.dirty = True  # written back by the engine with the other states
                else:
                    session.add(state)
        sent += _notify(session, group, model, env, members, firing, silences, deployments.get((model_id, env)),
                        settings, now)
    for label in inconclusive:
        sent += _inconclusive(session, label, models, settings, now)
    return sent


def _notify(
    session: Session, group: AlertGroup, model: RegisteredModel, env: str,
    members: list[tuple[AlertRule, AlertState]], firing: list[tuple[AlertRule, AlertState]],
    silences: list[Silence], dep: Deployment | None, settings: AlertSettings, now: datetime,
) -> int:
    assert group.id is not None and model.id is not None
    if not firing:
        group.status, group.resolved_at = "resolved", now
        session.add(group)
        if group.first_notified_at is None:
            return 0  # resolved within group_wait: Alertmanager sends nothing either
        data = card_data(group, model, env, members, silences, dep, now)
        outbox.enqueue(session, now=now, topic=topic(model.id, env), kind="update", template="alert_card",
                       data=data, message_key=card_key(group.id))
        outbox.enqueue(session, now=now, topic=topic(model.id, env), kind="thread", template="alert_resolved",
                       data=data, message_key=card_key(group.id))
        return 2
    notifiable = notifiable_alerts(firing, silences, now)
    fingerprint = ",".join(sorted(f"{r.id}:{s.series}" for r, s in notifiable))[:200]
    if not notifiable or group.channel is None:
        return 0
    opened = as_utc(group.opened_at)
    if group.first_notified_at is None:
        if now - opened < settings.group_wait:
            return 0
        data = card_data(group, model, env, members, silences, dep, now)
        outbox.enqueue(session, now=now, topic=topic(model.id, env), kind="post", template="alert_card", data=data,
                       channel=group.channel, message_key=card_key(group.id))
        group.first_notified_at = group.last_notified_at = now
        group.notified_fingerprint = fingerprint
        session.add(group)
        return 1
    last = as_utc(group.last_notified_at or group.first_notified_at)
    if fingerprint != group.notified_fingerprint:
        if now - last < settings.group_interval:
            return 0
        template = "alert_changed"
    elif now - last >= settings.repeat_interval:
        template = "alert_repeat"
    else:
        return 0
    data = card_data(group, model, env, members, silences, dep, now)
    outbox.enqueue(session, now=now, topic=topic(model.id, env), kind="update", template="alert_card", data=data,
                   message_key=card_key(group.id))
    outbox.enqueue(session, now=now, topic=topic(model.id, env), kind="thread", template=template, data=data,
                   message_key=card_key(group.id))
    group.last_notified_at, group.notified_fingerprint = now, fingerprint
    session.add(group)
    return 2


def notifiable_alerts(
    firing: list[tuple[AlertRule, AlertState]], silences: list[Silence], now: datetime
) -> list[tuple[AlertRule, AlertState]]:
    """Firing alerts minus silenced ones, minus warnings inhibited by a firing critical."""
    critical = any(r.severity == "critical" for r, _ in firing)
    return [
        (r, s) for r, s in firing
        if not silenced(r, silences, now) and not (critical and r.severity == "warning")
    ]


def silenced(rule: AlertRule, silences: list[Silence], now: datetime) -> Silence | None:
    for s in silences:
        if (s.model_id == rule.model_id and (s.environment is None or s.environment == rule.environment)
                and (s.rule_id is None or s.rule_id == rule.id)
                and as_utc(s.starts_at) <= now < as_utc(s.ends_at)):
            return s
    return None


def card_data(
    group: AlertGroup, model: RegisteredModel, env: str, members: list[tuple[AlertRule, AlertState]],
    silences: list[Silence], dep: Deployment | None, now: datetime,
) -> dict[str, Any]:
    firing = [(r, s) for r, s in members if s.state == "firing"]
    notifiable = {(r.id, s.series) for r, s in notifiable_alerts(firing, silences, now)}
    alerts = []
    for rule, state in members:
        if state.state == "inactive" and not (group.status == "resolved" and state.group_id == group.id):
            continue
        silence = silenced(rule, silences, now)
        alerts.append({
            "rule_id": rule.id, "metric": rule.metric, "op": rule.op, "kind": rule.kind, "baseline": rule.baseline,
            "severity": rule.severity, "series": state.series, "state": state.state, "value": state.last_value,
            "threshold": state.last_threshold, "since": iso(state.firing_since or state.active_since),
            "version": state.version, "no_data": state.no_data,
            "silenced_until": iso(silence.ends_at) if silence else None,
            "inhibited": state.state == "firing" and (rule.id, state.series) not in notifiable and silence is None,
        })
    opened = as_utc(group.opened_at)
    return {
        "group_id": group.id, "model": model.name, "environment": env, "status": group.status,
        "opened_at": iso(opened), "resolved_at": iso(group.resolved_at),
        "duration_seconds": int(((group.resolved_at and as_utc(group.resolved_at)) or now).timestamp()
                                - opened.timestamp()),
        "acknowledged_by": group.acknowledged_by, "acknowledged_at": iso(group.acknowledged_at),
        "stable": dep.stable_version if dep else None, "previous": dep.previous_version if dep else None,
        "canary": dep.canary_version if dep else None, "canary_weight": dep.canary_weight if dep else 0,
        "alerts": alerts,
    }


def _channel(firing: list[tuple[AlertRule, AlertState]], settings: AlertSettings) -> str | None:
    ordered = sorted(firing, key=lambda rs: (rs[0].severity != "critical", rs[0].id))
    for rule, _ in ordered:
        if rule.channel:
            return rule.channel
    return settings.default_channel


def _inconclusive(
    session: Session, label: str, models: dict[int | None, RegisteredModel], settings: AlertSettings, now: datetime
) -> int:
    name, _, env = label.partition("@")
    model = next((m for m in models.values() if m.name == name), None)
    if model is None or model.id is None:
        return 0
    channel = queries.canary_rule_channel(session, model.id, env) or settings.default_channel
    if channel is None:
        return 0
    outbox.enqueue(session, now=now, topic=topic(model.id, env), kind="post", template="canary_inconclusive",
                   data={"model": name, "environment": env, "at": iso(now)}, channel=channel)
    return 1
