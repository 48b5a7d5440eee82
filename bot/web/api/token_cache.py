"""API tokens checked from memory: a token's row is read at most once a second per process.

Every request needs its token checked, and reading the row was the costliest step of a
serving-state read (an ORM session and a SELECT: a quarter of its CPU). Entries are keyed
by the SHA-256 of the secret — the hash the database keeps, never the secret — and live
`TTL_S`: a revoked token keeps working for at most that long on each process. Unknown
secrets are remembered too (a client retrying a bad token costs no query), and the whole
map is dropped if it grows past `MAX_ENTRIES`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import datetime

from bot.domain.registry import Registry
from bot.domain.tokens import Tokens, TokenView, hash_token

TTL_S = 1.0
MAX_ENTRIES = 10_000


class CachedTokens(Tokens):
    """`Tokens` whose `authenticate` answers from a short-lived cache."""

    def __init__(self, registry: Registry, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(registry)
        self._clock = clock
        self._entries: dict[str, tuple[float, TokenView | None]] = {}

    def cached(self, secret: str) -> TokenView | None:
        """The token if a fresh entry says it is valid; None when unknown, revoked or not cached
        (the caller then asks `authenticate`). No I/O: safe on the event loop."""
        hit = self._entries.get(hash_token(secret))
        return hit[1] if hit is not None and hit[0] > self._clock() else None

    def authenticate(self, secret: str | None, *, now: datetime) -> TokenView | None:
        if not secret:
            return None
        digest = hash_token(secret)
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        found = super().authenticate(secret, now=now)
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[digest] = (self._clock() + TTL_S, found)
        return found

    def touch(self, token_id: int, now: datetime) -> None:
        """Also stamps the cached view, so the next request does not touch again."""
        super().touch(token_id, now)
        for digest, (expires, view) in list(self._entries.items()):
            if view is not None and view.id == token_id:
                self._entries[digest] = (expires, dataclasses.replace(view, last_used_at=now))
