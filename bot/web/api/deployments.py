"""Deployment routes: promotions, rollbacks, requests and votes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from bot.web.api import schemas as s
from bot.web.api.deps import Env, ModelName, RequestId, Svc, Token, scoped

router = APIRouter()


@router.post("/models/{model}/environments/{environment}/promotions", response_model=s.ChangeOut,
          status_code=201, tags=["promotions"])
def promote(svc: Svc, t: Token, model: ModelName, environment: Env, body: s.PromotionIn) -> Any:
    """Opens a request (the approval card appears in Slack), or moves at once when the
    environment needs no approvals."""
    actor = scoped(t, "promotions:request")
    outcome = svc.deployments.request_promotion(model, body.version, environment, requester=actor,
                                                     reason=body.reason)
    return _change(outcome)


@router.post("/models/{model}/environments/{environment}/rollback", response_model=s.ChangeOut,
          status_code=201, tags=["promotions"])
def rollback(svc: Svc, t: Token, model: ModelName, environment: Env, body: s.RollbackIn) -> Any:
    actor = scoped(t, "promotions:request")
    return _change(svc.deployments.rollback(model, environment, actor=actor, to=body.to, reason=body.reason))


@router.get("/requests", response_model=s.RequestList, tags=["promotions"])
def list_requests(svc: Svc, t: Token, status: Annotated[str, Query(pattern="^(pending|all)$")] = "pending",
                  model: Annotated[str | None, Query(max_length=64)] = None) -> Any:
    found = svc.deployments.list_requests(pending_only=status == "pending", model=model)
    return {"requests": [r.to_dict() for r in found]}


@router.get("/requests/{request_id}", response_model=s.RequestOut, tags=["promotions"])
def get_request(svc: Svc, t: Token, request_id: RequestId) -> Any:
    return svc.deployments.get_request(request_id).to_dict()


@router.post("/requests/{request_id}/approve", response_model=s.VoteOut, tags=["promotions"])
def approve(svc: Svc, t: Token, request_id: RequestId, body: s.ApproveIn) -> Any:
    actor = scoped(t, "promotions:approve")
    outcome = svc.deployments.vote(request_id, actor, "approve", override_reason=body.override_reason)
    return {"result": outcome.result, "request": outcome.request.to_dict(), "notes": outcome.notes}


@router.post("/requests/{request_id}/reject", response_model=s.VoteOut, tags=["promotions"])
def reject(svc: Svc, t: Token, request_id: RequestId, body: s.RejectIn) -> Any:
    actor = scoped(t, "promotions:approve")
    outcome = svc.deployments.vote(request_id, actor, "reject", reason=body.reason)
    return {"result": outcome.result, "request": outcome.request.to_dict(), "notes": outcome.notes}


def _change(outcome: Any) -> dict[str, Any]:
    if outcome.move is not None:
        return {"outcome": "moved", "state": outcome.move.state.to_dict(), "audit": outcome.move.audit.to_dict(),
                "request": None}
    return {"outcome": "requested", "state": None, "audit": None, "request": outcome.request.to_dict()}
