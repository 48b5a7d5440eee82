"""Destinations whose deliveries are paused: what `modelbot outbox` and the admins' App Home show.

The outbox worker opens a destination's circuit breaker after repeated failures
(`bot.delivery.circuits`); people need to see which receiver is down, since when, why, and how
much waits behind it, without reading logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain.entities import as_utc, iso
from storage.db import Database
from storage.queries import outbox


@dataclass(frozen=True)
class PausedDestination:
    key: str  # `webhook:<url>` with credentials redacted
    since: datetime | None
    next_try: datetime | None
    failures: int
    last_error: str | None
    waiting: int

    def to_dict(self) -> dict[str, Any]:
        return {"destination": self.key, "paused_since": iso(self.since), "next_try": iso(self.next_try),
                "failures": self.failures, "last_error": self.last_error, "waiting": self.waiting}


def paused_destinations(db: Database) -> list[PausedDestination]:
    with db.read() as session:
        opened = outbox.open_circuits(session)
        waiting = outbox.waiting_by_circuit(session, [c.key for c in opened])
    return [
        PausedDestination(key=c.key, since=as_utc(c.opened_at) if c.opened_at else None,
                          next_try=as_utc(c.paused_until) if c.paused_until else None, failures=c.failures,
                          last_error=c.last_error, waiting=waiting.get(c.key, 0))
        for c in opened
    ]
