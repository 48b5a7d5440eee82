"""About one `chat.postMessage` per second per channel, without blocking other channels.

Slack allows roughly one message per second per channel (short bursts tolerated) and answers
429 beyond that. Rather than sleeping in a sending thread, the worker asks the pacer at claim
time: a row for a busy channel goes back to `pending` with `next_attempt_at` moved to the
channel's next free slot, and rows for other channels are sent meanwhile.

The pacer lives in one process. Several worker processes each pace themselves, so together
they may briefly exceed the rate; Slack's 429 + Retry-After (which also holds the channel
here) covers the rest.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta


class ChannelPacer:
    def __init__(self, interval_s: float = 1.0) -> None:
        self._interval = timedelta(seconds=interval_s)
        self._next_free: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def reserve(self, channel: str, now: datetime, queued: int = 0) -> datetime | None:
        """None: post now (the slot is taken). Otherwise when to try again.

        `queued` counts rows for this channel already sent back in the same claim, so they get
        successive slots and come due one by one instead of all at once.
        """
        if not self._interval:
            return None
        with self._lock:
            free = self._next_free.get(channel)
            if free is None or free <= now:
                self._next_free[channel] = now + self._interval
                return None
            return free + self._interval * queued

    def hold(self, channel: str, until: datetime) -> None:
        """Slack said 429 for this channel: nothing more until Retry-After has passed."""
        with self._lock:
            current = self._next_free.get(channel)
            if current is None or current < until:
                self._next_free[channel] = until
