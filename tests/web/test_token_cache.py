"""The token cache: a revoked token is refused once its entry is older than TTL_S, unknown
secrets are remembered as unknown, and a last-used stamp updates the cached view."""

from __future__ import annotations

from datetime import timedelta

from bot.domain.registry import Registry
from bot.domain.tokens import Tokens
from bot.web.api.token_cache import TTL_S, CachedTokens


def test_entries_live_ttl_seconds(registry: Registry) -> None:
    now = [100.0]
    cache = CachedTokens(registry, clock=lambda: now[0])
    _, secret = Tokens(registry).create("fleet", "read", actor="t", now=registry.clock())
    assert cache.cached(secret) is None  # nothing read yet: the caller must authenticate
    view = cache.authenticate(secret, now=registry.clock())
    assert view is not None and cache.cached(secret) == view
    Tokens(registry).revoke("fleet", actor="t", now=registry.clock())
    now[0] += TTL_S * 0.9
    assert cache.authenticate(secret, now=registry.clock()) == view  # within the lifetime: still cached
    now[0] += TTL_S * 0.2
    assert cache.cached(secret) is None
    assert cache.authenticate(secret, now=registry.clock()) is None  # re-read: revoked


def test_unknown_secrets_are_remembered_and_touch_updates_the_view(registry: Registry) -> None:
    now = [0.0]
    cache = CachedTokens(registry, clock=lambda: now[0])
    assert cache.authenticate("mbt_unknown", now=registry.clock()) is None
    _, secret = Tokens(registry).create("ci", "read", actor="t", now=registry.clock())
    view = cache.authenticate(secret, now=registry.clock())
    assert view is not None and view.last_used_at is None
    stamp = registry.clock() + timedelta(minutes=1)
    cache.touch(view.id, stamp)
    cached = cache.cached(secret)
    assert cached is not None and cached.last_used_at == stamp
    assert Tokens(registry).list()[0].last_used_at == stamp  # and the row was written
