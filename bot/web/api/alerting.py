"""Status, alerts and silences: what a pipeline or an on-call tool needs without Slack.

Reads need `read` (as every GET); acknowledging and silencing need `alerts:write`, and the
token's name must be a deployer or admin in the policy, as for the card's buttons — the
same domain decisions, audited with the token's name as the actor.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from bot.web.api import schemas as s
from bot.web.api.deps import ModelName, Svc, Token, scoped

router = APIRouter()
ALERTS_WRITE = "alerts:write"
WRITE = {"security": [{"token": [ALERTS_WRITE]}]}
OptionalModel = Annotated[str | None, Query(min_length=1, max_length=64, examples=["churn"])]
Window = Annotated[str, Query(min_length=1, max_length=64, examples=["24h"],
                              description="compare this window with the one before it")]
Number = Annotated[int, Path(ge=1, le=2**31 - 1, examples=[1])]


@router.get("/status", response_model=dict[str, Any], tags=["monitoring"])
def status_overview(svc: Svc, t: Token, window: Window = "24h") -> Any:
    """One line per model and environment: headline metrics, uptime, drift, firing alerts (the JSON of
    `modelbot status --json`)."""
    from bot.domain.monitoring import status

    return status.overview(svc.registry, svc.status_query(None, _window(window)), limit=500).to_dict()


@router.get("/models/{model}/status", response_model=dict[str, Any], tags=["monitoring"])
def model_status(svc: Svc, t: Token, model: ModelName, environment: Annotated[str | None, Query(max_length=32)] = None,
                 window: Window = "24h") -> Any:
    """How one model is doing (the JSON of `modelbot status MODEL [ENV] --json`)."""
    from bot.domain.monitoring import status

    return status.model_status(svc.registry, model, environment, svc.status_query(model, _window(window))).to_dict()


@router.get("/alerts", response_model=s.AlertsOut, tags=["alerts"])
def alerts_now(svc: Svc, t: Token, model: OptionalModel = None) -> Any:
    """What is firing, pending and silenced now."""
    from bot.handlers.alerts import actions

    return actions(svc).overview(svc.clock(), model)


@router.post("/alerts/{alert}/acknowledge", response_model=s.AckOut, tags=["alerts"], openapi_extra=WRITE)
def acknowledge(svc: Svc, t: Token, alert: Number) -> Any:
    """Someone is on it: the alert's card says who. Acknowledging again changes nothing."""
    from bot.handlers.alerts import actions

    actor = scoped(t, ALERTS_WRITE)
    return actions(svc).acknowledge(alert, actor=actor, now=svc.clock()).to_dict()


@router.get("/alert-rules", response_model=s.RuleList, tags=["alerts"])
def alert_rules(svc: Svc, t: Token, model: OptionalModel = None) -> Any:
    from bot.handlers.alerts import rules

    return {"rules": [r.to_dict() for r in rules(svc).list(model)]}


@router.get("/silences", response_model=s.SilenceList, tags=["alerts"])
def silences(svc: Svc, t: Token, model: OptionalModel = None) -> Any:
    """Silences not ended yet, soonest end first."""
    from bot.handlers.alerts import actions

    return {"silences": [v.to_dict() for v in actions(svc).silences(svc.clock(), model)]}


@router.post("/silences", response_model=s.SilenceOut, status_code=201, tags=["alerts"], openapi_extra=WRITE)
def silence(svc: Svc, t: Token, body: s.SilenceIn) -> Any:
    """Mute a model's notifications (in one environment, or of one rule); evaluation goes on."""
    from bot.handlers.alerts import actions

    actor = scoped(t, ALERTS_WRITE)
    return actions(svc).silence(body.model, body.environment, body.duration, actor=actor, now=svc.clock(),
                                rule_id=body.rule_id, reason=body.reason).to_dict()


@router.delete("/silences/{silence_id}", response_model=s.SilenceOut, tags=["alerts"], openapi_extra=WRITE)
def unsilence(svc: Svc, t: Token, silence_id: Number) -> Any:
    """End a silence now; notifications resume."""
    from bot.handlers.alerts import actions

    actor = scoped(t, ALERTS_WRITE)
    return actions(svc).unsilence(silence_id, actor=actor, now=svc.clock()).to_dict()


def _window(raw: str) -> timedelta:
    from bot.domain.durations import parse_duration
    from bot.domain.errors import InvalidInput

    value = parse_duration(raw, "window")
    if not timedelta(minutes=1) <= value <= timedelta(days=90):
        raise InvalidInput("The window must be between 1m and 90d, like 24h.")
    return value



