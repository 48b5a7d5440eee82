"""The serving-state route: what a serving layer reads, and watches, to know what to serve.

Watch convention: Consul's blocking queries. `?revision=N` holds the request while the
state's revision is still N, up to `wait` (default 30 s, at most 60 s, plus up to 1/16 of it
at random so that watches started together do not all come back together); the answer is
the current state, 200, whether it changed or the wait ran out — the caller compares
`revision` (also in the `X-Modelbot-Revision` header) and asks again. A revision that is
not the current one answers at once, whether it is older or newer (a database restored from
a backup). Without `revision` nothing is held. Every answer carries an `ETag`; with
`If-None-Match` naming it the answer is 304 without a body, held watches included.

Kubernetes' watch (a stream of events after a resourceVersion) would suit many objects
changing; a serving replica follows one state and only needs its latest value, which is
what a blocking query returns, through any proxy, with a plain HTTP client.
"""

from __future__ import annotations

import asyncio
import functools
import random
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response

from bot.domain import names
from bot.domain.durations import parse_duration
from bot.domain.errors import InvalidInput
from bot.web.api import schemas as s
from bot.web.api.deps import Env, ModelName, Token
from bot.web.api.serving_cache import Entry, ServingCache

DEFAULT_WAIT_S = 30.0
MAX_WAIT_S = 60.0

router = APIRouter()

Revision = Annotated[int | None, Query(
    ge=0, le=2**31 - 1, examples=[3],
    description="Hold the answer while the serving state's revision is still this one (a watch).")]
Wait = Annotated[str | None, Query(
    max_length=16, examples=["30s"],
    description=f"How long a watch may be held: a duration like 30s or 0.5m, at most {MAX_WAIT_S:g}s "
    f"(default {DEFAULT_WAIT_S:g}s).")]
IfNoneMatch = Annotated[str | None, Header(max_length=1000, description="An ETag from an earlier answer: 304 if "
                                                                         "the state still has it.")]


@dataclass(frozen=True)
class Reply:
    entry: Entry
    not_modified: bool

    @property
    def status(self) -> int:
        return 304 if self.not_modified else 200

    def response(self) -> Response:
        if self.not_modified:
            return Response(status_code=304, headers=self.entry.headers)
        return Response(self.entry.body, media_type="application/json", headers=self.entry.headers)


def wait_seconds(revision: int | None, wait: str | None) -> float:
    """How long to hold: 0 without a revision; InvalidInput for a wait that is not a
    duration within 0–60 s (checked with or without a revision)."""
    seconds = DEFAULT_WAIT_S if wait is None else _wait(wait)
    return seconds if revision is not None else 0.0


@functools.lru_cache(maxsize=256)  # a fleet sends the same few waits over and over
def _wait(wait: str) -> float:
    try:
        seconds = parse_duration(wait).total_seconds()
    except InvalidInput:
        seconds = -1.0
    if not 0 <= seconds <= MAX_WAIT_S:
        raise InvalidInput(f"wait={names.preview(wait, 20)} is not a duration from 0s to {MAX_WAIT_S:g}s: "
                           "write one like 30s.")
    return seconds


async def answer(cache: ServingCache, model: str, environment: str, revision: int | None, wait_s: float,
                 if_none_match: str | None, entry: Entry | None = None) -> Reply:
    """The one logic of this read, shared by the route and the fast path (`fast_path.py`)."""
    if entry is None:
        entry = await cache.get(model, environment)
    if revision is not None and revision == entry.revision and wait_s > 0:
        deadline = asyncio.get_running_loop().time() + wait_s + random.uniform(0, wait_s / 16)
        entry = await cache.watch(entry, model, environment, deadline)
    return Reply(entry, _matches(if_none_match, entry.etag))


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110: If-None-Match compares weakly, and `*` matches any current state."""
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


@router.get("/models/{model}/environments/{environment}", response_model=s.EnvironmentOut, tags=["serving"],
            responses={304: {"description": "Not modified: the state still has the ETag sent in If-None-Match."}})
async def serving_state(request: Request, t: Token, model: ModelName, environment: Env,
                        revision: Revision = None, wait: Wait = None,
                        if_none_match: IfNoneMatch = None) -> Response:
    """What a serving layer follows: stable, canary, weight and artifact URIs. With
    `?revision=N` a watch (held until the revision is no longer N or `wait` ends); with
    `If-None-Match` a conditional read (304)."""
    cache: ServingCache = request.app.state.serving
    reply = await answer(cache, model, environment, revision, wait_seconds(revision, wait), if_none_match)
    return reply.response()
