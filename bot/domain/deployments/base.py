"""What every deployment decision shares: who acts, the audited refusal, and the effects a
decision can have (move a pointer, change a canary, open or close a request) together with the
messages and audit rows each effect causes.

A decision runs in one write transaction. It first learns who acts (`roles`, which may ask
Slack about user groups, so it happens before the transaction opens), then locks what it
decides on in one order — the environment's pending request, then its deployment row — so
double clicks, retries and two approvers in the same second serialise in the database. Each
effect writes its audit row and its outbox rows (`notices`) in that transaction: nothing is
lost, nothing is announced that did not commit. A refusal (`Forbidden`, `Conflict`) rolls the
transaction back and is then recorded as one audit row of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.domain import audit, notices
from bot.domain.deployments import rules
from bot.domain.deployments.views import RequestOutcome, RequestView
from bot.domain.entities import EnvironmentState, PointerMove, as_utc, iso
from bot.domain.errors import Conflict, Forbidden
from bot.domain.gates import GateResult, evaluate
from bot.domain.policy import EnvironmentPolicy, GroupResolver, Policy, Roles, no_groups
from bot.domain.refs import VersionRef
from bot.domain.registry import Registry, new_request_id, state_of
from storage.models import ChangeRequest, Deployment, ModelVersion, RegisteredModel
from storage.queries import deployments as dq
from storage.queries import registry as queries


@dataclass
class Attempt:
    """Who tried which decision on what, filled in as the decision learns it: a refusal is
    recorded from it (action `<action>_refused`, the refusal's sentence as the reason)."""

    actor: str
    action: str
    environment: str | None = None
    model_id: int | None = None
    version: int | None = None
    request_id: str | None = None
    weight: int | None = None


@dataclass
class Locked:
    """What a decision about one environment holds: its transaction, the model, the pending
    request and the deployment row (both locked), and the version the decision is about."""

    session: Session
    model: RegisteredModel
    pending: ChangeRequest | None
    dep: Deployment
    target: ModelVersion | None


class DeploymentsBase:
    """Policy-aware changes on top of the registry; the decisions are in the sibling modules."""

    def __init__(
        self,
        registry: Registry,
        policy: Policy,
        *,
        groups: GroupResolver = no_groups,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.registry = registry
        self.policy = policy
        self.groups = groups
        self.clock = clock or registry.clock

    # ---- who acts, and refusals --------------------------------------------------------------

    def roles(self, actor: str) -> Roles:
        """Resolved before any transaction opens: the group resolver may call Slack."""
        if actor == notices.SYSTEM_ACTOR:
            return Roles(actor, deployer=True)
        return self.policy.roles(actor, self.groups)

    def require_deployer(self, roles: Roles, what: str) -> None:
        rules.require_deployer(roles, self.policy.deployers.describe(), what)

    @contextlib.contextmanager
    def refusals(self, attempt: Attempt) -> Iterator[None]:
        """Record a refusal raised in the body as one audit row (in its own transaction: the
        body's own transaction has rolled back), then let it reach the door."""
        try:
            yield
        except (Forbidden, Conflict) as refusal:
            audit.record_refusal(
                self.registry, at=self.clock(), actor=attempt.actor, action=attempt.action, reason=refusal.message,
                model_id=attempt.model_id, environment=attempt.environment, to_version=attempt.version,
                weight=attempt.weight, request_id=attempt.request_id,
            )
            raise

    @contextlib.contextmanager
    def deciding(self, attempt: Attempt) -> Iterator[Session]:
        """One decision's write transaction, with its refusals audited."""
        with self.refusals(attempt), self.registry.writing() as session:
            yield session

    @contextlib.contextmanager
    def deciding_on(self, attempt: Attempt, model: str, roles: Roles, *, deployers_only: str | None,
                    ref: str | VersionRef | None = None) -> Iterator[Locked]:
        """A decision about one model's environment (`attempt.environment`): the model, the
        version `ref` names, the deployer check (`deployers_only` says what is refused), then
        the locks in their one order — the environment's pending request, its deployment row."""
        assert attempt.environment is not None
        with self.deciding(attempt) as session:
            row = self.registry.model_row(session, model)
            attempt.model_id = row.id
            target = self.registry.version_row(session, row, ref) if ref is not None else None
            if target is not None:
                attempt.version = target.version
            if deployers_only is not None:
                self.require_deployer(roles, deployers_only)
            pending = dq.pending_request_locked(session, row.id, attempt.environment)  # type: ignore[arg-type]
            dep = self.registry.lock_deployment(session, row, attempt.environment)
            yield Locked(session, row, pending, dep, target)

    # ---- reads inside a decision -----------------------------------------------------------------

    def view(self, session: Session, request: ChangeRequest, model_name: str) -> RequestView:
        votes = dq.votes(session, request.id)  # type: ignore[arg-type]
        return RequestView(
            id=request.id or 0, model=model_name, version=request.version, environment=request.environment,
            kind=request.kind, requester=request.requester, reason=request.reason, status=request.status,
            approvals_needed=request.approvals_needed,
            approvals=tuple((v.voter, iso(v.at) or "") for v in votes if v.decision == "approve"),
            rejections=tuple((v.voter, iso(v.at) or "", v.reason) for v in votes if v.decision == "reject"),
            created_at=as_utc(request.created_at), expires_at=as_utc(request.expires_at),
            decided_at=as_utc(request.decided_at) if request.decided_at else None,
            decided_by=request.decided_by, decision_reason=request.decision_reason,
            override_by=request.override_by, override_reason=request.override_reason,
            override_at=as_utc(request.override_at) if request.override_at else None,
            superseded_by=request.superseded_by, from_version=request.from_version,
            gates=tuple(request.gates or ()), weight=request.weight,
        )

    def gates(self, session: Session, model: RegisteredModel, version: int, dep: Deployment | None,
              env_policy: EnvironmentPolicy, *, kind: str) -> list[GateResult]:
        """The environment's gates for `version` against what serves now. A rollback is not
        gated: it returns to a version this environment already ran, usually in a hurry."""
        if not env_policy.gates or kind == "rollback":
            return []
        target = queries.version(session, model.id, version)  # type: ignore[arg-type]
        assert target is not None
        current = None
        if dep is not None and dep.stable_version is not None:
            serving = queries.version(session, model.id, dep.stable_version)  # type: ignore[arg-type]
            current = dict(serving.metrics) if serving else None
        return [evaluate(g, target.metrics, current) for g in env_policy.gates]

    def check_target(self, session: Session, model: RegisteredModel, version: int, status: str,
                     dep: Deployment, env_policy: EnvironmentPolicy) -> None:
        """A version may go to an environment (as its stable version or as a canary) when it is
        ready, does not serve it already, and has served the environment the policy `requires`."""
        env = env_policy.name
        if status != "ready":
            raise Conflict(f"{model.name} v{version} is {status} and cannot be promoted.")
        if dep.stable_version == version:
            raise Conflict(f"{model.name} v{version} already serves {env}.")
        required = env_policy.requires
        if required and version not in queries.versions_that_served(session, model.id, required):  # type: ignore[arg-type]
            raise Conflict(f"{model.name} v{version} has not served {required} yet, and {env} requires that: "
                           f"promote it to {required} first.")

    def check_canary_card(self, model: RegisteredModel, dep: Deployment, expected_canary: int | None) -> None:
        """A button about a canary acts only on the canary it shows."""
        if expected_canary is not None and dep.canary_version != expected_canary:
            running = f"v{dep.canary_version} at {dep.canary_weight} %" if dep.canary_version else "no canary"
            raise Conflict(f"This card is out of date: {model.name} in {dep.environment} runs {running} now. "
                           "Nothing changed.")

    # ---- effects ---------------------------------------------------------------------------------

    def move(self, session: Session, model: RegisteredModel, dep: Deployment, pending: ChangeRequest | None,
             version: int, *, actor: str, action: str, reason: str | None, request_id: str | None, now: datetime,
             announce: bool = True) -> PointerMove:
        """Point the environment at `version`. A canary of another version ends with it,
        visibly; a pending request this makes pointless closes as moot."""
        if dep.canary_version is not None and dep.canary_version != version:
            self.end_canary(session, model, dep, None, actor=actor, now=now,
                            reason=f"ended by the {action.replace('_', ' ')} to v{version}")
        move = self.registry.move_pointer(session, model, dep, version, actor=actor, action=action, reason=reason,
                                          request_id=request_id or new_request_id())
        notices.deployment_changed(session, self.policy, move, now=now, model_id=model.id,  # type: ignore[arg-type]
                                   announce=announce)
        self.close_if_moot(session, model, dep, pending, actor=actor, now=now)
        return move

    def set_canary_weight(self, session: Session, model: RegisteredModel, dep: Deployment,
                          pending: ChangeRequest | None, version: int, weight: int, *, actor: str,
                          reason: str | None, now: datetime, request_id: str | None = None) -> EnvironmentState:
        """Start a canary of `version` at `weight` %, or move the running one to `weight` %."""
        starting = dep.canary_version != version
        previous_weight = 0 if starting else dep.canary_weight
        dep.canary_version, dep.canary_weight = version, weight
        dep.revision += 1
        dep.updated_at = now
        session.add(dep)
        entry = audit.record_shown(
            session, model_name=model.name, at=now, actor=actor, model_id=model.id, environment=dep.environment,
            action="canary_start" if starting else "canary_weight", from_version=dep.stable_version,
            to_version=version, revision=dep.revision, weight=weight, reason=reason,
            request_id=request_id or new_request_id(),
        )
        state = state_of(session, model, dep.environment, dep)
        notices.canary_changed(session, self.policy, state, entry, now=now,
                               model_id=model.id, started=starting, previous_weight=previous_weight)  # type: ignore[arg-type]
        self.close_if_moot(session, model, dep, pending, actor=actor, now=now)
        return state

    def end_canary(self, session: Session, model: RegisteredModel, dep: Deployment, pending: ChangeRequest | None,
                   *, actor: str, reason: str | None, now: datetime) -> EnvironmentState:
        """Weight 0: the stable version takes all traffic again."""
        version = dep.canary_version
        dep.canary_version, dep.canary_weight = None, 0
        dep.revision += 1
        dep.updated_at = now
        session.add(dep)
        entry = audit.record_shown(
            session, model_name=model.name, at=now, actor=actor, model_id=model.id, environment=dep.environment,
            action="canary_abort", from_version=version, to_version=dep.stable_version, revision=dep.revision,
            weight=0, reason=reason, request_id=new_request_id(),
        )
        state = state_of(session, model, dep.environment, dep)
        notices.canary_changed(session, self.policy, state, entry, now=now,
                               model_id=model.id, started=False, aborted_version=version)  # type: ignore[arg-type]
        self.close_if_moot(session, model, dep, pending, actor=actor, now=now)
        return state

    def open_request(
        self, session: Session, model: RegisteredModel, dep: Deployment, pending: ChangeRequest | None, *,
        kind: str, version: int, requester: str, reason: str | None, gates: list[GateResult], now: datetime,
        origin_channel: str | None, weight: int | None = None, override_reason: str | None = None,
    ) -> RequestView:
        """A request for approvals; it supersedes the environment's pending one. An admin may
        override a failing gate as they ask (`override_reason`, already checked)."""
        env_policy = self.policy.env(dep.environment)
        if pending is not None and pending.status != "pending":
            pending = None  # it has just closed (moot)
        if pending is not None:
            pending.status, pending.decided_at = "superseded", now
            session.add(pending)
            session.flush()
        request = ChangeRequest(
            model_id=model.id,  # type: ignore[arg-type]
            version=version, environment=dep.environment, kind=kind, requester=requester, reason=reason,
            approvals_needed=env_policy.approvals_for(kind), created_at=now, expires_at=now + env_policy.expires_after,
            from_version=dep.stable_version, gates=[g.to_dict() for g in gates], weight=weight,
            override_by=requester if override_reason else None, override_reason=override_reason,
            override_at=now if override_reason else None,
        )
        session.add(request)
        try:
            session.flush()
        except IntegrityError as exc:  # the partial unique index: another request won the race
            raise Conflict(f"Another request for {model.name} in {dep.environment} was opened at the same moment; "
                           "look at the pending requests and try again.") from exc
        audit.record(session, at=now, actor=requester, model_id=model.id, environment=dep.environment,
                     action=f"{kind}_requested", to_version=version, from_version=request.from_version,
                     weight=weight, reason=reason, request_id=str(request.id))
        if override_reason:
            audit.record(session, at=now, actor=requester, model_id=model.id, environment=dep.environment,
                         action="override", to_version=version, reason=override_reason, request_id=str(request.id))
        if pending is not None:
            pending.superseded_by = request.id
            session.add(pending)
            audit.record(session, at=now, actor=requester, model_id=model.id, environment=dep.environment,
                         action="supersede", to_version=pending.version, reason=f"superseded by request #{request.id}",
                         request_id=str(pending.id))
            notices.request_updated(session, self.view(session, pending, model.name), now=now,
                                    model_id=model.id)  # type: ignore[arg-type]
        view = self.view(session, request, model.name)
        notices.request_opened(session, env_policy, view, now=now, model_id=model.id,  # type: ignore[arg-type]
                               origin_channel=origin_channel)
        return view

    def ask_or_go(
        self, it: Locked, *, kind: str, version: int, roles: Roles, reason: str | None, override_reason: str | None,
        gates: list[GateResult], now: datetime, origin_channel: str | None, weight: int | None = None,
    ) -> RequestView | str | None:
        """Open a request when the environment wants approvals for this kind of change (the
        view), or say the change may happen now: the gates pass, or an admin overrides them.
        Then the reason to record with it is returned (None: none given)."""
        overridden = rules.check_gates_for_change(roles, gates, override_reason) if override_reason else False
        if self.policy.env(it.dep.environment).approvals_for(kind):
            return self.open_request(
                it.session, it.model, it.dep, it.pending, kind=kind, version=version, requester=roles.actor,
                reason=reason, gates=gates, now=now, origin_channel=origin_channel, weight=weight,
                override_reason=override_reason if overridden else None,
            )
        if not overridden:
            rules.check_gates_for_change(roles, gates, None)
        return rules.with_override(reason, override_reason if overridden else None)

    def move_or_ask(
        self, it: Locked, *, kind: str, version: int, roles: Roles, reason: str | None, override_reason: str | None,
        gates: list[GateResult], now: datetime, origin_channel: str | None,
    ) -> RequestOutcome:
        """Move the stable pointer now, or ask for the approvals this kind of move needs."""
        decided = self.ask_or_go(it, kind=kind, version=version, roles=roles, reason=reason,
                                 override_reason=override_reason, gates=gates, now=now, origin_channel=origin_channel)
        if isinstance(decided, RequestView):
            return RequestOutcome(request=decided)
        return RequestOutcome(move=self.move(it.session, it.model, it.dep, it.pending, version, actor=roles.actor,
                                             action=kind, reason=decided, request_id=None, now=now))

    def close(self, session: Session, model: RegisteredModel, request: ChangeRequest, status: str, *, actor: str,
              reason: str | None, now: datetime) -> RequestView:
        """End a pending request without a vote deciding it (cancelled, expired, moot), audited,
        and update its card."""
        request.status, request.decided_at, request.decision_reason = status, now, reason
        if status != "expired":
            request.decided_by = actor
        session.add(request)
        session.flush()
        action = {"cancelled": "cancel", "expired": "expire", "moot": "moot"}[status]
        audit.record(session, at=now, actor=actor, model_id=model.id, environment=request.environment, action=action,
                     to_version=request.version, reason=reason, request_id=str(request.id))
        view = self.view(session, request, model.name)
        notices.request_updated(session, view, now=now, model_id=model.id)  # type: ignore[arg-type]
        return view

    def close_if_moot(self, session: Session, model: RegisteredModel, dep: Deployment, pending: ChangeRequest | None,
                      *, actor: str, now: datetime) -> RequestView | None:
        """Close the pending request as moot when the environment's pointers make it pointless."""
        if pending is None or pending.status != "pending":
            return None
        why = rules.moot_reason(pending.kind, pending.version, dep.environment, dep.stable_version, dep.canary_version)
        if why is None:
            return None
        return self.close(session, model, pending, "moot", actor=actor, reason=why, now=now)


def deadline_passed(request: ChangeRequest, now: datetime) -> bool:
    return request.status == "pending" and as_utc(request.expires_at) <= now
