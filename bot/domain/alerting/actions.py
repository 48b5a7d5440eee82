"""What people do to alerts: acknowledge, silence, end a silence, roll back from a card, keep an
inconclusive canary — each one decision, the same whether it comes from a card's button, a
`/model` command, the CLI or the REST API. Evaluation is never affected.

Who may act: deployers and admins, the people the policy trusts with what serves (user groups
are resolved before any transaction opens). Everyone may read what fires and what is silenced.
A decision writes one audit row in its transaction (subject `alert N`, `silence N`); a refusal
(`Forbidden`, `Conflict`) writes its own row (bot/domain/audit.py). Acknowledging twice is not
a second decision: it changes nothing and says who was first.

A card is never edited by the door that acted on it: the decision writes the card's update to
the outbox in its own transaction (acknowledged by, silenced until), so the card has one writer
and a retried delivery cannot show an older state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from bot.domain import audit, names
from bot.domain.alerting.notify import card_data, card_key, silenced, topic
from bot.domain.alerting.rules import require_deployer
from bot.domain.durations import parse_duration
from bot.domain.entities import as_utc, iso
from bot.domain.errors import Conflict, InvalidInput, NotFound
from bot.domain.policy import GroupResolver, Policy, no_groups
from bot.domain.registry import Registry
from storage.models import AlertGroup, Silence
from storage.queries import alerting as queries
from storage.queries import outbox

if TYPE_CHECKING:
    from bot.domain.deployments import Deployments
    from bot.domain.deployments.views import RequestOutcome

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


@dataclass(frozen=True)
class Acknowledged:
    group_id: int
    by: str
    at: datetime
    already: bool  # someone had acknowledged it before: nothing changed

    def to_dict(self) -> dict[str, Any]:
        return {"alert": self.group_id, "acknowledged_by": self.by, "acknowledged_at": iso(self.at),
                "already": self.already}


@dataclass(frozen=True)
class CardTarget:
    """What an alert card is about."""

    group_id: int
    model: str
    environment: str


class AlertActions:
    def __init__(self, registry: Registry, policy: Policy | None = None, groups: GroupResolver = no_groups) -> None:
        self.registry = registry
        self.policy = policy
        self.groups = groups

    # ---- decisions --------------------------------------------------------------------------------

    def acknowledge(self, group_id: int, *, actor: str, now: datetime) -> Acknowledged:
        actor = names.actor(actor)
        target = self.card(group_id)
        with audit.refusals(self.registry, actor=actor, action="alert_ack", model=target.model,
                            environment=target.environment, subject=f"alert {group_id}"):
            self._may_act(actor, "acknowledge alerts")
            with self.registry.writing() as session:
                group = queries.group(session, group_id, lock=True)
                assert group is not None  # groups are never deleted
                if group.status != "open":
                    raise Conflict(f"Alert #{group_id} resolved at {iso(group.resolved_at)}; nothing to acknowledge.")
                if group.acknowledged_by:
                    return Acknowledged(group_id, group.acknowledged_by, as_utc(group.acknowledged_at), True)
                group.acknowledged_by, group.acknowledged_at = actor, now
                session.add(group)
                session.flush()
                self._refresh_card(session, group, now)
                audit.record(session, at=now, actor=actor, action="alert_ack", model_id=group.model_id,
                             environment=group.environment, subject=f"alert {group_id}")
                return Acknowledged(group_id, actor, now, False)

    def silence(
        self, model: str, environment: str | None, duration: timedelta | str, *, actor: str, now: datetime,
        rule_id: int | None = None, reason: str | None = None,
    ) -> SilenceView:
        """Mute notifications of a model (in one environment, or of one rule) for `duration` (`2h`, `1d`)."""
        actor = names.actor(actor)
        reason = names.text(reason, "reason", 1000)
        names.model_name(model)
        env = names.environment(environment, self.registry.environments) if environment else None
        if isinstance(duration, str):
            duration = parse_duration(duration, "silence duration")
        if duration <= timedelta(0):
            raise InvalidInput("A silence needs a positive duration, like 1h or 1d.")
        if duration > MAX_SILENCE:
            raise InvalidInput("Silences last at most 30 days: fix the rule instead of muting it for longer.")
        with audit.refusals(self.registry, actor=actor, action="alert_silence", model=model, environment=env,
                            subject=f"rule {rule_id}" if rule_id else None):
            self._may_act(actor, "silence alerts")
            with self.registry.writing() as session:
                row = self.registry.model_row(session, model)
                assert row.id is not None
                if rule_id is not None and not queries.rule_exists(session, rule_id):
                    raise NotFound(f"There is no alert rule {rule_id}.")
                silence = queries.add(session, Silence(
                    model_id=row.id, environment=env, rule_id=rule_id, starts_at=now, ends_at=now + duration,
                    created_by=actor, reason=reason))
                group = queries.open_group(session, row.id, env)
                if group is not None:
                    self._refresh_card(session, group, now, extra=[silence])
                audit.record(session, at=now, actor=actor, action="alert_silence", model_id=row.id, environment=env,
                             subject=f"silence {silence.id}", reason=reason or f"until {iso(silence.ends_at)}")
                return _silence_view(silence, row.name)

    def unsilence(self, silence_id: int, *, actor: str, now: datetime) -> SilenceView:
        """End a silence now; notifications resume at the next evaluation."""
        actor = names.actor(actor)
        before = self._silence(silence_id)
        with audit.refusals(self.registry, actor=actor, action="alert_unsilence", model=before.model,
                            environment=before.environment, subject=f"silence {silence_id}"):
            self._may_act(actor, "end silences")
            with self.registry.writing() as session:
                silence = queries.silence(session, silence_id, lock=True)
                assert silence is not None  # silences are never deleted
                if as_utc(silence.ends_at) <= now:
                    raise Conflict("That silence has already ended; `/model silences` lists the active ones.")
                silence.ends_at = now
                session.add(silence)
                audit.record(session, at=now, actor=actor, action="alert_unsilence", model_id=silence.model_id,
                             environment=silence.environment, subject=f"silence {silence_id}")
                return _silence_view(silence, before.model)

    def roll_back(
        self, group_id: int, deployments: Deployments, *, expected: int, to: int | str, actor: str,
        origin_channel: str | None = None,
    ) -> RequestOutcome:
        """Roll back exactly what the card showed (v`expected` → `to`), or say what changed in between.
        The deployments domain decides the rest (role, rollback approvals) and audits it."""
        actor = names.actor(actor)
        target = self.card(group_id)
        state = self.registry.environment_state(target.model, target.environment)
        with audit.refusals(self.registry, actor=actor, action="alert_rollback", model=target.model,
                            environment=target.environment, subject=f"alert {group_id}"):
            if state.stable != expected:
                raise Conflict(f"{state.model} {state.environment} changed since the alert: it serves "
                               f"{'v' + str(state.stable) if state.stable else 'nothing'} now, not v{expected}. "
                               "Nothing was rolled back.")
        return deployments.rollback(target.model, target.environment, actor=actor, to=str(to),
                                    reason=f"from alert #{group_id}", origin_channel=origin_channel)

    def keep_canary(self, model: str, environment: str, *, actor: str, now: datetime) -> str:
        """The answer to "the canary's analysis is inconclusive": keep it running (recorded)."""
        actor = names.actor(actor)
        state = self.registry.environment_state(model, environment)
        with audit.refusals(self.registry, actor=actor, action="canary_keep", model=state.model,
                            environment=state.environment):
            self._may_act(actor, "decide about canaries")
            if state.canary is None:
                raise Conflict(f"No canary is running for {state.model} in {state.environment} any more; nothing "
                               "changed.")
            with self.registry.writing() as session:
                row = self.registry.model_row(session, state.model)
                audit.record(session, at=now, actor=actor, action="canary_keep", model_id=row.id,
                             environment=state.environment, reason=f"v{state.canary} kept at {state.canary_weight} %")
        return state.model

    # ---- reads ------------------------------------------------------------------------------------

    def card(self, group_id: int) -> CardTarget:
        """What an alert card is about; NotFound when it no longer exists."""
        with self.registry.reading() as session:
            row = queries.group_target(session, group_id)
        if row is None:
            raise NotFound(f"There is no alert {group_id}; `/model alerts` shows what fires now.")
        return CardTarget(int(row[0]), str(row[1]), str(row[2]))

    def _silence(self, silence_id: int) -> SilenceView:
        with self.registry.reading() as session:
            silence = queries.silence(session, silence_id)
            if silence is None:
                raise NotFound(f"There is no silence {silence_id}: `/model silences` lists them.")
            return _silence_view(silence, queries.model_name(session, silence.model_id) or "?")

    def silences(self, now: datetime, model: str | None = None) -> list[SilenceView]:
        with self.registry.reading() as session:
            model_id = self.registry.model_row(session, model).id if model is not None else None
            return [_silence_view(s, n) for s, n in queries.silences_listing(session, now, model_id)]

    def overview(self, now: datetime, model: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """What is firing, pending and silenced now (for `/model alerts` and `/model status`)."""
        with self.registry.reading() as session:
            model_id = self.registry.model_row(session, model).id if model is not None else None
            rows = queries.active_states(session, model_id)
            silences = queries.silences_active(session, now)
            out: dict[str, list[dict[str, Any]]] = {"firing": [], "pending": [], "silenced": []}
            for state, rule, name in rows:
                entry = {"alert": state.group_id, "model": name, "environment": rule.environment,
                         "rule_id": rule.id, "metric": rule.metric,
                         "op": rule.op, "threshold": state.last_threshold, "value": state.last_value,
                         "severity": rule.severity, "series": state.series,
                         "since": iso(state.firing_since or state.active_since), "no_data": state.no_data}
                if state.state == "firing" and silenced(rule, silences, now):
                    out["silenced"].append(entry)
                else:
                    out[state.state].append(entry)
            return out

    # ---- helpers ----------------------------------------------------------------------------------

    def _may_act(self, actor: str, what: str) -> None:
        require_deployer(self.policy, self.groups, actor, what)

    def _refresh_card(self, session: Session, group: AlertGroup, now: datetime,
                      extra: list[Silence] | None = None) -> None:
        """Edit the card in place (through the outbox) when someone acts on it."""
        if group.first_notified_at is None or group.id is None:
            return
        members = queries.rules_with_states(session, group.model_id, group.environment)
        silences = queries.silences_active(session, now, [group.model_id]) + (extra or [])
        names_by_id = queries.models_by_ids(session, [group.model_id])
        dep = queries.deployment(session, group.model_id, group.environment)
        data = card_data(group, names_by_id[group.model_id], group.environment, list(members), silences, dep, now)
        outbox.enqueue(session, now=now, topic=topic(group.model_id, group.environment), kind="update",
                       template="alert_card", data=data, message_key=card_key(group.id))


def _silence_view(s: Silence, model: str) -> SilenceView:
    return SilenceView(id=s.id or 0, model=model, environment=s.environment, rule_id=s.rule_id,
                       starts_at=as_utc(s.starts_at), ends_at=as_utc(s.ends_at), created_by=s.created_by,
                       reason=s.reason)
