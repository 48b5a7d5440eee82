"""Reading requests: one, a list, and the ones a person may approve now (App Home)."""

from __future__ import annotations

from bot.domain.deployments import rules
from bot.domain.deployments.base import DeploymentsBase
from bot.domain.deployments.views import RequestView
from bot.domain.errors import NotFound
from storage.queries import deployments as dq
from storage.queries import registry as queries


class Reads(DeploymentsBase):
    def get_request(self, request_id: int | str) -> RequestView:
        number = rules.request_number(request_id)
        with self.registry.reading() as session:
            request = dq.request(session, number)
            if request is None:
                raise NotFound(f"There is no request {number}: `requests` lists the pending ones.")
            return self.view(session, request, dq.model_by_id(session, request.model_id).name)

    def list_requests(self, *, pending_only: bool = True, model: str | None = None, limit: int = 50) -> list[RequestView]:
        with self.registry.reading() as session:
            model_id = self.registry.model_row(session, model).id if model is not None else None
            rows = dq.requests_page(session, pending_only=pending_only, model_id=model_id, limit=limit)
            models = queries.models_by_ids(session, {r.model_id for r in rows})
            return [self.view(session, r, models[r.model_id].name) for r in rows]

    def pending_for(self, actor: str, limit: int = 20) -> list[RequestView]:
        """Pending requests this person may approve now (for App Home)."""
        roles = self.roles(actor)
        return [
            r for r in self.list_requests(pending_only=True, limit=200)
            if rules.approval_refusal(roles, self.policy.env(r.environment), r.requester, r.id) is None
        ][:limit]
