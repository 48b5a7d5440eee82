"""Deployment routes: promotions, rollbacks, canaries, requests and votes.

Each route calls one decision of `bot.domain.deployments` with the token's name as the actor;
the domain's refusals become 403/409 through the one mapping in `errors.py`.
"""

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
    environment needs no approvals. A running canary refuses it (409) unless `abort_canary`."""
    actor = scoped(t, "promotions:request")
    return _change(svc.deployments.request_promotion(
        model, body.version, environment, requester=actor, reason=body.reason, override_reason=body.override_reason,
        abort_canary=body.abort_canary,
    ))


@router.post("/models/{model}/environments/{environment}/rollback", response_model=s.ChangeOut,
             status_code=201, tags=["promotions"])
def rollback(svc: Svc, t: Token, model: ModelName, environment: Env, body: s.RollbackIn) -> Any:
    actor = scoped(t, "promotions:request")
    return _change(svc.deployments.rollback(model, environment, actor=actor, to=body.to, reason=body.reason))


@router.post("/requests/{request_id}/cancel", response_model=s.RequestOut, tags=["promotions"])
def cancel(svc: Svc, t: Token, request_id: RequestId, body: s.ReasonIn) -> Any:
    """The requester (the token that asked) or an admin withdraws a pending request."""
    actor = scoped(t, "promotions:request")
    return svc.deployments.cancel(request_id, actor, reason=body.reason).to_dict()


@router.post("/models/{model}/environments/{environment}/canary", response_model=s.CanaryOut, status_code=201,
             tags=["canary"])
def canary(svc: Svc, t: Token, model: ModelName, environment: Env, body: s.CanaryIn) -> Any:
    """Start a canary beside the stable version (through `canary_approvals`), or move its weight."""
    actor = scoped(t, "promotions:request")
    outcome = svc.deployments.set_canary(model, body.version, environment, body.percent, actor=actor,
                                         reason=body.reason, override_reason=body.override_reason)
    if outcome.request is not None:
        return {"outcome": "requested", "state": None, "request": outcome.request.to_dict()}
    return {"outcome": "changed", "state": outcome.state.to_dict(), "request": None}


@router.post("/models/{model}/environments/{environment}/canary/promote", response_model=s.ChangeOut,
             status_code=201, tags=["canary"])
def canary_promote(svc: Svc, t: Token, model: ModelName, environment: Env, body: s.ReasonIn) -> Any:
    """100 %: the canary becomes the stable version, through the environment's approvals."""
    actor = scoped(t, "promotions:request")
    return _change(svc.deployments.promote_canary(model, environment, actor=actor, reason=body.reason))


@router.post("/models/{model}/environments/{environment}/canary/abort", response_model=s.CanaryOut,
             tags=["canary"])
def canary_abort(svc: Svc, t: Token, model: ModelName, environment: Env, body: s.ReasonIn) -> Any:
    actor = scoped(t, "promotions:request")
    state = svc.deployments.abort_canary(model, environment, actor=actor, reason=body.reason)
    return {"outcome": "changed", "state": state.to_dict(), "request": None}


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
    return _vote(svc.deployments.vote(request_id, actor, "approve", override_reason=body.override_reason))


@router.post("/requests/{request_id}/reject", response_model=s.VoteOut, tags=["promotions"])
def reject(svc: Svc, t: Token, request_id: RequestId, body: s.RejectIn) -> Any:
    actor = scoped(t, "promotions:approve")
    return _vote(svc.deployments.vote(request_id, actor, "reject", reason=body.reason))


def _vote(outcome: Any) -> dict[str, Any]:
    return {"result": outcome.result, "request": outcome.request.to_dict(), "notes": outcome.notes}


def _change(outcome: Any) -> dict[str, Any]:
    if outcome.move is not None:
        return {"outcome": "moved", "state": outcome.move.state.to_dict(), "audit": outcome.move.audit.to_dict(),
                "request": None}
    return {"outcome": "requested", "state": None, "audit": None, "request": outcome.request.to_dict()}
