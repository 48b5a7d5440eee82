"""Look up `#channel-name` → channel id through Slack's conversations API, with a short cache.

Slack has no "channel by name" method: `conversations.list` pages through the workspace's
public channels (scope `channels:read`; private channels would need `groups:read`, which we do
not request: pick a private channel with `#` in Slack, which sends its id, or give the id).
The whole list is cached for `ttl` seconds; a name missing from a fresh-enough list is looked
up again at most once per `refresh_after` seconds (a channel created a minute ago is found),
so a typo cannot make every command page through the workspace.

Front ends call this before the domain, never inside a transaction (bot/domain/channels.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bot.domain import names
from bot.domain.errors import NotFound, Unavailable

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.services import Services

log = logging.getLogger("modelbot.channels")
DEFAULT_TTL_S = 300.0
REFRESH_AFTER_S = 30.0
PAGE = 1000  # conversations.list's maximum
MAX_PAGES = 50


class SlackChannelResolver:
    """Callable `name -> channel id` (a `bot.domain.channels.ChannelResolver`)."""

    def __init__(self, client: WebClient, *, ttl: float = DEFAULT_TTL_S, refresh_after: float = REFRESH_AFTER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.ttl, self.refresh_after, self.clock = ttl, refresh_after, clock
        self._lock = threading.Lock()
        self._ids: dict[str, str] = {}
        self._fetched_at: float | None = None

    def __call__(self, name: str) -> str:
        key = name.lstrip("#").lower()
        with self._lock:
            now = self.clock()
            age = None if self._fetched_at is None else now - self._fetched_at
            if age is None or age >= self.ttl or (key not in self._ids and age >= self.refresh_after):
                self._refresh(now)
            found = self._ids.get(key)
        if found is None:
            raise NotFound(f"There is no public channel named #{names.preview(key)} that I can see: check the "
                           "spelling, pick it with # in Slack, or give its id (like C0123ABCD, from the channel's "
                           "details).")
        return found

    def _refresh(self, now: float) -> None:
        ids: dict[str, str] = {}
        cursor = None
        try:
            for _ in range(MAX_PAGES):
                page: Any = self.client.conversations_list(types="public_channel", exclude_archived=True,
                                                           limit=PAGE, cursor=cursor)
                for channel in page.get("channels") or []:
                    ids[str(channel["name"]).lower()] = str(channel["id"])
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except (SlackApiError, OSError) as exc:
            if self._fetched_at is not None:  # the last list is better than nothing
                log.warning("could not list channels (%s); using the list from before", _describe(exc))
                return
            raise Unavailable("Slack did not answer when I looked up the channel name: try again, or give the "
                              "channel's id (like C0123ABCD).") from exc
        self._ids, self._fetched_at = ids, now


def _describe(exc: Exception) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return str(exc.response.get("error") or exc.response.status_code)
    return type(exc).__name__


def attach_channel_resolver(services: Services, client: WebClient) -> None:
    """Let every front end on these services accept `#channel-name`."""
    services.channels = SlackChannelResolver(client)
