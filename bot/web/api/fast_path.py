"""The serving-state read without the framework, when everything it needs is in memory.

Serving replicas read one route thousands of times a second. FastAPI's routing, dependency
injection and parameter validation cost several times the read itself (measured: about 1,400
answers/s on this machine through the stack against 4,000/s from a bare ASGI handler), so
this middleware answers `GET …/models/{model}/environments/{environment}` directly when the
token is in the token cache, valid, holds `read` and is not due a last-used stamp, the
token's rate limit allows it, the query parses, and the state is cached. It calls the
route's own `answer()`, so the bytes are the same. Anything else — a token not cached, a
refusal, a parameter to reject, a state not cached — goes to the FastAPI route, which says
what is wrong in the API's error shape.

It also fences writes: after a successful POST/PUT/PATCH/DELETE that may move a pointer,
before the answer leaves, the cache waits until the serving feed has delivered what the
write changed, so a client that promotes and then reads through the same process reads its
promotion.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.domain.errors import ModelbotError
from bot.web.api.deps import TOUCH_EVERY, ApiContext
from bot.web.api.errors import error_response, status_of
from bot.web.api.serving import Reply, answer, wait_seconds
from bot.web.api.serving_cache import ServingCache
from bot.web.api.token_cache import CachedTokens

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Writes that cannot move a pointer (registering a version, pushing metrics) skip the fence:
# it would cost them a thread hop and a query (or a NOTIFY round trip) for nothing.
NO_MOVE = re.compile(r"/models/[^/]+/versions|/metrics")


class ServingFastPath:
    def __init__(self, app: ASGIApp, context: ApiContext, tokens: CachedTokens, cache: ServingCache,
                 route: APIRoute) -> None:
        self.app, self.context, self.tokens, self.cache, self.route = app, context, tokens, cache, route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif scope["method"] == "GET":
            if not await self._read(scope, receive, send):
                await self.app(scope, receive, send)
        elif scope["method"] in WRITES and not NO_MOVE.fullmatch(_route_path(scope)):
            await self.app(scope, receive, self._fenced(send))
        else:
            await self.app(scope, receive, send)

    async def _read(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """True when answered here; False: let the route answer."""
        match, child = self.route.matches(scope)
        if match is not Match.FULL:
            return False
        params = child["path_params"]
        entry = self.cache.peek(params["model"], params["environment"])
        if entry is None:
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
        token = self.tokens.cached(secret.strip()) if scheme.lower() == "bearer" and secret else None
        if token is None or "read" not in token.scopes:
            return False
        now = self.context.services.clock()
        if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
            return False
        if self.context.buckets.take(token.id):
            return False  # over the limit: the route answers 429 with Retry-After
        scope.update(child)  # the route's template labels this request in /metrics
        if_none_match = headers.get(b"if-none-match")
        try:
            reply = await answer(self.cache, params["model"], params["environment"], revision, wait_s,
                                 if_none_match.decode("latin-1") if if_none_match else None, entry)
        except ModelbotError as exc:  # a re-read after a change failed (the database went away)
            await error_response(status_of(exc), exc.code, exc.message)(scope, receive, send)
            return True
        await _send(reply, send)
        return True

    def _fenced(self, send: Send) -> Send:
        async def fenced(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                await self.cache.fence()
            await send(message)

        return fenced


def _route_path(scope: Scope) -> str:
    """The path inside this app (without the mount's prefix)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


async def _send(reply: Reply, send: Send) -> None:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers().items()]
    body = b"" if reply.not_modified else reply.entry.body
    if not reply.not_modified:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

