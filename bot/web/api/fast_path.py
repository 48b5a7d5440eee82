"""The serving-state read without the framework, when everything it needs is in memory.

Serving replicas read one route thousands of times a second, and a promotion wakes every
held watch at once. Routing, dependency injection and parameter validation in front of the
route cost several times the read itself (measured on this machine: about 1,400 answers/s
through FastAPI against 4,000/s from a bare ASGI handler; in a profile of 1,000 watches
re-arming, route matching alone took a fifth of the CPU). So `ServingFastPath` wraps the
whole web app and answers `GET /api/v1/models/{model}/environments/{environment}` itself
when the token is in the token cache, valid, holds `read` and is not due a last-used stamp,
its rate limit allows the request, the query parses, and the state is one the cache has
served before. It calls the route's own `answer()`, so the bytes are the same, and it counts
the request in the same Prometheus metrics under the route's template. Anything else — a
token not cached, a refusal, a parameter to reject, a state never read — goes on to the app
and its FastAPI route, which says what is wrong in the API's error shape.

`WriteFence`, inside the API app, fences writes: after a successful write that may move a
pointer, before the answer leaves, the cache waits until the serving feed has delivered
what it changed, so a client that promotes and then reads through the same process reads
its promotion.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from datetime import datetime
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.domain.errors import ModelbotError
from bot.domain.tokens import TokenView, hash_token
from bot.observability import HTTP_REQUESTS, HTTP_SECONDS
from bot.web.api.deps import TOUCH_EVERY, ApiContext
from bot.web.api.errors import error_response, status_of
from bot.web.api.serving import Reply, answer, wait_seconds
from bot.web.api.serving_cache import Entry, ServingCache

ROUTE = "/models/{model}/environments/{environment}"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Writes that cannot move a pointer (registering a version, pushing metrics) skip the fence:
# it would cost them a thread hop and a query (or a NOTIFY round trip) for nothing.
NO_MOVE = re.compile(r"/models/[^/]+/versions|/metrics")


class ServingFastPath:
    """Wraps the web app; `prefix` is where the API is mounted (`/api/v1`)."""

    def __init__(self, app: ASGIApp, context: ApiContext, cache: ServingCache, prefix: str) -> None:
        self.app, self.context, self.cache = app, context, cache
        self.path = re.compile(re.escape(prefix) + r"/models/(?P<model>[^/]+)/environments/(?P<environment>[^/]+)")
        self.label = prefix + ROUTE
        self.seconds = HTTP_SECONDS.labels("GET", self.label)
        self.answered = {status: HTTP_REQUESTS.labels("GET", self.label, str(status)) for status in (200, 304)}
        self._reading: dict[str, asyncio.Future[TokenView | None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = self.path.fullmatch(scope["path"])
            if match is not None and await self._read(scope, receive, send, match["model"], match["environment"]):
                return
        await self.app(scope, receive, send)

    async def _read(self, scope: Scope, receive: Receive, send: Send, model: str, environment: str) -> bool:
        """True when answered here; False: let the app answer."""
        started = time.perf_counter()
        if not self.cache.knows(model, environment):
            return False
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        try:
            revision = int(query["revision"]) if "revision" in query else None
            if revision is not None and not 0 <= revision < 2**31:
                return False
            wait_s = wait_seconds(revision, query.get("wait"))
        except (ValueError, ModelbotError):
            return False
        headers = dict(reversed(scope["headers"]))  # the first of repeated headers, as Starlette reads them
        scheme, _, secret = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return False
        now = self.context.services.clock()
        token = await self._token(secret.strip(), now)
        if token is None or "read" not in token.scopes:
            return False
        if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
            return False
        if self.context.buckets.take(token.id):
            return False  # over the limit: the route answers 429 with Retry-After
        if_none_match = headers.get(b"if-none-match")
        try:
            reply = await answer(self.cache, model, environment, revision, wait_s,
                                 if_none_match.decode("latin-1") if if_none_match else None)
        except ModelbotError as exc:  # a re-read failed (the database went away): the API's error shape
            status = status_of(exc)
            await error_response(status, exc.code, exc.message)(scope, receive, send)
        else:
            status = reply.status
            await _send(reply, send)
        self.seconds.observe(time.perf_counter() - started)
        counter = self.answered.get(status) or HTTP_REQUESTS.labels("GET", self.label, str(status))
        counter.inc()
        return True


    async def _token(self, secret: str, now: datetime) -> TokenView | None:
        """From the token cache; when its entry has expired, one database read for all the
        requests that arrive meanwhile (a promotion re-arms every watch within milliseconds,
        and all of them would otherwise take the slow route together)."""
        token = self.context.tokens.cached(secret)
        if token is not None:
            return token
        digest = hash_token(secret)
        reading = self._reading.get(digest)
        if reading is None:
            reading = self._reading[digest] = asyncio.ensure_future(
                run_in_threadpool(self.context.tokens.authenticate, secret, now=now))
            reading.add_done_callback(lambda _: self._reading.pop(digest, None))
        return await asyncio.shield(reading)


class WriteFence:
    """Inside the API app: a successful write that may move a pointer answers only once the
    serving cache has heard of it."""

    def __init__(self, app: ASGIApp, cache: ServingCache) -> None:
        self.app, self.cache = app, cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES or NO_MOVE.fullmatch(_route_path(scope)):
            await self.app(scope, receive, send)
            return

        async def fenced(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                await self.cache.fence()
            await send(message)

        await self.app(scope, receive, fenced)


def _route_path(scope: Scope) -> str:
    """The path inside the API app (without the mount's prefix)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


async def _send(reply: Reply, send: Send) -> None:
    headers = _raw_headers(reply.entry, reply.not_modified)
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if reply.not_modified else reply.entry.body})


@functools.lru_cache(maxsize=4096)
def _raw_headers(entry: Entry, not_modified: bool) -> list[tuple[bytes, bytes]]:
    """The entry's headers as ASGI wants them, built once per entry (entries are immutable)."""
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in entry.headers.items()]
    if not not_modified:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(entry.body)).encode())]
    return headers
