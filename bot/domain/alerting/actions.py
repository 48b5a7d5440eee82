"""What people do to alerts: acknowledge, silence, list. Evaluation is never affected."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select

from bot.domain import names
from bot.domain.alerting.notify import card_data, card_key, topic
from bot.domain.entities import as_utc, iso
from bot.domain.errors import Conflict, InvalidInput, NotFound
from bot.domain.registry import Registry
from storage.models import AlertGroup, AlertRule, AlertState, Deployment, RegisteredModel, Silence
from storage.queries import outbox

MAX_SILENCE = timedelta(days=30)


@dataclass(frozen=True)
class SilenceView:
    id: int
    model: str
    environment: str | None
    rule_id: int | None
    starts_at: datetime
    ends_at: datetime
    created_by: str
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.model, "environment": self.environment, "rule_id": self.rule_id,
                "starts_at": iso(self.starts_at), "ends_at": iso(self.ends_at), "created_by": self.created_by,
                "reason": self.reason}


class AlertActions:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def acknowledge(self, group_id: int, actor: str, now: datetime) -> dict[str, Any]:
        actor = names.actor(actor)
        with self.registry.writing() as session:
            group = session.exec(self.registry.db.lock_for_update(
                select(AlertGroup).where(AlertGroup.id == group_id))).first()
            if group is None:
                raise NotFound(f"There is no alert {group_id}.")
            if group.status != "open":
                raise Conflict(f"This alert resolved at {iso(group.resolved_at)}; nothing to acknowledge.")
            if group.acknowledged_by:
                return {"already": True, "by": group.acknowledged_by, "at": iso(group.acknowledged_at)}
            group.acknowledged_by, group.acknowledged_at = actor, now
            session.add(group)
            session.flush()
            self._refresh_card(session, group, now)
            return {"already": False, "by": actor, "at": iso(now)}

    def silence(
        self, model: str, environment: str | None, duration: timedelta, *, actor: str, now: datetime,
        rule_id: int | None = None, reason: str | None = None,
    ) -> SilenceView:
        actor = names.actor(actor)
        reason = names.text(reason, "reason", 1000)
        env = names.environment(environment, self.registry.environments) if environment else None
        if duration <= timedelta(0):
            raise InvalidInput("A silence needs a positive duration, like 1h or 1d.")
        if duration > MAX_SILENCE:
            raise InvalidInput("Silences last at most 30 days: fix the rule instead of muting it for longer.")
        with self.registry.writing() as session:
            row = self.registry.model_row(session, model)
            if rule_id is not None and session.get(AlertRule, rule_id) is None:
                raise NotFound(f"There is no alert rule {rule_id}.")
            silence = Silence(model_id=row.id, environment=env, rule_id=rule_id, starts_at=now,  # type: ignore[arg-type]
                              ends_at=now + duration, created_by=actor, reason=reason)
            session.add(silence)
            session.flush()
            group = session.exec(select(AlertGroup).where(
                AlertGroup.model_id == row.id, AlertGroup.status == "open",
                *( [AlertGroup.environment == env] if env else []))).first()
            if group is not None:
                self._refresh_card(session, group, now, extra=[silence])
            return _silence_view(silence, row.name)

    def expire_silence(self, silence_id: int, *, actor: str, now: datetime) -> SilenceView:
        names.actor(actor)
        with self.registry.writing() as session:
            silence = session.get(Silence, silence_id)
            if silence is None:
                raise NotFound(f"There is no silence {silence_id}: `/model silences` lists them.")
            silence.ends_at = min(as_utc(silence.ends_at), now)
            session.add(silence)
            model = session.get(RegisteredModel, silence.model_id)
            return _silence_view(silence, model.name if model else "?")

    def silences(self, now: datetime, model: str | None = None) -> list[SilenceView]:
        with self.registry.reading() as session:
            query = select(Silence, RegisteredModel.name).join(
                RegisteredModel, RegisteredModel.id == Silence.model_id  # type: ignore[arg-type]
            ).where(col(Silence.ends_at) > now)
            if model is not None:
                query = query.where(Silence.model_id == self.registry.model_row(session, model).id)
            return [_silence_view(s, n) for s, n in session.exec(query.order_by(col(Silence.ends_at))).all()]

    def overview(self, now: datetime, model: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """What is firing, pending and silenced now (for `/model alerts` and `/model status`)."""
        with self.registry.reading() as session:
            query = select(AlertState, AlertRule, RegisteredModel.name).join(
                AlertRule, AlertRule.id == AlertState.rule_id  # type: ignore[arg-type]
            ).join(RegisteredModel, RegisteredModel.id == AlertRule.model_id  # type: ignore[arg-type]
                   ).where(AlertRule.enabled == True, col(AlertState.state).in_(("pending", "firing")))  # noqa: E712
            if model is not None:
                query = query.where(AlertRule.model_id == self.registry.model_row(session, model).id)
            rows = session.exec(query).all()
            silences = list(session.exec(select(Silence).where(col(Silence.ends_at) > now)).all())
            out: dict[str, list[dict[str, Any]]] = {"firing": [], "pending": [], "silenced": []}
            from bot.domain.alerting.notify import silenced

            for state, rule, name in rows:
                entry = {"model": name, "environment": rule.environment, "rule_id": rule.id, "metric": rule.metric,
                         "op": rule.op, "threshold": state.last_threshold, "value": state.last_value,
                         "severity": rule.severity, "series": state.series,
                         "since": iso(state.firing_since or state.active_since), "no_data": state.no_data}
                if state.state == "firing" and silenced(rule, silences, now):
                    out["silenced"].append(entry)
                else:
                    out[state.state].append(entry)
            return out

    def _refresh_card(self, session: Any, group: AlertGroup, now: datetime, extra: list[Silence] | None = None) -> None:
        """Edit the card in place (through the outbox) when someone acts on it."""
        if group.first_notified_at is None or group.id is None:
            return
        model = session.get(RegisteredModel, group.model_id)
        members = session.exec(select(AlertRule, AlertState).join(
            AlertState, AlertState.rule_id == AlertRule.id  # type: ignore[arg-type]
        ).where(AlertRule.model_id == group.model_id, AlertRule.environment == group.environment)).all()
        silences = list(session.exec(select(Silence).where(Silence.model_id == group.model_id,
                                                           col(Silence.ends_at) > now)).all()) + (extra or [])
        dep = session.exec(select(Deployment).where(Deployment.model_id == group.model_id,
                                                    Deployment.environment == group.environment)).first()
        data = card_data(group, model, group.environment, list(members), silences, dep, now)
        outbox.enqueue(session, now=now, topic=topic(group.model_id, group.environment), kind="update",
                       template="alert_card", data=data, message_key=card_key(group.id))


def _silence_view(s: Silence, model: str) -> SilenceView:
    return SilenceView(id=s.id or 0, model=model, environment=s.environment, rule_id=s.rule_id,
                       starts_at=as_utc(s.starts_at), ends_at=as_utc(s.ends_at), created_by=s.created_by,
                       reason=s.reason)
