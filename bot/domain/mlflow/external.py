"""Aliases moved in MLflow directly (its UI, a script): what `external_moves` makes of them.

`report` tells the environment's approval channel and writes an audit row by `mlflow-external`;
`accept` moves the pointer through the registry's own move (audited and announced like any
move), when modelbot can: a stable alias, pointing at a READY version modelbot has;
`revert` puts the alias back through the outbox, when modelbot serves something there to put
back. Whatever cannot be followed is reported, saying why.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.domain import audit, notices
from bot.domain.mlflow import outbound
from bot.domain.mlflow.settings import AliasTarget, SyncSettings
from bot.domain.policy import Policy
from bot.domain.registry import Registry
from storage.models import RegisteredModel
from storage.queries import outbox
from storage.queries import registry as queries

EXTERNAL_ACTOR = "mlflow-external"
EXTERNAL_ACTION = "mlflow_external_move"
TEMPLATE = "mlflow_external_move"


def handle(session: Session, registry: Registry, policy: Policy, settings: SyncSettings, model: RegisteredModel,
           alias: str, target: AliasTarget, *, current: int | None, pointer: int | None, now: datetime) -> str:
    """An alias moved outside modelbot: do what `external_moves` says, in the caller's transaction,
    and return what was done in words."""
    env = target.environment
    moved = f"MLflow alias {alias} " + (f"moved to v{current}" if current is not None else "was deleted")
    serving = f"v{pointer}" if pointer is not None else "nothing"
    mode = settings.external_moves
    why_not = ""
    if mode == "accept":
        why_not = _why_not_accept(session, model, target, current)
        if not why_not:
            assert current is not None
            dep = registry.lock_deployment(session, model, env)
            move = registry.move_pointer(
                session, model, dep, current, actor=EXTERNAL_ACTOR, action="promote", request_id=None,
                reason=f"{moved} outside modelbot (external_moves = accept)")
            notices.deployment_changed(session, policy, move, now=now, model_id=model.id)  # type: ignore[arg-type]
            return f"{env} followed {moved} outside modelbot (accepted)"
    if mode == "revert" and pointer is not None:
        dep = queries.deployment(session, model.id, env)  # type: ignore[arg-type]
        assert dep is not None
        outbound.enqueue_state(session, model=model.name, model_id=model.id, environment=env,  # type: ignore[arg-type]
                               stable=dep.stable_version, canary=dep.canary_version, revision=dep.revision,
                               now=now, cause="revert of a move made outside modelbot")
        result = f"put back to v{pointer}"
    else:
        if mode == "revert":
            why_not = f"modelbot has nothing in {env} to put back"
        result = f"{env} stays at {serving}" + (f" (not accepted: {why_not})" if why_not else "")
    reason = f"{moved} outside modelbot; {result} (external_moves = {mode})"
    audit.record(session, at=now, actor=EXTERNAL_ACTOR, model_id=model.id, environment=env, action=EXTERNAL_ACTION,
                 from_version=pointer, to_version=current, reason=reason)
    channel = (policy.env(env).approval_channel or policy.announce_channel
               or settings.new_version_channel)
    if channel is not None:
        outbox.enqueue(session, now=now, topic=notices.topic(model.id), kind="post",  # type: ignore[arg-type]
                       template=TEMPLATE, channel=channel, data={
                           "model": model.name, "environment": env, "alias": alias, "canary": target.canary,
                           "mlflow_version": current, "modelbot_version": pointer, "mode": mode,
                           "result": result, "tracking_uri": settings.tracking_uri})
    return f"{moved} outside modelbot: {result}"


def _why_not_accept(session: Session, model: RegisteredModel, target: AliasTarget, current: int | None) -> str:
    if target.canary:
        return "a canary needs a traffic weight, so only its stable alias can be followed"
    if current is None:
        return "modelbot cannot take an environment out of service"
    row = queries.version(session, model.id, current)  # type: ignore[arg-type]
    if row is None:
        return f"v{current} is not in modelbot"
    if row.status != "ready":
        return f"v{current} is {row.status} in modelbot"
    return ""
