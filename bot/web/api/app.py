"""The REST API under /api/v1 for CI/CD and serving layers.

FastAPI because it shares pydantic with SQLModel, generates the OpenAPI 3 document people
point their clients and schemathesis at, and runs our synchronous domain calls in its thread
pool. Every request needs a token (`Authorization: Bearer mbt_…`); every GET needs the scope
`read`, every write the scope its route names, and decisions are audited with the token's name
as the actor. The OpenAPI document lists the scopes and says which one each operation needs.
Errors always look like `{"error": {"code": "...", "message": "..."}}`. Routes live by area
beside this module.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from bot.domain.tokens import READ_SCOPE, SCOPES
from bot.services import Services
from bot.web.api import alerting, deployments, errors, monitoring, registry, serving
from bot.web.api import schemas as s
from bot.web.api.deps import (
    DEFAULT_BURST,
    MAX_BODY_BYTES,
    ApiContext,
    BodyLimit,
    TokenBuckets,
)
from bot.web.api.fast_path import WriteFence
from bot.web.api.serving_cache import ServingCache
from bot.web.api.token_cache import CachedTokens

__all__ = ["DEFAULT_BURST", "TokenBuckets", "create_api_app"]

# FastAPI asks OpenTelemetry on every request whether tracing, metrics or logs are configured:
# 8 % of a register's CPU in a py-spy profile, for providers modelbot never sets (it serves
# Prometheus metrics at /metrics).
NO_TELEMETRY: dict[str, Any] = {"tracing": False, "metrics": False, "logs": False}
ERRORS = {code: {"model": s.ErrorOut} for code in (400, 401, 403, 404, 409, 413, 422, 429, 503)}


def create_api_app(services: Services) -> FastAPI:
    buckets = TokenBuckets(services.settings.api_rate_per_second, DEFAULT_BURST)
    api = FastAPI(
        title="modelbot API", version="1", openapi_url="/openapi.json", docs_url=None, redoc_url=None,
        description="Register versions, read what serves where, request and approve promotions, push metrics, "
        "watch and silence alerts. Authenticate with `Authorization: Bearer <token>` (create one with `modelbot "
        "token create --name NAME --scopes S1,S2`). Scopes:\n\n"
        + "\n".join(f"- `{scope}`: {what}" for scope, what in SCOPES.items()),
        responses=ERRORS,  # type: ignore[arg-type]
        telemetry=NO_TELEMETRY,
    )
    tokens = CachedTokens(services.registry)
    api.state.context = ApiContext(services=services, tokens=tokens, buckets=buckets)
    api.state.serving = cache = ServingCache(services.registry.environment_state, lambda: services.serving_feed)
    errors.install(api)
    for area in (registry, serving, deployments, monitoring, alerting):
        api.include_router(area.router)
    api.add_middleware(WriteFence, cache=cache)
    api.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    _document_scopes(api)
    return api


def _document_scopes(api: FastAPI) -> None:
    """The bearer scheme, and on every operation the scope it needs: `read` for every GET (enforced
    in deps.token), a write's own scope where its route declares it (`openapi_extra`)."""
    build = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is not None:
            return api.openapi_schema
        spec = build()
        spec.setdefault("components", {})["securitySchemes"] = {
            "token": {"type": "http", "scheme": "bearer", "description": "An API token: `modelbot token create`."}}
        for item in spec.get("paths", {}).values():
            for method, operation in item.items():
                if method in ("get", "head"):
                    operation["security"] = [{"token": [READ_SCOPE]}]
                else:
                    operation.setdefault("security", [{"token": []}])
        api.openapi_schema = spec
        return spec

    api.openapi = openapi  # type: ignore[method-assign]
