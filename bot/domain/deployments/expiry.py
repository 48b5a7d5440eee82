"""Requests nobody decided: expired past their deadline, or moot because the environment
already is what they ask for. The scheduler sweeps every minute; votes check on their own."""

from __future__ import annotations

from bot.domain import notices
from bot.domain.deployments import rules
from bot.domain.deployments.base import DeploymentsBase
from storage.queries import deployments as dq


class Expiry(DeploymentsBase):
    def expire_due(self) -> int:
        """Expire pending requests past their deadline, and close the ones that a change made
        outside the rule book (an MLflow alias sync, an operator's `Registry.promote`) made moot.
        Returns how many expired."""
        now = self.clock()
        with self.registry.writing() as session:
            due = dq.due_requests_locked(session, now)
            for request in due:
                model = dq.model_by_id(session, request.model_id)
                self.close(session, model, request, "expired", actor=notices.SYSTEM_ACTOR,
                           reason="no decision before the deadline", now=now)
            for request, stable, canary in dq.pending_with_pointers_locked(session):
                why = rules.moot_reason(request.kind, request.version, request.environment, stable, canary)
                if why is not None:
                    model = dq.model_by_id(session, request.model_id)
                    self.close(session, model, request, "moot", actor=notices.SYSTEM_ACTOR, reason=why, now=now)
            return len(due)
