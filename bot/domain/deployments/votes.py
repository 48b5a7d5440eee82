"""Votes on requests: approve, reject, override a failing gate, cancel.

Exactly one vote per person per request; the approval that reaches the number the policy asks
for makes the change. A failing gate blocks every plain approval until an admin overrides it;
the override belongs to the request (who, why, when — recorded once) and counts as the admin's
approval, so the remaining approvers can complete the request.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.domain import audit, names, notices
from bot.domain.deployments import rules
from bot.domain.deployments.base import Attempt, DeploymentsBase, deadline_passed
from bot.domain.deployments.views import RequestView, VoteOutcome
from bot.domain.entities import iso
from bot.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from bot.domain.policy import Roles
from storage.models import ChangeRequest, Deployment, RegisteredModel, RequestVote
from storage.queries import deployments as dq
from storage.queries import registry as queries


class Votes(DeploymentsBase):
    def vote(
        self,
        request_id: int | str,
        voter: str,
        decision: str,
        *,
        reason: str | None = None,
        override_reason: str | None = None,
    ) -> VoteOutcome:
        """Approve or reject (with `override_reason`: approve and override a failing gate)."""
        if decision not in ("approve", "reject"):
            raise InvalidInput("Decide with approve or reject.")
        number = rules.request_number(request_id)
        voter = names.actor(voter)
        reason = names.text(reason, "reason")
        override_reason = names.text(override_reason, "override reason")
        if decision == "reject" and not (reason and reason.strip()):
            raise InvalidInput("Say why you reject it: the requester will read your reason.")
        if override_reason is not None and not override_reason.strip():
            raise InvalidInput("Write why the failing gate may be overridden; it is recorded with your name.")
        roles = self.roles(voter)
        attempt = Attempt(voter, "override" if override_reason else decision, request_id=str(number))
        now = self.clock()
        with self.deciding(attempt) as session:
            request = self._request(session, number, attempt)
            model = dq.model_by_id(session, request.model_id)
            settled = self._settled(session, request, model, now)
            if settled is not None:
                return settled
            dep = self.registry.lock_deployment(session, model, request.environment)
            moot = self.close_if_moot(session, model, dep, request, actor=notices.SYSTEM_ACTOR, now=now)
            if moot is not None:
                return VoteOutcome(moot, "already_decided",
                                   notes=[f"Request {number} is moot ({moot.decision_reason}); nothing changed."])
            refusal = rules.approval_refusal(roles, self.policy.env(request.environment), request.requester, number)
            if refusal is not None:
                raise Forbidden(refusal)
            existing = dq.vote_by(session, number, voter)
            if existing is not None:
                return VoteOutcome(self.view(session, request, model.name), "duplicate",
                                   notes=[f"You already {existing.decision}d request {number}."])
            if decision == "reject":
                return self._reject(session, request, model, voter, reason, now)
            return self._approve(session, request, model, dep, roles, reason, override_reason, now)

    def check_override(self, request_id: int | str, actor: str) -> RequestView:
        """May `actor` override this request's failing gate now? (Slack asks before opening the
        "why?" form; the vote checks again.) A refusal is recorded like any other."""
        number = rules.request_number(request_id)
        actor = names.actor(actor)
        roles = self.roles(actor)
        attempt = Attempt(actor, "override", request_id=str(number))
        with self.refusals(attempt), self.registry.reading() as session:
            request = self._request(session, number, attempt, lock=False)
            model = dq.model_by_id(session, request.model_id)
            view = self.view(session, request, model.name)
            if view.status != "pending" or deadline_passed(request, self.clock()):
                return view  # the vote will say it is decided
            refusal = rules.approval_refusal(roles, self.policy.env(request.environment), request.requester, number)
            if refusal is not None:
                raise Forbidden(refusal)
            dep = queries.deployment(session, model.id, request.environment)  # type: ignore[arg-type]
            gates = self.gates(session, model, request.version, dep, self.policy.env(request.environment),
                               kind=request.kind)
            rules.check_override(roles, number, gates, request.override_by)
            return view

    def cancel(self, request_id: int | str, actor: str, *, reason: str | None = None) -> RequestView:
        """The requester (or an admin) withdraws a pending request."""
        number = rules.request_number(request_id)
        actor = names.actor(actor)
        reason = names.text(reason, "reason")
        roles = self.roles(actor)
        attempt = Attempt(actor, "cancel", request_id=str(number))
        now = self.clock()
        with self.deciding(attempt) as session:
            request = self._request(session, number, attempt)
            model = dq.model_by_id(session, request.model_id)
            if request.requester != actor and not roles.admin:
                raise Forbidden("Only the requester or an admin may cancel a request.")
            if deadline_passed(request, now):
                self.close(session, model, request, "expired", actor=notices.SYSTEM_ACTOR,
                           reason="no decision before the deadline", now=now)
                return self.view(session, request, model.name)
            if request.status != "pending":
                raise Conflict(f"Request {number} is already {request.status}; nothing changed.")
            return self.close(session, model, request, "cancelled", actor=actor, reason=reason, now=now)

    # ---- steps ---------------------------------------------------------------------------------

    def _request(self, session: Session, number: int, attempt: Attempt, *, lock: bool = True) -> ChangeRequest:
        request = dq.request_locked(session, number) if lock else dq.request(session, number)
        if request is None:
            raise NotFound(f"There is no request {number}: `requests` lists the pending ones.")
        attempt.model_id, attempt.environment, attempt.version = request.model_id, request.environment, request.version
        return request

    def _settled(self, session: Session, request: ChangeRequest, model: RegisteredModel,
                 now: datetime) -> VoteOutcome | None:
        """A request that is no longer pending, or whose deadline has passed, takes no vote."""
        if deadline_passed(request, now):
            view = self.close(session, model, request, "expired", actor=notices.SYSTEM_ACTOR,
                              reason="no decision before the deadline", now=now)
            return VoteOutcome(view, "already_decided",
                               notes=[f"Request {view.id} expired at {iso(request.expires_at)}; nothing changed."])
        if request.status != "pending":
            view = self.view(session, request, model.name)
            by = f" by {view.decided_by}" if view.decided_by else ""
            return VoteOutcome(view, "already_decided",
                               notes=[f"Request {view.id} is already {view.status}{by} {iso(view.decided_at) or ''}; "
                                      "nothing changed."])
        return None

    def _reject(self, session: Session, request: ChangeRequest, model: RegisteredModel, voter: str,
                reason: str | None, now: datetime) -> VoteOutcome:
        self._record(session, request, model, voter, "reject", reason, now)
        request.status, request.decided_at, request.decided_by = "rejected", now, voter
        request.decision_reason = reason
        return self._decided(session, request, model, "rejected", now)

    def _approve(self, session: Session, request: ChangeRequest, model: RegisteredModel, dep: Deployment,
                 roles: Roles, reason: str | None, override_reason: str | None, now: datetime) -> VoteOutcome:
        number = request.id or 0
        env_policy = self.policy.env(request.environment)
        gates = self.gates(session, model, request.version, dep, env_policy, kind=request.kind)
        if override_reason:
            rules.check_override(roles, number, gates, request.override_by)
            request.override_by, request.override_reason, request.override_at = roles.actor, override_reason, now
        else:
            rules.check_gates_for_approval(gates, overridden=request.override_by is not None)
        approvals = 1 + sum(1 for v in dq.votes(session, number) if v.decision == "approve")
        complete = approvals >= request.approvals_needed
        if complete and request.kind in ("promote", "canary_start") and dep.canary_version is not None:
            # a canary started since the request was made: people decide what happens to it
            raise rules.CanaryRunning(model.name, request.environment, dep.canary_version, dep.canary_weight)
        request.gates = [g.to_dict() for g in gates]
        self._record(session, request, model, roles.actor, "override" if override_reason else "approve",
                     override_reason or reason, now)
        if not complete:
            session.add(request)
            session.flush()
            view = self.view(session, request, model.name)
            notices.request_updated(session, view, now=now, model_id=model.id)  # type: ignore[arg-type]
            return VoteOutcome(view, "counted", notes=[f"Approval recorded: {approvals} of {request.approvals_needed}."])
        request.status, request.decided_at, request.decided_by = "approved", now, roles.actor
        outcome = self._decided(session, request, model, "approved", now)  # the card first, then the change
        if request.kind == "canary_start":
            self.set_canary_weight(session, model, dep, None, request.version, request.weight or 0,
                                   actor=roles.actor, reason=request.reason, now=now, request_id=str(number))
            return VoteOutcome(outcome.request, "approved")
        move = self.move(session, model, dep, None, request.version, actor=roles.actor, action=request.kind,
                         reason=rules.with_override(request.reason, request.override_reason), request_id=str(number),
                         now=now, announce=False)
        return VoteOutcome(outcome.request, "approved", move=move)

    def _record(self, session: Session, request: ChangeRequest, model: RegisteredModel, voter: str, action: str,
                reason: str | None, now: datetime) -> None:
        """One vote row (the unique key makes a double click a no-op) and its audit row."""
        session.add(RequestVote(request_id=request.id, voter=voter,  # type: ignore[arg-type]
                                decision="reject" if action == "reject" else "approve", at=now, reason=reason))
        audit.record(session, at=now, actor=voter, model_id=model.id, environment=request.environment, action=action,
                     to_version=request.version, reason=reason, request_id=str(request.id))

    def _decided(self, session: Session, request: ChangeRequest, model: RegisteredModel, result: str,
                 now: datetime) -> VoteOutcome:
        session.add(request)
        session.flush()
        view = self.view(session, request, model.name)
        notices.request_updated(session, view, now=now, model_id=model.id)  # type: ignore[arg-type]
        notices.request_decided(session, view, now=now, model_id=model.id)  # type: ignore[arg-type]
        return VoteOutcome(view, result)
