"""`POST /integrations/mlflow/webhook`: MLflow's registry webhooks, verified the way MLflow signs them.

MLflow ≥ 3.3 (mlflow/webhooks/delivery.py) sends each delivery as a JSON POST
`{"entity", "action", "timestamp", "data"}` with three headers:

- `X-MLflow-Delivery-Id`: a UUID per delivery; MLflow's own HTTP retries (429/5xx, up to
  MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES) send it again with the same id;
- `X-MLflow-Timestamp`: unix seconds when it signed;
- `X-MLflow-Signature`: `v1,` + base64(HMAC-SHA256(secret, f"{delivery_id}.{timestamp}.{raw body}")),
  the Standard Webhooks scheme (space-separated when several signatures are sent).

A delivery is refused (401, nothing changes) unless the signature matches the raw body in
constant time and the timestamp is within five minutes of our clock (MLflow's documented
receiver uses the same 300 s); a known delivery id is answered `duplicate` and changes
nothing (`bot.domain.mlflow.inbound`). When reading MLflow back fails, the answer is 503, so
MLflow retries; whatever is still lost, the poll brings in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bot.config.settings import named_secret
from bot.domain.errors import Unavailable
from bot.domain.mlflow.source import MlflowError
from bot.web.bodies import read_at_most

if TYPE_CHECKING:
    from bot.domain.mlflow.inbound import MlflowSync
    from bot.services import Services

log = logging.getLogger("modelbot.mlflow")

WEBHOOK_PATH = "/integrations/mlflow/webhook"
DELIVERY_HEADER = "x-mlflow-delivery-id"
TIMESTAMP_HEADER = "x-mlflow-timestamp"
SIGNATURE_HEADER = "x-mlflow-signature"
SIGNATURE_VERSION = "v1"
TOLERANCE_S = 300
# MLflow's payloads are names, versions, tags and descriptions: a few KB
MAX_BODY_BYTES = 256_000
MAX_DELIVERY_ID = 64


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The `X-MLflow-Signature` value MLflow sends for this delivery."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode("utf-8"), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def refusal(secret: str, headers: Mapping[str, str], body: bytes, *, now: float,
            tolerance: int = TOLERANCE_S) -> str | None:
    """Why this delivery is not MLflow's (one sentence), or None when it is."""
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    delivery_id = lowered.get(DELIVERY_HEADER, "").strip()
    timestamp = lowered.get(TIMESTAMP_HEADER, "").strip()
    signatures = lowered.get(SIGNATURE_HEADER, "").split()
    if not delivery_id or not timestamp or not signatures:
        return "missing X-MLflow-Delivery-Id, X-MLflow-Timestamp or X-MLflow-Signature"
    if len(delivery_id) > MAX_DELIVERY_ID or not delivery_id.isprintable():
        return "the delivery id is not one MLflow sends"
    if not timestamp.isdigit() or len(timestamp) > 12:
        return "the timestamp is not unix seconds"
    if abs(now - int(timestamp)) > tolerance:
        return f"the timestamp is more than {tolerance} s away from now (a replay, or a clock that is off)"
    expected = base64.b64decode(sign(secret, delivery_id, timestamp, body).partition(",")[2])
    for candidate in signatures:
        version, _, value = candidate.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, given):
            return None
    return "the signature does not match the body (a different secret, or a body changed on the way)"


def router(services: Services) -> APIRouter:
    """The route, bound to a sync built once (an invalid `[mlflow]` stops start-up here)."""
    from bot.config.mlflow import mlflow_config

    settings = mlflow_config(services.policy)
    sync: MlflowSync | None = None
    if settings is not None:
        from bot.domain.mlflow.inbound import MlflowSync
        from bot.sources.mlflow import sync_client

        sync = MlflowSync(services.registry, services.policy, settings, sync_client(settings), clock=services.clock)
    api = APIRouter()

    @api.post(WEBHOOK_PATH, include_in_schema=False)
    async def mlflow_webhook(request: Request) -> JSONResponse:
        if sync is None or settings is None:
            return _error(404, "MLflow sync is not configured here: add an [mlflow] section to modelbot.toml.")
        secret = named_secret(settings.webhook_secret_env)
        if not secret:
            log.warning("refused an MLflow webhook: no secret (set webhook_secret_env in [mlflow] and that variable)")
            return _error(503, "This modelbot has no webhook secret configured, so it cannot verify deliveries.")
        body = await read_at_most(request, MAX_BODY_BYTES)
        if body is None:
            return _error(413, "request too large")
        reason = refusal(secret, request.headers, body, now=time.time())
        if reason is not None:
            log.warning("refused an MLflow webhook: %s", reason)
            return _error(401, f"Refused: {reason}.")
        parsed = _delivery(request.headers, body)
        if isinstance(parsed, str):
            return _error(400, parsed)
        try:
            outcome = await run_in_threadpool(sync.receive, parsed)
        except (MlflowError, Unavailable) as exc:
            log.warning("MLflow webhook %s (%s) not applied, MLflow will retry: %s", parsed.delivery_id, parsed.event,
                        exc)
            return _error(503, str(exc))
        log.info("MLflow webhook %s %s %s: %s", parsed.delivery_id, parsed.event, outcome.model or "",
                 outcome.summary() if outcome.status != "duplicate" else "duplicate")
        return JSONResponse({"status": outcome.status, "summary": outcome.summary()})

    return api


def _delivery(headers: Mapping[str, str], body: bytes) -> Any:
    """The verified body as a Delivery, or one sentence saying what is wrong with it."""
    from bot.domain.mlflow.inbound import Delivery

    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return "The body is not JSON."
    if not isinstance(document, dict) or not isinstance(document.get("data"), dict):
        return "The body is not an MLflow webhook payload ({\"entity\", \"action\", \"data\"})."
    event = f"{document.get('entity')}.{document.get('action')}"
    timestamp = int(headers[TIMESTAMP_HEADER])
    return Delivery(delivery_id=headers[DELIVERY_HEADER].strip(), event=event, data=document["data"],
                    sent_at=datetime.fromtimestamp(timestamp, UTC))


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
