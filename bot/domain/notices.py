"""Which messages and webhooks a state change causes, written to the outbox in its transaction.

The domain decides *what* is said and *where* (cards in the approval channel, thread replies,
announcements, webhooks); `bot/delivery` decides *how* (rendering, Slack calls, retries).
Rows carry facts as plain JSON; a card update carries the whole card state, so a retried or
late update can only ever show a consistent card.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from bot.domain.entities import AuditEntry, EnvironmentState, PointerMove, iso
from bot.domain.mlflow import outbound as mlflow_aliases
from bot.domain.policy import EnvironmentPolicy, Policy
from storage.queries import outbox
from storage.queries import registry as queries

if TYPE_CHECKING:
    from bot.domain.deployments.views import RequestView

SYSTEM_ACTOR = "modelbot"


def topic(model_id: int) -> str:
    """Messages about one model are delivered in the order they were caused."""
    return f"model:{model_id}"


def request_key(request_id: int) -> str:
    return f"request:{request_id}"


def canary_key(model_id: int, environment: str) -> str:
    return f"canary:{model_id}:{environment}"


def _versions(session: Session, model_id: int, numbers: list[int | None]) -> dict[str, Any]:
    rows = queries.versions(session, model_id, [n for n in numbers if n is not None])
    return {
        str(n): {"version": n, "metrics": dict(r.metrics), "params": dict(r.params), "tags": dict(r.tags),
                 "artifact_uri": r.artifact_uri}
        for n, r in rows.items()
    }


def card_data(session: Session, view: RequestView, model_id: int) -> dict[str, Any]:
    return {"request": view.to_dict(), "versions": _versions(session, model_id, [view.version, view.from_version])}


def request_opened(
    session: Session, env_policy: EnvironmentPolicy, view: RequestView, *, now: datetime, model_id: int,
    origin_channel: str | None,
) -> None:
    if env_policy.approval_channel is None:
        return
    data = card_data(session, view, model_id)
    outbox.enqueue(session, now=now, topic=topic(model_id), kind="post", template="approval_card", data=data,
                   channel=env_policy.approval_channel, message_key=request_key(view.id))
    if view.requester.startswith(("U", "W")) and origin_channel:
        outbox.enqueue(session, now=now, topic=topic(model_id), kind="ephemeral", template="approval_link",
                       data={"request": view.to_dict()}, channel=origin_channel, user_id=view.requester,
                       message_key=request_key(view.id))
    home_refresh(session, view, now=now)


def request_updated(session: Session, view: RequestView, *, now: datetime, model_id: int) -> None:
    """Edit the card in place to show votes, expiry, supersession or the decision."""
    outbox.enqueue(session, now=now, topic=topic(model_id), kind="update", template="approval_card",
                   data=card_data(session, view, model_id), message_key=request_key(view.id))
    home_refresh(session, view, now=now)


def home_refresh(session: Session, view: RequestView, *, now: datetime) -> None:
    """Publish the App Home again for the approvers of the request's environment: their
    "waiting for your approval" list changed. The worker renders each Home at send time from
    the current state, so one pending refresh per environment covers any number of changes."""
    key = f"home:{view.environment}"
    if outbox.newest_is_pending(session, key):
        return
    outbox.enqueue(session, now=now, topic=key, kind="home", template="home_refresh",
                   data={"environment": view.environment, "request": view.id, "model": view.model})


def request_decided(session: Session, view: RequestView, *, now: datetime, model_id: int) -> None:
    outbox.enqueue(session, now=now, topic=topic(model_id), kind="thread", template="request_outcome",
                   data={"request": view.to_dict()}, message_key=request_key(view.id))


def deployment_changed(
    session: Session, policy: Policy, move: PointerMove, *, now: datetime, model_id: int, announce: bool = True
) -> None:
    """Webhooks on every pointer move; an announcement for moves without a card (rollbacks,
    promotions without approvals), because people want to hear about those most."""
    _webhooks(session, policy, "deployment.changed", move.state, move.audit, now=now, model_id=model_id)
    mlflow_aliases.pointer_moved(session, policy, move.state, move.audit, now=now, model_id=model_id)
    channel = _announce_channel(policy, move.state.environment)
    if announce and channel:
        outbox.enqueue(session, now=now, topic=topic(model_id), kind="post", template="deployment_announcement",
                       data={"state": move.state.to_dict(), "audit": move.audit.to_dict()}, channel=channel)


def canary_changed(
    session: Session, policy: Policy, state: EnvironmentState, audit: AuditEntry, *, now: datetime, model_id: int,
    started: bool, previous_weight: int = 0, aborted_version: int | None = None,
) -> None:
    _webhooks(session, policy, "deployment.changed", state, audit, now=now, model_id=model_id)
    _webhooks(session, policy, "canary.changed", state, audit, now=now, model_id=model_id)
    mlflow_aliases.pointer_moved(session, policy, state, audit, now=now, model_id=model_id)
    channel = _announce_channel(policy, state.environment)
    if not channel:
        return
    steps = list(policy.env(state.environment).canary_steps)
    data = {"state": state.to_dict(), "audit": audit.to_dict(), "steps": steps,
            "previous_weight": previous_weight, "aborted_version": aborted_version}
    key = canary_key(model_id, state.environment)
    outbox.enqueue(session, now=now, topic=topic(model_id), kind="post" if started else "update",
                   template="canary_card", data=data, channel=channel, message_key=key)
    if not started:
        outbox.enqueue(session, now=now, topic=topic(model_id), kind="thread", template="canary_step",
                       data=data, message_key=key)


def _announce_channel(policy: Policy, environment: str) -> str | None:
    return policy.env(environment).approval_channel or policy.announce_channel


def _webhooks(
    session: Session, policy: Policy, event: str, state: EnvironmentState, audit: AuditEntry, *, now: datetime,
    model_id: int,
) -> None:
    body = {
        "event": event,
        "model": state.model,
        "environment": state.environment,
        "action": audit.action,
        "from_version": audit.from_version,
        "to_version": audit.to_version,
        "stable": state.stable,
        "stable_artifact_uri": state.stable_artifact_uri,
        "previous": state.previous,
        "canary": state.canary,
        "canary_artifact_uri": state.canary_artifact_uri,
        "canary_weight": state.canary_weight,
        "revision": state.revision,
        "actor": audit.actor,
        "reason": audit.reason,
        "request_id": audit.request_id,
        "time": iso(now),
    }
    for index, hook in enumerate(policy.webhooks):
        if event in hook.events:
            outbox.enqueue(session, now=now, topic=topic(model_id), kind="webhook", template=event,
                           data={"url": hook.url, "secret_env": hook.secret_env, "hook": index, "body": body})
