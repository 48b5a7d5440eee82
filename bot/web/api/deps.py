"""What every API route depends on: the services, the caller's token (authenticated, rate
limited, scope-checked) and the shapes of path and query parameters. Body size is capped
before anything is parsed.

Scopes: every GET needs `read`, checked here once for every route (so a route added later
cannot forget it); a write names its scope with `scoped(t, SCOPE)`. A missing scope is 403
and, like a missing token, answered before any decision is asked for: no audit row."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.domain.tokens import READ_SCOPE, TokenView, require_scope
from bot.services import Services
from bot.web.api.errors import ApiError, error_response
from bot.web.api.token_cache import CachedTokens

MAX_BODY_BYTES = 5 * 1024 * 1024
DEFAULT_BURST = 60
TOUCH_EVERY = timedelta(minutes=5)
READ_METHODS = ("GET", "HEAD")


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


@dataclass(frozen=True)
class ApiContext:
    """What the routes share, kept on `app.state.context`."""

    services: Services
    tokens: CachedTokens
    buckets: TokenBuckets


def context(request: Request) -> ApiContext:
    return request.app.state.context  # type: ignore[no-any-return]


async def services(request: Request) -> Services:
    return context(request).services


async def token(request: Request) -> TokenView:
    ctx = context(request)
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret:
        raise ApiError(401, "unauthorized", "Send a token: Authorization: Bearer mbt_… "
                       "(create one with `modelbot token create`).", {"WWW-Authenticate": "Bearer"})
    now = ctx.services.clock()
    found = ctx.tokens.cached(secret.strip()) or await run_in_threadpool(ctx.tokens.authenticate, secret.strip(),
                                                                        now=now)
    if found is None:
        raise ApiError(401, "unauthorized", "That token is unknown or revoked.", {"WWW-Authenticate": "Bearer"})
    if found.last_used_at is None or now - found.last_used_at > TOUCH_EVERY:
        await run_in_threadpool(ctx.tokens.touch, found.id, now)  # at most one write per token per few minutes
    wait = ctx.buckets.take(found.id)
    if wait:
        raise ApiError(429, "rate_limited", f"Token {found.name} is over its rate limit; retry in "
                       f"{math.ceil(wait)} s.", {"Retry-After": str(math.ceil(wait))})
    if request.method in READ_METHODS:
        require_scope(found, READ_SCOPE)
    return found


def scoped(t: TokenView, scope: str) -> str:
    """The token's name, the actor of what it does, once it is known to hold `scope`."""
    require_scope(t, scope)
    return t.name


Token = Annotated[TokenView, Depends(token)]
Svc = Annotated[Services, Depends(services)]
ModelName = Annotated[str, Path(min_length=1, max_length=64, examples=["churn"])]
Env = Annotated[str, Path(min_length=1, max_length=32, examples=["production"])]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Limit = Annotated[int, Query(ge=1, le=500)]
RequestId = Annotated[int, Path(ge=1, le=2**31 - 1, examples=[1])]


class BodyLimit:
    """413 for bodies over the limit, whether or not Content-Length announces them.

    The body is read here, up to the limit, before the app sees the request, then handed on
    as one message. Refusing from inside the app is not possible: FastAPI turns any error
    raised while it reads the body into a 400, so a chunked body over the limit (which no
    Content-Length announces) would get 400 instead of the documented 413.
    """

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
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            seen += len(message.get("body", b""))
            if seen > self.limit:
                await _too_large(scope, receive, send, self.limit)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as Starlette expects

        await self.app(scope, replay, send)


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = error_response(413, "payload_too_large", f"Request bodies are limited to {limit:,} bytes.")
    await response(scope, receive, send)
