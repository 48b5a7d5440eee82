"""The REST API under /api/v1 for CI/CD and serving layers.

FastAPI because it shares pydantic with SQLModel, generates the OpenAPI 3 document people
point their clients and schemathesis at, and runs our synchronous domain calls in its thread
pool. Every request needs a token (`Authorization: Bearer mbt_…`); writes need a scope and
are audited with the token's name as the actor. Errors always look like
`{"error": {"code": "...", "message": "..."}}`.
"""



import math
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.domain.errors import ModelbotError, Unavailable
from bot.domain.registry import NewVersion
from bot.domain.samples import SampleIn as DomainSample
from bot.domain.samples import Samples
from bot.domain.tokens import Tokens, TokenView, require_scope
from bot.web import api_schemas as s

if TYPE_CHECKING:
    from bot.runtime import Services

MAX_BODY_BYTES = 5 * 1024 * 1024
DEFAULT_RATE_PER_SECOND = 20.0
DEFAULT_BURST = 60
TOUCH_EVERY = timedelta(minutes=5)
ERRORS = {code: {"model": s.ErrorOut} for code in (400, 401, 403, 404, 409, 413, 422, 429, 503)}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


class TokenBuckets:
    """Per-token rate limit (token bucket, per process): bursts allowed, a steady rate enforced."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: int) -> float:
        """0 when allowed, else the seconds to wait."""
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


class BodyLimit:
    """413 for bodies over the limit, whether or not Content-Length announces them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(scope, receive, send, self.limit)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise ApiError(413, "payload_too_large", f"Request bodies are limited to {self.limit:,} bytes.")
            return message

        await self.app(scope, limited, send)


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = error_response(413, "payload_too_large", f"Request bodies are limited to {limit:,} bytes.")
    await response(scope, receive, send)


def create_api_app(services: "Services") -> FastAPI:
    tokens = Tokens(services.registry)
    samples = Samples(services.registry)
    rate = float(os.environ.get("MODELBOT_API_RATE_PER_SECOND") or DEFAULT_RATE_PER_SECOND)
    buckets = TokenBuckets(rate if math.isfinite(rate) and rate > 0 else DEFAULT_RATE_PER_SECOND, DEFAULT_BURST)
    api = FastAPI(
        title="modelbot API", version="1", openapi_url="/openapi.json", docs_url=None, redoc_url=None,
        description="Register versions, read what serves where, request and approve promotions, push metrics. "
        "Authenticate with `Authorization: Bearer <token>` (create one with `modelbot token create`).",
        responses=ERRORS,  # type: ignore[arg-type]
    )
    api.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

    @api.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @api.exception_handler(ModelbotError)
    async def _domain_error(request: Request, exc: ModelbotError) -> JSONResponse:
        status = 503 if isinstance(exc, Unavailable) else exc.http_status
        return error_response(status, exc.code, exc.message)

    @api.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error_response(422, "invalid_request", f"{where or 'body'}: {first.get('msg', 'invalid')}")

    @api.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    def token(request: Request) -> TokenView:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret:
            raise ApiError(401, "unauthorized", "Send a token: Authorization: Bearer mbt_… "
                           "(create one with `modelbot token create`).", {"WWW-Authenticate": "Bearer"})
        found = tokens.authenticate(secret.strip(), now=services.clock())
        if found is None:
            raise ApiError(401, "unauthorized", "That token is unknown or revoked.", {"WWW-Authenticate": "Bearer"})
        now = services.clock()
        if found.last_used_at is None or now - found.last_used_at > TOUCH_EVERY:
            tokens.touch(found.id, now)  # at most one write per token per few minutes
        wait = buckets.take(found.id)
        if wait:
            raise ApiError(429, "rate_limited", f"Token {found.name} is over its rate limit; retry in "
                           f"{math.ceil(wait)} s.", {"Retry-After": str(math.ceil(wait))})
        return found

    Token = Annotated[TokenView, Depends(token)]
    ModelName = Annotated[str, Path(min_length=1, max_length=64, examples=["churn"])]
    Env = Annotated[str, Path(min_length=1, max_length=32, examples=["production"])]
    Offset = Annotated[int, Query(ge=0, le=10_000_000)]
    Limit = Annotated[int, Query(ge=1, le=500)]
    RequestId = Annotated[int, Path(ge=1, le=2**31 - 1, examples=[1])]

    def scoped(t: TokenView, scope: str) -> str:
        require_scope(t, scope)
        return t.name

    @api.get("/models", response_model=s.ModelPage, tags=["registry"])
    def list_models(t: Token, offset: Offset = 0, limit: Limit = 50) -> Any:
        page = services.registry.list_models(offset=offset, limit=limit)
        return {"total": page.total, "offset": page.offset, "models": [m.to_dict() for m in page.items]}

    @api.get("/models/{model}", response_model=s.ModelOut, tags=["registry"])
    def get_model(t: Token, model: ModelName) -> Any:
        return services.registry.get_model(model).to_dict()

    @api.get("/models/{model}/versions", response_model=s.VersionPage, tags=["registry"])
    def list_versions(t: Token, model: ModelName, offset: Offset = 0, limit: Limit = 20) -> Any:
        page = services.registry.list_versions(model, offset=offset, limit=limit)
        return {"model": services.registry.get_model(model).name, "total": page.total, "offset": page.offset,
                "versions": [v.to_dict() for v in page.items]}

    @api.post("/models/{model}/versions", response_model=s.VersionOut, status_code=201, tags=["registry"])
    def register(t: Token, model: ModelName, body: s.VersionIn) -> Any:
        actor = scoped(t, "versions:write")
        version = services.registry.register(NewVersion(
            model=model, artifact_uri=body.artifact_uri, actor=actor, metrics=body.metrics, params=body.params,
            tags=body.tags, run_id=body.run_id, source=body.source, dataset_fingerprint=body.dataset_fingerprint,
            description=body.description,
        ))
        return version.to_dict()

    @api.get("/models/{model}/versions/{ref}", response_model=s.VersionOut, tags=["registry"])
    def show(t: Token, model: ModelName,
             ref: Annotated[str, Path(min_length=1, max_length=64, examples=["latest", "2", "@staging"])]) -> Any:
        return services.registry.show(model, ref).to_dict()

    @api.get("/models/{model}/environments/{environment}", response_model=s.EnvironmentOut, tags=["serving"])
    def serving_state(t: Token, model: ModelName, environment: Env) -> Any:
        """What a serving layer polls: stable, canary, weight and artifact URIs."""
        return services.registry.environment_state(model, environment).to_dict()

    @api.get("/models/{model}/history", response_model=s.HistoryOut, tags=["registry"])
    def history(t: Token, model: ModelName, environment: Annotated[str | None, Query(max_length=32)] = None,
                limit: Limit = 50) -> Any:
        entries = services.registry.history(model, environment, limit=limit)
        return {"model": services.registry.get_model(model).name, "environment": environment,
                "events": [e.to_dict() for e in entries]}

    @api.post("/models/{model}/environments/{environment}/promotions", response_model=s.ChangeOut,
              status_code=201, tags=["promotions"])
    def promote(t: Token, model: ModelName, environment: Env, body: s.PromotionIn) -> Any:
        """Opens a request (the approval card appears in Slack), or moves at once when the
        environment needs no approvals."""
        actor = scoped(t, "promotions:request")
        outcome = services.deployments.request_promotion(model, body.version, environment, requester=actor,
                                                         reason=body.reason)
        return _change(outcome)

    @api.post("/models/{model}/environments/{environment}/rollback", response_model=s.ChangeOut,
              status_code=201, tags=["promotions"])
    def rollback(t: Token, model: ModelName, environment: Env, body: s.RollbackIn) -> Any:
        actor = scoped(t, "promotions:request")
        return _change(services.deployments.rollback(model, environment, actor=actor, to=body.to, reason=body.reason))

    @api.get("/requests", response_model=s.RequestList, tags=["promotions"])
    def list_requests(t: Token, status: Annotated[str, Query(pattern="^(pending|all)$")] = "pending",
                      model: Annotated[str | None, Query(max_length=64)] = None) -> Any:
        found = services.deployments.list_requests(pending_only=status == "pending", model=model)
        return {"requests": [r.to_dict() for r in found]}

    @api.get("/requests/{request_id}", response_model=s.RequestOut, tags=["promotions"])
    def get_request(t: Token, request_id: RequestId) -> Any:
        return services.deployments.get_request(request_id).to_dict()

    @api.post("/requests/{request_id}/approve", response_model=s.VoteOut, tags=["promotions"])
    def approve(t: Token, request_id: RequestId, body: s.ApproveIn) -> Any:
        actor = scoped(t, "promotions:approve")
        outcome = services.deployments.vote(request_id, actor, "approve", override_reason=body.override_reason)
        return {"result": outcome.result, "request": outcome.request.to_dict(), "notes": outcome.notes}

    @api.post("/requests/{request_id}/reject", response_model=s.VoteOut, tags=["promotions"])
    def reject(t: Token, request_id: RequestId, body: s.RejectIn) -> Any:
        actor = scoped(t, "promotions:approve")
        outcome = services.deployments.vote(request_id, actor, "reject", reason=body.reason)
        return {"result": outcome.result, "request": outcome.request.to_dict(), "notes": outcome.notes}

    @api.post("/metrics", response_model=s.SamplesOut, status_code=201, tags=["monitoring"])
    def push_metrics(t: Token, body: s.SamplesIn) -> Any:
        """Up to 10,000 samples per call, all recorded or none."""
        scoped(t, "metrics:write")
        recorded = samples.record(
            [DomainSample(x.model, x.environment, x.metric, x.value, x.at, x.version) for x in body.samples],
            source=f"api:{t.name}",
        )
        return {"recorded": recorded}

    return api


def _change(outcome: Any) -> dict[str, Any]:
    if outcome.move is not None:
        return {"outcome": "moved", "state": outcome.move.state.to_dict(), "audit": outcome.move.audit.to_dict(),
                "request": None}
    return {"outcome": "requested", "state": None, "audit": None, "request": outcome.request.to_dict()}
