"""Resolve the policy's `@handle` entries to Slack user ids, through a short cache.

The policy file may name Slack user groups (`approvers = ["@ml-leads"]`) so teams manage
membership where they already do. Resolution needs two Web API calls (`usergroups.list`
for handle → id, `usergroups.users.list` for the members), and it happens inside a vote,
so results are cached for `ttl` seconds (membership changes show up within minutes, and a
storm of clicks costs no Slack calls).

When Slack cannot answer, the last known members are used; with none known the group is
empty. That fails closed: nobody gains a right because Slack was down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.services import Services

log = logging.getLogger("modelbot.usergroups")
DEFAULT_TTL_S = 300.0


class SlackGroupResolver:
    """Callable `handle -> frozenset of user ids` (a `bot.domain.policy.GroupResolver`)."""

    def __init__(self, client: WebClient, *, ttl: float = DEFAULT_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._ids: dict[str, str] = {}  # handle -> usergroup id
        self._ids_at: float | None = None
        self._members: dict[str, tuple[float, frozenset[str]]] = {}  # handle -> (fetched at, ids)

    def __call__(self, handle: str) -> frozenset[str]:
        handle = handle.lstrip("@").lower()
        with self._lock:
            now = self.clock()
            cached = self._members.get(handle)
            if cached is not None and now - cached[0] < self.ttl:
                return cached[1]
            try:
                members = self._fetch(handle, now)
            except (SlackApiError, OSError) as exc:
                log.warning("could not resolve user group @%s (%s); using the last known members", handle,
                            _describe(exc))
                return cached[1] if cached is not None else frozenset()
            self._members[handle] = (now, members)
            return members

    def _fetch(self, handle: str, now: float) -> frozenset[str]:
        if self._ids_at is None or now - self._ids_at >= self.ttl or handle not in self._ids:
            response: Any = self.client.usergroups_list(include_disabled=False)
            self._ids = {str(g["handle"]).lower(): str(g["id"]) for g in response.get("usergroups") or []}
            self._ids_at = now
        group_id = self._ids.get(handle)
        if group_id is None:
            log.warning("the policy names user group @%s, which does not exist in this workspace", handle)
            return frozenset()
        # Called by its Web API name so the manifest test (which derives method names from
        # Python names) sees usergroups.users.list, not a made-up usergroups.usersList.
        api_call = self.client.api_call
        users: Any = api_call("usergroups.users.list", http_verb="GET", params={"usergroup": group_id})
        return frozenset(str(u) for u in users.get("users") or [])


def _describe(exc: Exception) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return str(exc.response.get("error") or exc.response.status_code)
    return type(exc).__name__


def make_group_resolver(client: WebClient, *, ttl: float = DEFAULT_TTL_S) -> SlackGroupResolver:
    return SlackGroupResolver(client, ttl=ttl)


def attach_group_resolver(services: Services, client: WebClient) -> None:
    """Let the domain resolve `@handles` through Slack, when the policy names any."""
    if services.policy.group_handles():
        services.groups = make_group_resolver(client)
        services.deployments.groups = services.groups
