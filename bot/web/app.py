"""The HTTP application: Slack's request URL, the health probe and Prometheus metrics.

One ASGI app serves every HTTP front end so they cannot drift: HTTP mode mounts Bolt at
`POST /slack/events`; Socket Mode passes no Bolt app and still gets `/healthz` and
`/metrics` (orchestrators probe both modes the same way). Later features add their routes
(the `/api/v1` REST API) as extra routers instead of editing this file.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import SlackRequestHandler, to_bolt_request, to_starlette_response
from slack_sdk.signature import SignatureVerifier
from starlette.concurrency import run_in_threadpool
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.observability import HTTP_REQUESTS, HTTP_SECONDS, REGISTRY
from bot.web.bodies import read_at_most

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger("modelbot.web")

SLACK_EVENTS_PATH = "/slack/events"
# Slack's payloads are a few KB (a slash command is capped at 4,000 characters of text);
# anything far bigger is not Slack, and reading it would only cost memory.
MAX_SLACK_BODY_BYTES = 1_000_000
# slack_sdk's verifier calls int() on the timestamp unguarded: anything else is refused first
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class ThreadedSlackRequestHandler(SlackRequestHandler):
    """Bolt's Starlette adapter, with the body read as a bounded stream, the signature checked
    before anything is parsed, and `App.dispatch` moved off the event loop.

    **Bounded.** The body is read chunk by chunk and refused with 413 at `MAX_SLACK_BODY_BYTES`,
    whether or not Content-Length announced it (chunked transfer encoding announces nothing):
    a 200 MB upload costs at most 1 MB of memory before it is refused.

    **Verified first.** Bolt parses the body (JSON or form) when it builds its request, before
    its own signature check runs, so unsigned junk (`[1,2]`, `null`, deeply nested JSON) used to
    reach the parser and end in a 500. Here the Slack signature and timestamp are checked on the
    raw bytes first (401 otherwise, as Bolt would answer), and a signed body whose shape Bolt
    cannot take (not a JSON object, a `payload` field that is not one) is a 400.

    **Off the loop.** Dispatch blocks until the listener has called `ack()`, polling every 10 ms
    with `time.sleep`, so on the event loop every Slack request would stall every other request
    (including `/healthz`). Running it in Starlette's thread pool keeps requests independent;
    the listener itself still runs in Bolt's own executor.
    """

    def __init__(self, app: App, signing_secret: str) -> None:
        super().__init__(app)
        self.verifier = SignatureVerifier(signing_secret)

    async def handle(self, req: Request, addition_context_properties: dict[str, Any] | None = None) -> Response:
        if req.method != "POST":
            return await super().handle(req, addition_context_properties)
        body = await read_at_most(req, MAX_SLACK_BODY_BYTES)
        if body is None:
            return _error(413, "request too large")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return _error(400, "invalid request")  # Slack only sends UTF-8 (and the verifier would raise)
        timestamp = req.headers.get("x-slack-request-timestamp") or ""
        signature = req.headers.get("x-slack-signature") or ""
        if not _TIMESTAMP.fullmatch(timestamp) or not self.verifier.is_valid(text, timestamp, signature):
            return _error(401, "invalid request")
        if not _bolt_can_parse(text, req.headers.get("content-type") or ""):
            return _error(400, "invalid request")
        try:
            bolt_request = to_bolt_request(req, body, addition_context_properties)
        except Exception:  # a signed body of a shape Bolt does not expect: the sender's mistake, not ours
            log.warning("signed Slack request with a body Bolt cannot read; answered 400", exc_info=True)
            return _error(400, "invalid request")
        bolt_response = await run_in_threadpool(self.app.dispatch, bolt_request)
        return to_starlette_response(bolt_response)


def _bolt_can_parse(body: str, content_type: str) -> bool:
    """Mirror of Bolt's `parse_body`: JSON bodies and a form's `payload` field must be JSON objects.
    Nesting deep enough to exhaust the parser's recursion counts as malformed."""
    try:
        if content_type.split(";")[0].strip().lower() == "application/json" or body.startswith("{"):
            return isinstance(json.loads(body), dict)
        payload = parse_qs(body).get("payload")
        return payload is None or isinstance(json.loads(payload[0]), dict)
    except (ValueError, RecursionError):
        return False


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class HttpMetricsMiddleware:
    """Counts and times every HTTP request by route *template*, so paths cannot explode label cardinality.

    A plain ASGI middleware rather than `@app.middleware("http")`: that one wraps the
    response in an extra task and queue, which costs more than the request it measures.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = _route_label(scope)
            method = scope.get("method", "GET")
            HTTP_SECONDS.labels(method, route).observe(time.perf_counter() - started)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()


def _route_label(scope: Scope) -> str:
    """The matched route's template, with the prefix of a mounted sub-app (`/api/v1/models/{name}`)."""
    route = scope.get("route")
    prefix = scope.get("root_path", "")[len(scope.get("app_root_path") or ""):]
    if isinstance(route, Mount):
        return f"{route.path}/unmatched"
    if route is None:  # nothing matched (inside a mounted sub-app, if prefix is set)
        return f"{prefix}/unmatched" if prefix else "unmatched"
    return prefix + getattr(route, "path", "?")


def create_web_app(
    services: Services,
    bolt_app: App | None = None,
    *,
    routers: Iterable[APIRouter] = (),
    mounts: Mapping[str, ASGIApp] | None = None,
) -> FastAPI:
    """Build the ASGI app. `bolt_app=None` (Socket Mode) serves only the operational routes.

    Other HTTP features plug in here rather than in a server of their own: `routers` are
    included as given, `mounts` are whole sub-apps under a prefix (`{"/api/v1": api_app}`),
    so one port, one metrics middleware and one graceful shutdown cover everything.
    """
    from bot.web.api.app import NO_TELEMETRY

    web = FastAPI(title="modelbot", docs_url=None, redoc_url=None, openapi_url=None, telemetry=NO_TELEMETRY)
    web.state.services = services
    web.add_middleware(HttpMetricsMiddleware)

    if bolt_app is not None:
        handler = ThreadedSlackRequestHandler(bolt_app, services.settings.slack_signing_secret or "")

        @web.post(SLACK_EVENTS_PATH, include_in_schema=False)
        async def slack_events(request: Request) -> Response:
            # the signature and timestamp are verified (401 otherwise) before the body is parsed
            return await handler.handle(request)

    @web.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        # A plain `def`: FastAPI runs it in the thread pool, so a database that hangs on
        # connect cannot freeze the event loop that serves Slack.
        if services.db.ping():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)

    @web.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        web.include_router(router)
    for prefix, sub_app in (mounts or {}).items():
        web.mount(prefix, sub_app)
        # Starlette's mount pattern (`.*`) stops at a newline, so `/api/v1/models/a%0A` fell through to
        # this app's `{"detail": "Not Found"}` instead of the sub-app's own error shape (schemathesis).
        mount = web.router.routes[-1]
        if isinstance(mount, Mount):
            mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
    return web
