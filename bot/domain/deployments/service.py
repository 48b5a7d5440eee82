"""Promotions with approvals, rollbacks and canaries: the rules around moving pointers.

Every decision happens inside one write transaction that locks the row it decides on (the
request, or the deployment), so double clicks, Slack retries and two approvers in the same
second serialise in the database. The messages and webhooks a change causes are written to
the outbox in that same transaction (`notices`), so nothing is lost and nothing is sent for a
change that did not commit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.domain import names, notices
from bot.domain.deployments.views import RequestOutcome, RequestView, VoteOutcome
from bot.domain.entities import EnvironmentState, PointerMove, iso
from bot.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from bot.domain.gates import GateResult, evaluate
from bot.domain.policy import EnvironmentPolicy, GroupResolver, Policy, no_groups
from bot.domain.refs import VersionRef
from bot.domain.registry import Registry, new_request_id
from storage.models import AuditEvent, ChangeRequest, ModelVersion, RegisteredModel, RequestVote
from storage.queries import registry as queries

REQUEST_KINDS = ("promote", "rollback", "canary_promote")




class Deployments:
    """Policy-aware pointer moves on top of the registry."""

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

    # ---- promotion requests -------------------------------------------------------------

    def request_promotion(
        self,
        model: str,
        ref: str | VersionRef,
        environment: str,
        *,
        requester: str,
        reason: str | None = None,
        origin_channel: str | None = None,
        override_reason: str | None = None,
        kind: str = "promote",
    ) -> RequestOutcome:
        env = names.environment(environment, self.registry.environments)
        requester = names.actor(requester)
        reason = names.text(reason, "reason")
        override_reason = names.text(override_reason, "override reason")
        env_policy = self.policy.env(env)
        self._require_deployer(requester, f"request a promotion to {env}")
        now = self.clock()
        with self.registry.writing() as session:
            row = self.registry._model(session, model)
            target = self.registry._resolve(session, row, ref)
            if kind == "canary_promote":
                dep = self.registry._locked_deployment(session, row, env)
                if dep.canary_version is None:
                    raise Conflict(f"No canary is running for {row.name} in {env}: start one with "
                                   f"`/model canary {row.name} VERSION {env} 5`.")
                target = queries.version(session, row.id, dep.canary_version)  # type: ignore[arg-type,assignment]
                assert target is not None
            self._check_target(session, row, target, env, env_policy)
            current = self._current_metrics(session, row, env)
            gates = [evaluate(g, target.metrics, current) for g in env_policy.gates]
            needed = env_policy.approvals
            if needed == 0:
                if not all(g.passed for g in gates):
                    self._require_override(requester, override_reason, gates)
                dep = self.registry._locked_deployment(session, row, env)
                move = self.registry._move(
                    session, row, dep, target.version, actor=requester,
                    action="canary_promote" if kind == "canary_promote" else "promote",
                    reason=_with_override(reason, override_reason), request_id=new_request_id(),
                )
                notices.deployment_changed(session, self.policy, move, now=now, model_id=row.id)  # type: ignore[arg-type]
                return RequestOutcome(move=move)
            request = self._open_request(
                session, row, target, env, env_policy, requester=requester, reason=reason, kind=kind,
                gates=gates, now=now,
            )
            view = self._view(session, request, row.name)
            notices.request_opened(session, env_policy, view, now=now, model_id=row.id,  # type: ignore[arg-type]
                                   origin_channel=origin_channel)
            return RequestOutcome(request=view)

    def _open_request(
        self, session: Session, row: RegisteredModel, target: ModelVersion, env: str, env_policy: EnvironmentPolicy,
        *, requester: str, reason: str | None, kind: str, gates: list[GateResult], now: datetime,
    ) -> ChangeRequest:
        older = session.exec(
            self.registry.db.lock_for_update(
                select(ChangeRequest).where(
                    ChangeRequest.model_id == row.id, ChangeRequest.environment == env,
                    ChangeRequest.status == "pending",
                )
            )
        ).all()
        for previous in older:
            previous.status = "superseded"
            previous.decided_at = now
            session.add(previous)
        session.flush()
        dep = queries.deployment(session, row.id, env)  # type: ignore[arg-type]
        request = ChangeRequest(
            model_id=row.id,  # type: ignore[arg-type]
            version=target.version, environment=env, kind=kind, requester=requester, reason=reason,
            approvals_needed=env_policy.approvals if kind != "rollback" else env_policy.rollback_approvals,
            created_at=now, expires_at=now + env_policy.expires_after,
            from_version=dep.stable_version if dep else None, gates=[g.to_dict() for g in gates],
        )
        session.add(request)
        try:
            session.flush()
        except IntegrityError as exc:  # the partial unique index: another request won the race
            raise Conflict(f"Another request for {row.name} in {env} was opened at the same moment; "
                           "look at `/model requests` and try again.") from exc
        for previous in older:
            previous.superseded_by = request.id
            session.add(previous)
            notices.request_updated(session, self._view(session, previous, row.name), now=now,
                                    model_id=row.id)  # type: ignore[arg-type]
        session.add(AuditEvent(
            at=now, actor=requester, model_id=row.id, environment=env, action=f"{kind}_requested",
            to_version=target.version, from_version=request.from_version, reason=reason,
            request_id=str(request.id),
        ))
        return request

    def vote(
        self,
        request_id: int | str,
        voter: str,
        decision: str,
        *,
        reason: str | None = None,
        override_reason: str | None = None,
    ) -> VoteOutcome:
        """Approve or reject. Exactly once per person; the last approval moves the pointer."""
        if decision not in ("approve", "reject"):
            raise InvalidInput("Decide with approve or reject.")
        number = _request_number(request_id)
        voter = names.actor(voter)
        reason = names.text(reason, "reason")
        override_reason = names.text(override_reason, "override reason")
        if decision == "reject" and not (reason and reason.strip()):
            raise InvalidInput("Say why you reject it: the requester will read your reason.")
        now = self.clock()
        refusal: str | None = None
        with self.registry.writing() as session:
            request = session.exec(
                self.registry.db.lock_for_update(select(ChangeRequest).where(ChangeRequest.id == number))
                .execution_options(populate_existing=True)
            ).first()
            if request is None:
                raise NotFound(f"There is no request {number}: `/model requests` lists the pending ones.")
            model = session.get(RegisteredModel, request.model_id)
            assert model is not None
            if request.status == "pending" and request.expires_at and _aware(request.expires_at) <= now:
                request.status = "expired"
                request.decided_at = now
                session.add(request)
                view = self._view(session, request, model.name)
                notices.request_updated(session, view, now=now, model_id=model.id)  # type: ignore[arg-type]
                return VoteOutcome(view, "already_decided", notes=[f"Request {number} expired at "
                                                                    f"{iso(request.expires_at)}; nothing changed."])
            if request.status != "pending":
                view = self._view(session, request, model.name)
                return VoteOutcome(view, "already_decided", notes=[_decided_note(view)])
            refusal = self._refusal(request, voter, model.name)
            if refusal is None:
                existing = session.exec(
                    select(RequestVote).where(RequestVote.request_id == number, RequestVote.voter == voter)
                ).first()
                if existing is not None:
                    view = self._view(session, request, model.name)
                    return VoteOutcome(view, "duplicate", notes=[f"You already {existing.decision}d request {number}."])
                return self._record_vote(session, request, model, voter, decision, reason, override_reason, now)
        # refused: record who tried, in its own transaction, then tell them why
        with self.registry.writing() as session:
            session.add(AuditEvent(
                at=now, actor=voter, model_id=request.model_id, environment=request.environment,
                action=f"{decision}_refused", to_version=request.version, reason=refusal, request_id=str(number),
            ))
        raise Forbidden(refusal)

    def _record_vote(
        self, session: Session, request: ChangeRequest, model: RegisteredModel, voter: str, decision: str,
        reason: str | None, override_reason: str | None, now: datetime,
    ) -> VoteOutcome:
        env_policy = self.policy.env(request.environment)
        notes: list[str] = []
        move: PointerMove | None = None
        approvals = session.exec(
            select(RequestVote).where(RequestVote.request_id == request.id, RequestVote.decision == "approve")
        ).all()
        session.add(RequestVote(request_id=request.id, voter=voter, decision=decision, at=now,  # type: ignore[arg-type]
                                reason=reason))
        session.add(AuditEvent(
            at=now, actor=voter, model_id=model.id, environment=request.environment, action=decision,
            to_version=request.version, reason=reason, request_id=str(request.id),
        ))
        session.flush()
        if decision == "approve" and len(approvals) + 1 >= request.approvals_needed:
            target = queries.version(session, model.id, request.version)  # type: ignore[arg-type]
            assert target is not None
            current = self._current_metrics(session, model, request.environment)
            gates = [evaluate(g, target.metrics, current) for g in env_policy.gates]
            request.gates = [g.to_dict() for g in gates]
            if not all(g.passed for g in gates):
                if not override_reason:
                    failing = "; ".join(_gate_text(g) for g in gates if not g.passed)
                    raise Conflict(f"A gate fails, so this cannot be approved: {failing}. An admin may override "
                                   "with a written reason.")
                if not self.policy.is_admin(voter, self.groups):
                    raise Forbidden("Only an admin may override a failing gate.")
                request.override_by, request.override_reason = voter, override_reason
            self._check_still_promotable(session, model, request, target)
            dep = self.registry._locked_deployment(session, model, request.environment)
            action = {"promote": "promote", "rollback": "rollback", "canary_promote": "canary_promote"}[request.kind]
            move = self.registry._move(
                session, model, dep, request.version, actor=voter, action=action,
                reason=_with_override(request.reason, override_reason), request_id=str(request.id),
            )
        if decision == "reject":
            request.status, request.decided_at, request.decided_by = "rejected", now, voter
            request.decision_reason = reason
            result = "rejected"
        elif move is not None:
            request.status, request.decided_at, request.decided_by = "approved", now, voter
            result = "approved"
        else:
            result = "counted"
            notes.append(f"Approval recorded: {len(approvals) + 1} of {request.approvals_needed}.")
        session.add(request)
        session.flush()
        view = self._view(session, request, model.name)
        notices.request_updated(session, view, now=now, model_id=model.id)  # type: ignore[arg-type]
        if result in ("approved", "rejected"):
            notices.request_decided(session, view, now=now, model_id=model.id)  # type: ignore[arg-type]
        if move is not None:
            notices.deployment_changed(session, self.policy, move, now=now, model_id=model.id,  # type: ignore[arg-type]
                                       announce=False)
        return VoteOutcome(view, result, move=move, notes=notes)

    def cancel(self, request_id: int | str, actor: str) -> RequestView:
        number = _request_number(request_id)
        actor = names.actor(actor)
        now = self.clock()
        with self.registry.writing() as session:
            request = session.exec(
                self.registry.db.lock_for_update(select(ChangeRequest).where(ChangeRequest.id == number))
            ).first()
            if request is None:
                raise NotFound(f"There is no request {number}.")
            if request.requester != actor and not self.policy.is_admin(actor, self.groups):
                raise Forbidden("Only the requester or an admin may cancel a request.")
            if request.status != "pending":
                raise Conflict(f"Request {number} is already {request.status}.")
            request.status, request.decided_at, request.decided_by = "cancelled", now, actor
            session.add(request)
            model = session.get(RegisteredModel, request.model_id)
            assert model is not None
            session.flush()
            view = self._view(session, request, model.name)
            notices.request_updated(session, view, now=now, model_id=model.id)  # type: ignore[arg-type]
            return view

    def expire_due(self) -> int:
        """Expire pending requests past their deadline (the scheduler calls this every minute)."""
        now = self.clock()
        with self.registry.writing() as session:
            rows = session.exec(
                self.registry.db.lock_for_update(
                    select(ChangeRequest).where(
                        ChangeRequest.status == "pending", col(ChangeRequest.expires_at) <= now
                    )
                )
            ).all()
            for request in rows:
                request.status, request.decided_at = "expired", now
                session.add(request)
                session.flush()
                model = session.get(RegisteredModel, request.model_id)
                assert model is not None
                notices.request_updated(session, self._view(session, request, model.name), now=now,
                                        model_id=model.id)  # type: ignore[arg-type]
            return len(rows)

    # ---- rollback -----------------------------------------------------------------------

    def rollback(
        self,
        model: str,
        environment: str,
        *,
        actor: str,
        to: str | VersionRef | None = None,
        reason: str | None = None,
        origin_channel: str | None = None,
    ) -> RequestOutcome:
        """Immediate for deployers (blue-green: previous is kept warm), unless the environment
        sets `rollback_approvals`; always announced."""
        env = names.environment(environment, self.registry.environments)
        actor = names.actor(actor)
        self._require_deployer(actor, f"roll back {env}")
        env_policy = self.policy.env(env)
        if env_policy.rollback_approvals:
            target = self._rollback_target(model, env, to)
            return self.request_promotion(model, str(target), env, requester=actor, reason=reason,
                                          origin_channel=origin_channel, kind="rollback")
        now = self.clock()

        def announce(session: Session, row: RegisteredModel, move: PointerMove) -> None:
            notices.deployment_changed(session, self.policy, move, now=now, model_id=row.id)  # type: ignore[arg-type]

        move = self.registry.rollback(model, env, actor=actor, to=to, reason=reason, on_move=announce)
        return RequestOutcome(move=move)

    def _rollback_target(self, model: str, env: str, to: str | VersionRef | None) -> int:
        state = self.registry.environment_state(model, env)
        if to is None:
            if state.previous is None:
                raise Conflict(f"{model} has no previous version in {env} to roll back to.")
            return state.previous
        return self.registry.show(model, to).version

    # ---- canary -------------------------------------------------------------------------

    def set_canary(
        self, model: str, ref: str | VersionRef | None, environment: str, percent: int | str, *, actor: str,
        reason: str | None = None,
    ) -> EnvironmentState:
        """Start a canary beside the stable version, or move an existing one's weight (1–99)."""
        env = names.environment(environment, self.registry.environments)
        actor = names.actor(actor)
        weight = parse_percent(percent)
        self._require_deployer(actor, f"run canaries in {env}")
        now = self.clock()
        with self.registry.writing() as session:
            row = self.registry._model(session, model)
            dep = self.registry._locked_deployment(session, row, env)
            if ref is None:
                if dep.canary_version is None:
                    raise Conflict(f"No canary is running for {row.name} in {env}.")
                version = dep.canary_version
            else:
                target = self.registry._resolve(session, row, ref)
                if target.status != "ready":
                    raise Conflict(f"{row.name} v{target.version} is {target.status}.")
                version = target.version
            if dep.stable_version is None:
                raise Conflict(f"Nothing serves {env} yet, so there is no stable version to run a canary beside: "
                               f"promote a version first.")
            if version == dep.stable_version:
                raise Conflict(f"{row.name} v{version} is already the stable version of {env}.")
            starting = dep.canary_version != version
            if not starting and dep.canary_weight == weight:
                raise Conflict(f"The canary of {row.name} in {env} already takes {weight} %.")
            previous_weight = dep.canary_weight if not starting else 0
            dep.canary_version, dep.canary_weight = version, weight
            dep.revision += 1
            dep.updated_at = now
            session.add(dep)
            event = AuditEvent(
                at=now, actor=actor, model_id=row.id, environment=env,
                action="canary_start" if starting else "canary_weight", from_version=dep.stable_version,
                to_version=version, revision=dep.revision, weight=weight, reason=reason,
                request_id=new_request_id(),
            )
            session.add(event)
            session.flush()
            from bot.domain.registry import _audit, _state

            state = _state(session, row, env, dep)
            notices.canary_changed(session, self.policy, state, _audit(event, row.name), now=now,
                                   model_id=row.id, started=starting, previous_weight=previous_weight)  # type: ignore[arg-type]
            return state

    def abort_canary(self, model: str, environment: str, *, actor: str, reason: str | None = None) -> EnvironmentState:
        env = names.environment(environment, self.registry.environments)
        actor = names.actor(actor)
        if actor != notices.SYSTEM_ACTOR:
            self._require_deployer(actor, f"abort canaries in {env}")
        now = self.clock()
        with self.registry.writing() as session:
            row = self.registry._model(session, model)
            dep = self.registry._locked_deployment(session, row, env)
            if dep.canary_version is None:
                raise Conflict(f"No canary is running for {row.name} in {env}.")
            version = dep.canary_version
            dep.canary_version, dep.canary_weight = None, 0
            dep.revision += 1
            dep.updated_at = now
            session.add(dep)
            event = AuditEvent(
                at=now, actor=actor, model_id=row.id, environment=env, action="canary_abort",
                from_version=version, to_version=dep.stable_version, revision=dep.revision, weight=0,
                reason=reason, request_id=new_request_id(),
            )
            session.add(event)
            session.flush()
            from bot.domain.registry import _audit, _state

            state = _state(session, row, env, dep)
            notices.canary_changed(session, self.policy, state, _audit(event, row.name), now=now,
                                   model_id=row.id, started=False, aborted_version=version)  # type: ignore[arg-type]
            return state

    def next_canary_step(self, weight: int, environment: str) -> int | None:
        for step in self.policy.env(environment).canary_steps:
            if step > weight:
                return step
        return None

    # ---- reads --------------------------------------------------------------------------

    def get_request(self, request_id: int | str) -> RequestView:
        number = _request_number(request_id)
        with self.registry.reading() as session:
            request = session.get(ChangeRequest, number)
            if request is None:
                raise NotFound(f"There is no request {number}: `/model requests` lists the pending ones.")
            model = session.get(RegisteredModel, request.model_id)
            assert model is not None
            return self._view(session, request, model.name)

    def list_requests(self, *, pending_only: bool = True, model: str | None = None, limit: int = 50) -> list[RequestView]:
        with self.registry.reading() as session:
            query = select(ChangeRequest)
            if pending_only:
                query = query.where(ChangeRequest.status == "pending")
            if model is not None:
                row = self.registry._model(session, model)
                query = query.where(ChangeRequest.model_id == row.id)
            rows = session.exec(query.order_by(col(ChangeRequest.id).desc()).limit(limit)).all()
            models = queries.models_by_ids(session, {r.model_id for r in rows})
            return [self._view(session, r, models[r.model_id].name) for r in rows]

    def pending_for(self, actor: str, limit: int = 20) -> list[RequestView]:
        """Pending requests this person may approve now (for App Home)."""
        return [
            r for r in self.list_requests(pending_only=True, limit=200)
            if self._refusal_for(r.environment, r.requester, actor, r.model, r.id) is None
        ][:limit]

    # ---- rules --------------------------------------------------------------------------

    def _require_deployer(self, actor: str, what: str) -> None:
        if not self.policy.may_deploy(actor, self.groups):
            raise Forbidden(f"You may not {what}: only deployers ({self.policy.deployers.describe()}) and admins may.")

    def _require_override(self, actor: str, override_reason: str | None, gates: list[GateResult]) -> None:
        failing = "; ".join(_gate_text(g) for g in gates if not g.passed)
        if not override_reason:
            raise Conflict(f"A gate fails: {failing}. Fix the candidate, or an admin may override with a reason.")
        if not self.policy.is_admin(actor, self.groups):
            raise Forbidden(f"A gate fails ({failing}) and only an admin may override it.")

    def _refusal(self, request: ChangeRequest, voter: str, model: str) -> str | None:
        return self._refusal_for(request.environment, request.requester, voter, model, request.id or 0)

    def _refusal_for(self, env: str, requester: str, voter: str, model: str, number: int) -> str | None:
        env_policy = self.policy.env(env)
        if not self.policy.may_approve(env, voter, self.groups):
            return (f"You are not an approver for {env}: approvers are {env_policy.approvers.describe()}. "
                    f"Nothing changed on request {number}.")
        if voter == requester and not env_policy.allow_self_approval:
            return f"You requested this change, so you cannot approve it yourself (four-eyes rule for {env})."
        return None

    def _check_target(
        self, session: Session, row: RegisteredModel, target: ModelVersion, env: str, env_policy: EnvironmentPolicy
    ) -> None:
        if target.status != "ready":
            raise Conflict(f"{row.name} v{target.version} is {target.status} and cannot be promoted.")
        dep = queries.deployment(session, row.id, env)  # type: ignore[arg-type]
        if dep is not None and dep.stable_version == target.version:
            raise Conflict(f"{row.name} v{target.version} already serves {env}.")
        if env_policy.requires:
            required = env_policy.requires
            served = queries.versions_that_served(session, row.id, required)  # type: ignore[arg-type]
            if target.version not in served:
                raise Conflict(f"{row.name} v{target.version} has not served {required} yet, and {env} requires "
                               f"that: promote it to {required} first.")

    def _check_still_promotable(
        self, session: Session, model: RegisteredModel, request: ChangeRequest, target: ModelVersion
    ) -> None:
        dep = queries.deployment(session, model.id, request.environment)  # type: ignore[arg-type]
        if dep is not None and dep.stable_version == request.version:
            raise Conflict(f"{model.name} v{request.version} already serves {request.environment}.")
        if target.status != "ready":
            raise Conflict(f"{model.name} v{request.version} is {target.status} now.")

    def _current_metrics(self, session: Session, row: RegisteredModel, env: str) -> dict[str, float] | None:
        dep = queries.deployment(session, row.id, env)  # type: ignore[arg-type]
        if dep is None or dep.stable_version is None:
            return None
        current = queries.version(session, row.id, dep.stable_version)  # type: ignore[arg-type]
        return dict(current.metrics) if current else None

    def _view(self, session: Session, request: ChangeRequest, model_name: str) -> RequestView:
        votes = session.exec(
            select(RequestVote).where(RequestVote.request_id == request.id).order_by(col(RequestVote.id))
        ).all()
        return RequestView(
            id=request.id or 0, model=model_name, version=request.version, environment=request.environment,
            kind=request.kind, requester=request.requester, reason=request.reason, status=request.status,
            approvals_needed=request.approvals_needed,
            approvals=tuple((v.voter, iso(v.at) or "") for v in votes if v.decision == "approve"),
            rejections=tuple((v.voter, iso(v.at) or "", v.reason) for v in votes if v.decision == "reject"),
            created_at=_aware(request.created_at), expires_at=_aware(request.expires_at),
            decided_at=_aware(request.decided_at) if request.decided_at else None,
            decided_by=request.decided_by, decision_reason=request.decision_reason,
            override_by=request.override_by, override_reason=request.override_reason,
            superseded_by=request.superseded_by, from_version=request.from_version,
            gates=tuple(request.gates or ()),
        )


def parse_percent(raw: int | str) -> int:
    text = str(raw).strip().rstrip("%").strip()
    try:
        value = int(text)
    except ValueError:
        raise InvalidInput(f"'{names.preview(str(raw))}' is not a percentage: write a whole number from 1 to 99, "
                           "like 5 or 25.") from None
    if value == 0:
        raise InvalidInput("A canary at 0 % takes no traffic: use `canary abort` to stop it.")
    if value == 100:
        raise InvalidInput("A canary at 100 % is a promotion: use `canary promote` (it follows the approval policy).")
    if not 1 <= value <= 99:
        raise InvalidInput(f"A canary takes between 1 and 99 % of traffic, not {value}.")
    return value


def _request_number(raw: int | str) -> int:
    text = str(raw).strip().lstrip("#")
    if not text.isdigit() or len(text) > 12:
        raise InvalidInput(f"'{names.preview(str(raw))}' is not a request id: use the number shown on the card, "
                           "like 42.")
    return int(text)


def _aware(value: datetime) -> datetime:
    from bot.domain.entities import as_utc

    return as_utc(value)


def _with_override(reason: str | None, override: str | None) -> str | None:
    if not override:
        return reason
    return f"{reason + ' — ' if reason else ''}gate override: {override}"


def _gate_text(result: GateResult) -> str:
    if result.note:
        return f"{result.gate} ({result.note})"
    return f"{result.gate} ({result.left:.6g} vs {result.right:.6g})"


def _decided_note(view: RequestView) -> str:
    when = iso(view.decided_at) or ""
    by = f" by {view.decided_by}" if view.decided_by else ""
    return f"Request {view.id} is already {view.status}{by} {when}; nothing changed."
